"""The contract between container readers (JSONL, CSV, ...) and row formats
(ShareGPT, Alpaca, HH-RLHF, ...).

A reader yields parsed rows (plain dicts). A :class:`Format` recognises rows by
their fields (``detect``) and turns one row into a storage row of its record kind
(``convert``). ``convert`` *pops* the fields it consumed from the dict it is given;
the ingest engine stores whatever is left in ``meta``, so no field is ever lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.records.kinds import Kind

Row = dict[str, Any]


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


def share_where(sample: list[Row], predicate: Callable[[Row], bool]) -> float:
    """Share of sample rows for which ``predicate`` holds (0 for an empty sample)."""
    if not sample:
        return 0.0
    return sum(1 for row in sample if predicate(row)) / len(sample)


def is_object_list(value: Any, key: str = "role") -> bool:
    """A non-empty list of objects that all carry ``key`` (by default: a message list)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and key in m for m in value)
    )


def is_list_of(value: Any, kind: type) -> bool:
    """A non-empty list whose items are all ``kind`` (``bool`` is not taken for ``int``)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, kind) and (kind is bool or not isinstance(v, bool)) for v in value)
    )


def require_bool(row: Row, key: str) -> bool:
    """Pop ``key`` as a JSON boolean; ``"true"`` or ``1`` are refused, not guessed at."""
    if key not in row:
        raise RowError("missing required field", key)
    value = row.pop(key)
    if not isinstance(value, bool):
        raise RowError(f"expected a boolean, got {type(value).__name__}", key)
    return value


def as_number(value: Any) -> float | None:
    """A rating or reward as a float: numbers and numeric strings; None otherwise
    (``"N/A"``, booleans, missing)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def pop_path(row: Row, path: str) -> Any:
    """Pop a nested field such as ``info.task.instruction`` and drop the objects it
    leaves empty, so the rest of a nested object still reaches ``meta``.

    The objects on the path are copied first: the caller's parsed row (which the
    quarantine may still write out) is never changed below its top level."""
    keys = path.split(".")
    parents: list[Row] = [row]
    for depth, key in enumerate(keys[:-1]):
        inner = parents[-1].get(key)
        if not isinstance(inner, dict):
            where = ".".join(keys[: depth + 1])
            raise RowError(
                "missing required field" if inner is None else "expected an object", where
            )
        inner = parents[-1][key] = dict(inner)
        parents.append(inner)
    if keys[-1] not in parents[-1]:
        raise RowError("missing required field", path)
    value = parents[-1].pop(keys[-1])
    for depth in range(len(keys) - 1, 0, -1):
        if parents[depth]:
            break
        parents[depth - 1].pop(keys[depth - 1])
    return value
