"""`where`: keep the records a SQL condition holds for (DuckDB, over the batch).

- where: {sql: "length(text) >= 200 AND url NOT LIKE '%/tag/%'", reason: short or tag page}
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import Step, StepOutput
from gristmill.records.kinds import Kind


@register
class Where(Step):
    name = "where"
    kinds = tuple(Kind)

    def __init__(self, sql: str, reason: str | None = None, **rest: Any) -> None:
        if rest:
            raise TypeError(f"unknown parameters: {', '.join(rest)}")
        super().__init__(sql=sql, reason=reason)
        self.sql = sql
        self.reason = reason or f"where: not ({sql})"
        self._con: duckdb.DuckDBPyConnection | None = None

    def setup(self) -> None:
        self._con = duckdb.connect()

    def process(self, table: pa.Table) -> StepOutput:
        assert self._con is not None
        self._con.register("batch", table)
        try:
            result = self._con.execute(
                f"SELECT coalesce(({self.sql}), false) FROM batch"
            ).fetchall()
        except duckdb.Error as exc:
            raise ValueError(f"where: the condition {self.sql!r} failed: {exc}") from exc
        finally:
            self._con.unregister("batch")
        return StepOutput(table, [None if ok else self.reason for (ok,) in result])
