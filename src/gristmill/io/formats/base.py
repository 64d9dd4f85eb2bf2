"""The contract between container readers (JSONL, CSV, ...) and row formats
(ShareGPT, Alpaca, HH-RLHF, ...).

A reader yields parsed rows (plain dicts). A :class:`Format` recognises rows by
their fields (``detect``) and turns one row into a storage row of its record kind
(``convert``). ``convert`` *pops* the fields it consumed from the dict it is given;
the ingest engine stores whatever is left in ``meta``, so no field is ever lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.records.kinds import Kind


class RowError(Exception):
    """A row that cannot become a record; it goes to the quarantine with this reason."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field


@dataclass
class RowContext:
    """Where a row comes from, for formats that need it (e.g. MMLU's subject is the
    file name)."""

    file: Path
    row_number: int  # 1-based line (JSONL, CSV) or index (JSON array, Parquet)


@dataclass
class Converted:
    """A record plus per-record attribute rows (e.g. Label Studio annotations).

    Attribute rows need no ``id``: the engine keys them to the record's id.
    """

    row: dict[str, Any]
    attributes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class Format:
    """A family of rows that map to one record kind.

    Subclasses set ``name``, ``kind`` and ``description`` and implement both methods.
    """

    name: str = ""
    kind: Kind = Kind.DOCUMENT
    description: str = ""

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        """How well ``sample`` (the first rows of ``file``) fits, 0 (not at all) to 1."""
        raise NotImplementedError

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any] | Converted:
        """Return the record's fields (content fields of ``kind``; optionally ``id``,
        ``created_at``, ``task_category``, ``domain``, ``meta``) and pop what was used
        from ``row``. Raise :class:`RowError` naming the field when the row is bad."""
        raise NotImplementedError


# -- small helpers shared by formats -----------------------------------------------------


def share_with_keys(sample: list[dict[str, Any]], *keys: str) -> float:
    """Share of sample rows that have all ``keys``."""
    if not sample:
        return 0.0
    return sum(all(k in r for k in keys) for r in sample) / len(sample)


def require_str(row: dict[str, Any], key: str, allow_empty: bool = False) -> str:
    """Pop ``key`` as a string, or raise a RowError that names it."""
    if key not in row:
        raise RowError("missing required field", key)
    value = row.pop(key)
    if not isinstance(value, str):
        raise RowError(f"expected a string, got {type(value).__name__}", key)
    if not allow_empty and not value.strip():
        raise RowError("empty text", key)
    return value


def require_list(row: dict[str, Any], key: str) -> list[Any]:
    if key not in row:
        raise RowError("missing required field", key)
    value = row.pop(key)
    if not isinstance(value, list):
        raise RowError(f"expected a list, got {type(value).__name__}", key)
    if not value:
        raise RowError("empty list", key)
    return value
