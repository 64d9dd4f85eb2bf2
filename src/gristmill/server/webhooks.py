"""Webhooks: ``answer.created`` / ``answer.updated`` POSTed as JSON to each URL a
project registered, signed with HMAC-SHA256 of the body under the webhook's secret
(header ``X-Gristmill-Signature: sha256=<hex>``), retried with back-off, delivered
by a background thread so that the annotator's request never waits on a receiver."""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
import uuid
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from gristmill.annotate.tables import deliveries, inserted_id, utcnow, webhooks

EVENTS = ("answer.created", "answer.updated")
SIGNATURE_HEADER = "X-Gristmill-Signature"
log = logging.getLogger("gristmill.webhooks")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: does ``header`` sign ``body`` under ``secret``?"""
    return hmac.compare_digest(sign(secret, body), header)


class Dispatcher:
    """One daemon thread draining a queue of events; ``join()`` waits until empty."""

    def __init__(
        self,
        engine: sa.Engine,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    def start(self) -> None:
        if self._thread is None:
            self._client = httpx.Client(timeout=self.timeout, trust_env=False)
            self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def emit(self, project_id: int, event: str, data: dict[str, Any]) -> None:
        self._queue.put((project_id, event, data))

    def join(self) -> None:
        """Block until every queued event has been handled (tests, shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._deliver_all(*job)
            except Exception:  # a broken hook must not stop the thread
                log.exception("webhook delivery failed")
            finally:
                self._queue.task_done()

    def _deliver_all(self, project_id: int, event: str, data: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            hooks = conn.execute(
                sa.select(webhooks).where(
                    webhooks.c.project_id == project_id, webhooks.c.active.is_(True)
                )
            ).all()
        for hook in hooks:
            if event in (hook.events or EVENTS):
                self._deliver(hook, event, data)

    def _deliver(self, hook: sa.Row[Any], event: str, data: dict[str, Any]) -> None:
        delivery_uuid = uuid.uuid4().hex
        body = orjson.dumps(
            {
                "event": event,
                "delivery": delivery_uuid,
                "sent_at": utcnow().isoformat() + "Z",
                "data": data,
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-Gristmill-Event": event,
            "X-Gristmill-Delivery": delivery_uuid,
            SIGNATURE_HEADER: sign(hook.secret, body),
        }
        with self.engine.begin() as conn:
            did = inserted_id(
                conn.execute(
                    deliveries.insert().values(
                        webhook_id=hook.id,
                        event=event,
                        status="pending",
                        attempts=0,
                        created_at=utcnow(),
                    )
                )
            )
        code: int | None = None
        error: str | None = None
        attempt = 0
        assert self._client is not None
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._client.post(hook.url, content=body, headers=headers)
                code = resp.status_code
                if 200 <= code < 300:
                    error = None
                    break
                error = f"HTTP {code}"
            except httpx.HTTPError as exc:
                code, error = None, f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id == did)
                .values(
                    status="delivered" if error is None else "failed",
                    attempts=attempt,
                    response_code=code,
                    error=error,
                    delivered_at=utcnow() if error is None else None,
                )
            )
