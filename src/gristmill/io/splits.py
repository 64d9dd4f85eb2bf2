"""Seeded train/validation/test splits that keep a group on one side.

A record's split is a pure function of (seed, group key): a hash of the two placed on
the cumulative fractions. No pass over the data is needed first, the same record
lands in the same split in every run and every batching, and records sharing a group
key (by default the prompt) can never leak across splits. The price: sizes follow
the fractions only approximately (exactly in expectation), so they are reported.

Group keys (``group_by``):

- ``prompt`` (default): the prompt text, whitespace-collapsed and case-folded —
  a conversation's first user message (else its first message), a preference's
  prompt messages, a document's text, an eval item's input, a trace's task, a
  media record's URI;
- a column of the kind (``id``, ``source``, ``domain``, ...);
- ``meta.KEY`` (dotted for nesting): a value from the record's ``meta``;
- anything else: a DuckDB SQL expression over the storage columns, e.g.
  ``lower(source)`` or ``json_extract_string(meta, '$.topic')``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from gristmill.records.arrow import schema_for
from gristmill.records.kinds import Kind

PROMPT = "prompt"
SPLIT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def parse_split(text: str) -> dict[str, float]:
    """``"train=0.9,validation=0.1"`` → ordered fractions that sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"bad split {part.strip()!r}: expected NAME=FRACTION, e.g. train=0.9")
        if not SPLIT_NAME_RE.match(name):
            raise ValueError(f"bad split name {name!r}: use letters, digits, '_' and '-'")
        if name in fractions:
            raise ValueError(f"split {name!r} named twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"bad fraction {value.strip()!r} for split {name!r}") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction for split {name!r} must be in (0, 1], got {fraction}")
        fractions[name] = fraction
    return check_fractions(fractions)


def check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    if not fractions:
        raise ValueError("no splits given")
    total = sum(fractions.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"split fractions must add up to 1, got {total:g}")
    return fractions


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _contents(messages: list[dict[str, Any]] | None) -> str:
    return "\n".join(m.get("content") or "" for m in messages or [])


def _first_user(messages: list[dict[str, Any]] | None) -> str:
    messages = messages or []
    for message in messages:
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return str(messages[0].get("content") or "") if messages else ""


PROMPT_KEYS: dict[Kind, tuple[str, Callable[[Any], str]]] = {
    Kind.DOCUMENT: ("text", lambda v: v or ""),
    Kind.CONVERSATION: ("messages", _first_user),
    Kind.PREFERENCE: ("prompt", _contents),
    Kind.EVAL_ITEM: ("input", lambda v: v or ""),
    Kind.AGENT_TRACE: ("task", lambda v: v or ""),
    Kind.MEDIA: ("uri", lambda v: v or ""),
}


def _as_key(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _meta_path(meta_text: str | None, path: list[str]) -> Any:
    value: Any = orjson.loads(meta_text) if meta_text else {}
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


@dataclass(frozen=True)
class SplitSpec:
    fractions: dict[str, float]
    seed: int = 0
    group_by: str = PROMPT


class Splitter:
    """Assigns each row of a kind's batches to a split (see the module docstring) and
    counts the records it assigned per split in ``sizes``."""

    def __init__(self, kind: Kind | str, spec: SplitSpec) -> None:
        self.kind = Kind(kind)
        self.spec = spec
        check_fractions(spec.fractions)
        self.names = list(spec.fractions)
        self.sizes: Counter[str] = Counter(dict.fromkeys(self.names, 0))
        bounds: list[float] = []
        total = 0.0
        for fraction in spec.fractions.values():
            total += fraction
            bounds.append(total)
        bounds[-1] = 1.0  # float sums must not leave a gap at the top
        self._bounds = bounds
        self._seed = str(spec.seed).encode() + b"\x00"
        self._sql: str | None = None
        columns = schema_for(self.kind).names
        group_by = spec.group_by
        if group_by != PROMPT and group_by not in columns and not group_by.startswith("meta."):
            self._sql = group_by
            self._sql_keys(pa.RecordBatch.from_pylist([], schema=schema_for(self.kind)), group_by)

    def keys(self, batch: pa.RecordBatch) -> list[str]:
        """The group key of every row in ``batch``."""
        group_by = self.spec.group_by
        if self._sql is not None:
            return self._sql_keys(batch, self._sql)
        if group_by == PROMPT:
            column, extract = PROMPT_KEYS[self.kind]
            values = batch.column(column).to_pylist()
            return [_normalise(extract(v)) for v in values]
        if group_by.startswith("meta."):
            path = group_by.split(".")[1:]
            return [_as_key(_meta_path(m, path)) for m in batch.column("meta").to_pylist()]
        return [_as_key(v) for v in batch.column(group_by).to_pylist()]

    def _sql_keys(self, batch: pa.RecordBatch, expression: str) -> list[str]:
        con = duckdb.connect()
        try:
            con.register("batch", pa.Table.from_batches([batch]))
            query = f"SELECT CAST(({expression}) AS VARCHAR) FROM batch"
            values = [row[0] for row in con.execute(query).fetchall()]
        except duckdb.Error as exc:
            raise ValueError(
                f"--group-by {expression!r} is neither 'prompt', a column "
                f"({', '.join(batch.schema.names)}), meta.KEY, nor a valid SQL "
                f"expression over those columns: {exc}"
            ) from exc
        finally:
            con.close()
        return [_as_key(v) for v in values]

    def split_of(self, key: str) -> str:
        """The split of one group key: a 64-bit hash of (seed, key) in [0, 1)."""
        digest = hashlib.blake2b(self._seed + key.encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64
        for name, bound in zip(self.names, self._bounds, strict=True):
            if point < bound:
                return name
        return self.names[-1]

    def assign(self, batch: pa.RecordBatch) -> list[str]:
        """The split of every row in ``batch``."""
        names = [self.split_of(key) for key in self.keys(batch)]
        self.sizes.update(names)
        return names
