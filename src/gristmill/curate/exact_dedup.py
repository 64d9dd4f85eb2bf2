"""`exact_dedup`: keep the first record of each exact duplicate group.

The key is a 16-byte blake2b of the record's content (the kind's content columns;
for documents, the text after optional whitespace normalisation) and, optionally,
of its URL. "First" is the input order, so the result does not depend on how the
run was cut into tasks or workers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import GlobalStep, StepOutput
from gristmill.records.arrow import content_columns
from gristmill.records.kinds import Kind


@register
class ExactDedup(GlobalStep):
    name = "exact_dedup"
    kinds = tuple(Kind)

    def __init__(self, by: str = "content", normalize_whitespace: bool = True, **rest: Any) -> None:
        if rest:
            raise TypeError(f"unknown parameters: {', '.join(rest)}")
        if by not in ("content", "url", "content+url"):
            raise TypeError("by must be content, url or content+url")
        super().__init__(by=by, normalize_whitespace=normalize_whitespace)
        self.by = by
        self.normalize = normalize_whitespace

    def _keys(self, table: pa.Table) -> list[bytes]:
        kind = self.ctx.kind
        use_url = "url" in self.by and "url" in table.column_names
        cols = content_columns(kind) if "content" in self.by else []
        cols = [c for c in cols if c != "url"]
        data = table.select(cols).to_pylist() if cols else [{} for _ in range(table.num_rows)]
        urls = table.column("url").to_pylist() if use_url else [None] * table.num_rows
        keys = []
        for row, url in zip(data, urls, strict=True):
            if self.normalize and isinstance(row.get("text"), str):
                row["text"] = " ".join(row["text"].split())
            payload = orjson.dumps([row, url], option=orjson.OPT_SORT_KEYS)
            keys.append(hashlib.blake2b(payload, digest_size=16).digest())
        return keys

    def collect(self, table: pa.Table) -> list[bytes]:
        return self._keys(table)

    def merge(self, partials: list[Any]) -> set[tuple[int, int]]:
        """(task, row) positions that repeat an earlier key, in input order."""
        seen: set[bytes] = set()
        drop: set[tuple[int, int]] = set()
        for task, keys in enumerate(partials):
            for row, key in enumerate(keys):
                if key in seen:
                    drop.add((task, row))
                else:
                    seen.add(key)
        return drop

    def process(self, table: pa.Table) -> StepOutput:
        """Drop the rows ``merge`` found repeated; positions come from the context
        (this step always opens its stage, so it sees its task's rows in order)."""
        drop = self.state or set()
        task, offset = self.ctx.rank, self.ctx.row_offset
        reasons: list[str | None] = [
            "exact duplicate of an earlier record" if (task, offset + i) in drop else None
            for i in range(table.num_rows)
        ]
        return StepOutput(table, reasons)
