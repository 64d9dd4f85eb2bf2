"""Units of work and what running one leaves on disk.

The input version is cut into tasks of whole Parquet row groups. Running a stage on a
task writes, in the run folder, the kept rows, the dropped rows with their step and
reason, the steps' attributes, stats, and the next global step's partial state; the
``.done`` marker is written last, so a task either counts as finished with all its
files or is redone from scratch. Task order fixes output order, so a resumed run
writes exactly what an unbroken one would.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.step import GlobalStep, Step, StepContext

BATCH_ROWS = 4096
KILL_ENV = "GRISTMILL_KILL_WORKER_AT_TASK"  # fault injection for the resume test


@dataclass(frozen=True)
class Task:
    """Rows ``start:stop`` of one Parquet file (``stop`` None: the whole file)."""

    index: int
    path: str
    start: int = 0
    stop: int | None = None

    def read(self) -> pa.Table:
        f = pq.ParquetFile(self.path)
        if self.stop is None:
            return f.read()
        groups, first = [], None
        offset = 0
        for g in range(f.metadata.num_row_groups):
            rows = f.metadata.row_group(g).num_rows
            if offset + rows > self.start and offset < self.stop:
                groups.append(g)
                first = offset if first is None else first
            offset += rows
        table = f.read_row_groups(groups)
        return table.slice(self.start - (first or 0), self.stop - self.start)


def plan_tasks(paths: list[Path], rows_per_task: int) -> list[Task]:
    """Cut each shard into tasks of ``rows_per_task`` rows (the unit of resume)."""
    tasks: list[Task] = []
    for path in paths:
        total = pq.ParquetFile(path).metadata.num_rows
        for start in range(0, total, max(1, rows_per_task)):
            stop = min(total, start + rows_per_task)
            tasks.append(Task(len(tasks), str(path), start, stop))
    return tasks


@dataclass
class StepStats:
    name: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)  # what the step reports besides drops

    def add(self, other: StepStats) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.seconds += other.seconds
        for reason, n in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + n
        for name, n in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + n


def task_files(stage_dir: Path, index: int) -> dict[str, Path]:
    stem = stage_dir / f"task-{index:05d}"
    return {
        "kept": stem.with_suffix(".kept.parquet"),
        "dropped": stem.with_suffix(".dropped.parquet"),
        "reasons": stem.with_suffix(".reasons.parquet"),
        "stats": stem.with_suffix(".stats.json"),
        "partial": stem.with_suffix(".partial.pkl"),
        "done": stem.with_suffix(".done"),
        "attrs": stage_dir / f"task-{index:05d}.attrs",
    }


def is_done(stage_dir: Path, index: int) -> bool:
    return task_files(stage_dir, index)["done"].exists()


def run_task(
    task: Task,
    steps: list[Step],
    next_global: GlobalStep | None,
    ctx: StepContext,
    stage_dir: Path,
    schema: pa.Schema,
) -> list[StepStats]:
    """Run ``steps`` over one task and write its files; the marker comes last."""
    files = task_files(stage_dir, task.index)
    for step in steps:
        step.bind(ctx)
    stats = [StepStats(step.name) for step in steps]
    kept_parts: list[pa.Table] = []
    # dropped rows per step position, so files list them step by step in input order
    dropped_parts: dict[int, list[pa.Table]] = {}
    reasons: dict[int, dict[str, list[Any]]] = {}
    attributes: dict[str, list[pa.Table]] = {}
    source = task.read()
    for offset in range(0, max(source.num_rows, 1), BATCH_ROWS):
        table = source.slice(offset, BATCH_ROWS)
        ctx.row_offset = offset
        for position, (step, stat) in enumerate(zip(steps, stats, strict=True)):
            if table.num_rows == 0:
                break
            stat.rows_in += table.num_rows
            start = time.perf_counter()
            (out,) = list(step.run([table], ctx.rank, ctx.world_size))
            stat.seconds += time.perf_counter() - start
            for name, attr in out.attributes.items():
                attributes.setdefault(name, []).append(attr)
            for name, n in out.counters.items():
                stat.counters[name] = stat.counters.get(name, 0) + n
            table = out.table
            if out.drop is not None:
                if len(out.drop) != table.num_rows:
                    raise RuntimeError(
                        f"step {step.name} gave {len(out.drop)} reasons for {table.num_rows} rows"
                    )
                mask = pa.array([r is None for r in out.drop])
                dropped = table.filter(pc.invert(mask))
                if dropped.num_rows:
                    dropped_parts.setdefault(position, []).append(dropped)
                    why = [r for r in out.drop if r is not None]
                    log = reasons.setdefault(position, {"id": [], "step": [], "reason": []})
                    log["id"].extend(dropped.column("id").to_pylist())
                    log["step"].extend([step.name] * len(why))
                    log["reason"].extend(why)
                    for reason in why:
                        stat.dropped[reason] = stat.dropped.get(reason, 0) + 1
                table = table.filter(mask)
            stat.rows_out += table.num_rows
        kept_parts.append(table)
    kept = pa.concat_tables(kept_parts).cast(schema) if kept_parts else schema.empty_table()
    pq.write_table(kept, files["kept"])
    _maybe_die(task.index)  # tests: a crash with this task's files half written
    if dropped_parts:
        order = sorted(dropped_parts)
        parts = [t for p in order for t in dropped_parts[p]]
        pq.write_table(pa.concat_tables(parts).cast(schema), files["dropped"])
        log_tables = [
            pa.table({**reasons[p], "position": [p] * len(reasons[p]["id"])}, schema=REASONS_SCHEMA)
            for p in order
        ]
        pq.write_table(pa.concat_tables(log_tables), files["reasons"])
    if attributes:
        files["attrs"].mkdir(exist_ok=True)
        for name, parts in attributes.items():
            pq.write_table(
                pa.concat_tables(parts, promote_options="default"),
                files["attrs"] / f"{name}.parquet",
            )
    if next_global is not None:
        next_global.bind(ctx)
        files["partial"].write_bytes(pickle.dumps(next_global.collect(kept)))
    files["stats"].write_bytes(orjson.dumps([s.__dict__ for s in stats]))
    files["done"].write_bytes(b"")
    return stats


REASONS_SCHEMA = pa.schema(
    [("id", pa.string()), ("step", pa.string()), ("reason", pa.string()), ("position", pa.int64())]
)  # position: the step's place in its stage


def _maybe_die(index: int) -> None:
    """Fault injection for tests: a worker kills itself (SIGKILL, no clean-up) in the
    middle of task N, with some of its files written and no marker: a real crash."""
    target = os.environ.get(KILL_ENV)
    if target is not None and int(target) == index:
        marker = Path(os.environ.get(KILL_ENV + "_ONCE", ""))
        if marker.name and marker.exists():
            return
        if marker.name:
            marker.write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)


def read_stats(stage_dir: Path, index: int) -> list[StepStats]:
    data = orjson.loads(task_files(stage_dir, index)["stats"].read_bytes())
    return [StepStats(**d) for d in data]
