"""gristmill's own export rows: ``{"kind": ..., <storage fields of that kind>}``.

A Format has one kind, so there is one native format per kind (``gristmill-document``,
``gristmill-conversation``, ...), each claiming the rows whose ``kind`` is its own.
Rows are validated with the record model, so a re-import is as strict as the store,
and returned in storage form (every nested field present).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gristmill.io.formats.base import Format, RowContext, RowError
from gristmill.records.arrow import content_columns, from_row, to_row
from gristmill.records.kinds import RECORD_MODELS, Kind

PASSED_THROUGH = ("id", "created_at", "task_category", "domain", "origin", "source", "source_row")
"""Common fields kept from the export besides content and ``meta``: the record's whole
lineage (``origin``, and the ``source`` file and row it first came from), so an
export re-imports as the same records; the new version's manifest still names the
export file it was read from."""


def _error_path(loc: tuple[int | str, ...]) -> str:
    """Pydantic ``("messages", 2, "content")`` → ``messages[2].content``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _pop_meta(row: dict[str, Any]) -> dict[str, Any]:
    """``meta`` as JSON text (JSONL/Parquet storage form) or an object → dict."""
    value = row.pop("meta", None)
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"meta is not JSON: {exc}", "meta") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RowError(f"meta must be an object, got {type(value).__name__}", "meta")
    return value


class Native(Format):
    """Rows exported by gristmill (JSONL or Parquet) for one record kind."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.name = f"gristmill-{kind.value}"
        self.description = f"gristmill export rows with kind={kind.value}"
        model = RECORD_MODELS[kind]
        self._content = content_columns(kind)
        self._required = [name for name in self._content if model.model_fields[name].is_required()]

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        if not sample:
            return 0.0

        def score(row: dict[str, Any]) -> float:
            if row.get("kind") != self.kind.value:
                return 0.0
            return 1.0 if all(k in row for k in self._required) else 0.5

        return sum(score(row) for row in sample) / len(sample)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        kind = row.pop("kind", None)
        if kind != self.kind.value:
            raise RowError(f"kind is {kind!r}, expected {self.kind.value!r}", "kind")
        meta = _pop_meta(row)
        data = {key: row.pop(key) for key in (*self._content, *PASSED_THROUGH) if key in row}
        given = {key for key, value in data.items() if value is not None}
        try:
            record = from_row(self.kind, {**data, "id": data.get("id") or "x", "meta": None})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise RowError(first["msg"], _error_path(first["loc"]) or None) from exc
        stored = to_row(record)
        # content as exported (a null list stays null), the model's default where absent
        out = {key: data[key] if key in data else stored[key] for key in self._content}
        out.update({key: stored[key] for key in PASSED_THROUGH if key in given})
        when = out.get("created_at")
        if when is not None and when.tzinfo is None:
            out["created_at"] = when.replace(tzinfo=UTC)  # naive export times are UTC
        if meta:
            out["meta"] = meta
        return out


FORMATS: list[Format] = [Native(kind) for kind in Kind]
