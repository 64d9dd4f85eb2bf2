"""Plain-text formats that become ``document`` records (pre-training text)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gristmill.io.formats.base import Format, RowContext, RowError, require_str
from gristmill.records.kinds import Kind

DOCUMENT_KEYS = frozenset(
    {"text", "id", "source", "added", "created", "created_at", "metadata", "meta"}
    | {"url", "title", "language"}
)
"""Keys of plain document rows: C4 / TRL ``{"text"}``, Dolma, RedPajama / Data-Juicer."""

OTHER_FAMILY_KEYS = frozenset(
    {"messages", "conversations", "prompt", "completion", "chosen", "rejected"}
    | {"instruction", "output", "label", "labels", "question", "answer", "choices"}
    | {"annotations", "data"}
)
"""Keys that say a row with a ``text`` field is really chat, preference, eval or
annotation data, where ``text`` is one field among several."""

DATE_KEYS = ("created_at", "created", "added")
"""Where a document's date may be, most specific first (Dolma: ``created`` is when the
page was made or crawled, ``added`` when it joined the corpus)."""


def _parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 text (or a datetime) → aware datetime; naive ones are taken as UTC.
    None when unparseable, so the caller can leave the raw value for ``meta``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _pop_optional_str(row: dict[str, Any], key: str) -> str | None:
    value = row.pop(key, None)
    if value is None or isinstance(value, str):
        return value or None
    raise RowError(f"expected a string, got {type(value).__name__}", key)


class PlainDocument(Format):
    """Rows with a ``text`` field: C4 and TRL language modeling ``{"text"}``, Dolma
    ``{"id","text","source","added","created","metadata"}``, RedPajama / Data-Juicer
    ``{"text","meta"}``, and the ``{"text"}`` rows the folder reader makes of ``.txt``
    files.

    Top-level ``url``, ``title`` and ``language`` map to the record; the first
    parseable of ``created_at``/``created``/``added`` becomes ``created_at``; a ``meta``
    object (or JSON text of one) becomes the record's meta. Everything else (the
    source's ``id``, Dolma's ``source``, the unused date, the nested ``metadata``) stays
    in the row for the engine, which keeps it in ``meta``.
    """

    name = "document"
    kind = Kind.DOCUMENT
    description = "Text documents: {text}, C4, Dolma, RedPajama/Data-Juicer"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        if not sample:
            return 0.0

        def score(row: dict[str, Any]) -> float:
            if not isinstance(row.get("text"), str):
                return 0.0
            if set(row) <= DOCUMENT_KEYS:
                return 0.95
            return 0.2 if not OTHER_FAMILY_KEYS.isdisjoint(row) else 0.6

        return sum(score(row) for row in sample) / len(sample)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        out: dict[str, Any] = {"text": require_str(row, "text")}
        for key in ("url", "title", "language"):
            out[key] = _pop_optional_str(row, key)
        for key in DATE_KEYS:
            when = _parse_datetime(row.get(key))
            if when is not None:
                row.pop(key)
                out["created_at"] = when
                break
        meta = row.get("meta")
        if isinstance(meta, str):
            try:
                meta = orjson.loads(meta)
            except orjson.JSONDecodeError:
                meta = None
        if isinstance(meta, dict):
            row.pop("meta")
            if meta:
                out["meta"] = meta
        return out


FORMATS: list[Format] = [PlainDocument()]
