"""A thin, typed httpx wrapper over the REST API (``/openapi.json`` has the rest)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class ApiError(Exception):
    """A non-2xx answer: ``status`` and the server's ``detail``."""

    def __init__(self, status: int, detail: Any, method: str, path: str) -> None:
        super().__init__(f"{method} {path} → {status}: {detail}")
        self.status = status
        self.detail = detail


class Client:
    """Talk to a gristmill app with an API token (``gristmill user token NAME``)."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code == 204:
            return None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text
            raise ApiError(resp.status_code, detail, method, path)
        return resp.json()

    # -- who and projects ---------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/me"))

    def add_user(
        self, username: str, role: str = "annotator", password: str | None = None
    ) -> dict[str, Any]:
        body = {"username": username, "role": role, "password": password}
        return dict(self._call("POST", "/api/users", json=body))

    def projects(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/projects"))

    def create_project(
        self,
        name: str,
        questions: list[dict[str, Any]],
        dataset: str | None = None,
        *,
        records: list[dict[str, Any]] | None = None,
        guidelines: str = "",
        gold: dict[str, dict[str, Any]] | None = None,
        limit: int | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Create a project from ``dataset`` (``NAME@N``) and/or ``records``; keyword
        settings: overlap, gold_rate, order, seed, show_suggestions, lease_minutes."""
        body = {
            "name": name,
            "questions": questions,
            "dataset_ref": dataset,
            "records": records,
            "guidelines": guidelines,
            "gold": gold,
            "limit": limit,
            "settings": settings,
        }
        return dict(self._call("POST", "/api/projects", json=body))

    def project(self, pid: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/projects/{pid}"))

    def update_project(
        self, pid: int, *, guidelines: str | None = None, **settings: Any
    ) -> dict[str, Any]:
        body = {"guidelines": guidelines, "settings": settings or None}
        return dict(self._call("PATCH", f"/api/projects/{pid}", json=body))

    def add_member(self, pid: int, username: str, role: str = "annotator") -> dict[str, Any]:
        return dict(
            self._call("PUT", f"/api/projects/{pid}/members/{username}", json={"role": role})
        )

    def remove_member(self, pid: int, username: str) -> None:
        self._call("DELETE", f"/api/projects/{pid}/members/{username}")

    def members(self, pid: int) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/projects/{pid}/members"))

    # -- records, gold, suggestions -----------------------------------------------------

    def push_records(
        self,
        pid: int,
        *,
        dataset: str | None = None,
        records: list[dict[str, Any]] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Append records from a dataset version and/or as JSON (``{"kind": ..., ...}``)."""
        body = {"from": dataset, "records": records, "limit": limit}
        return dict(self._call("POST", f"/api/projects/{pid}/records", json=body))

    def set_gold(self, pid: int, gold: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/projects/{pid}/gold", json={"gold": gold}))

    def push_suggestions(self, pid: int, suggestions: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"suggestions": suggestions}
        return dict(self._call("POST", f"/api/projects/{pid}/suggestions", json=body))

    def generate_suggestions(
        self,
        pid: int,
        source: str,
        questions: list[str] | None = None,
        limit: int | None = None,
        max_tokens: int = 128,
    ) -> dict[str, Any]:
        """Suggestions from a model (``smollm2``, ``openai:…``) or ``attribute:NAME``
        for the first ``limit`` records; ``max_tokens`` bounds text drafts."""
        body = {"source": source, "questions": questions, "limit": limit, "max_tokens": max_tokens}
        return dict(self._call("POST", f"/api/projects/{pid}/suggestions/generate", json=body))

    # -- annotating ---------------------------------------------------------------------

    def next(self, pid: int) -> dict[str, Any] | None:
        """The caller's next task, or None when nothing is left."""
        got = self._call("GET", f"/api/projects/{pid}/next")
        return dict(got) if got is not None else None

    def answer(
        self, pid: int, record_id: str, values: dict[str, Any], status: str = "submitted"
    ) -> dict[str, Any]:
        body = {"values": values, "status": status}
        return dict(
            self._call("POST", f"/api/projects/{pid}/records/{record_id}/answers", json=body)
        )

    def answers(
        self, pid: int, status: str = "submitted", question: str | None = None
    ) -> list[dict[str, Any]]:
        """Answers in long format: record_id, annotator, question, value, status, …"""
        params = {"status": status, **({"question": question} if question else {})}
        return list(self._call("GET", f"/api/projects/{pid}/answers", params=params))

    def answers_frame(self, pid: int, question: str | None = None) -> Any:
        """Submitted answers as a pandas DataFrame (QC's long format)."""
        import pandas as pd

        return pd.DataFrame(self.answers(pid, question=question))

    # -- quality control ----------------------------------------------------------------

    def stats(self, pid: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/projects/{pid}/stats"))

    def aggregate(self, pid: int, method: str = "auto") -> dict[str, Any]:
        return dict(self._call("GET", f"/api/projects/{pid}/aggregate", params={"method": method}))

    def review(self, pid: int, only_disagreements: bool = False) -> dict[str, Any]:
        params = {"only_disagreements": str(only_disagreements).lower()}
        return dict(self._call("GET", f"/api/projects/{pid}/review", params=params))

    def resolve(self, pid: int, record_id: str, question: str, value: Any) -> dict[str, Any]:
        body = {"question": question, "value": value}
        return dict(
            self._call("POST", f"/api/projects/{pid}/records/{record_id}/resolve", json=body)
        )

    def export(self, pid: int, method: str = "auto") -> dict[str, Any]:
        """Aggregate and write back a new dataset version; returns ``{"ref", "rows"}``."""
        return dict(self._call("POST", f"/api/projects/{pid}/export", json={"method": method}))

    # -- webhooks -----------------------------------------------------------------------

    def add_webhook(
        self, pid: int, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        return dict(self._call("POST", f"/api/projects/{pid}/webhooks", json=body))

    def webhooks(self, pid: int) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/projects/{pid}/webhooks"))

    def deliveries(self, pid: int, webhook_id: int) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/projects/{pid}/webhooks/{webhook_id}/deliveries"))

    def audit(self, pid: int) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/projects/{pid}/audit"))
