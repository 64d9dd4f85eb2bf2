"""Run a pipeline over a dataset version: stages, executors, resume, assembly.

The run folder ``<workspace>/runs/<output>-<pipeline digest>-<input>@<N>`` holds
every task's files, so running the same command again after a crash only redoes the
unfinished tasks. When all are done, the kept rows become a new version of the
output dataset (parent: the input), and the dropped rows a version of
``<output>.excluded`` whose ``exclusion`` attribute says which step dropped each
record and why.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.pipeline.spec import PipelineSpec, stages
from gristmill.pipeline.step import GlobalStep, Step, StepContext
from gristmill.pipeline.tasks import (
    StepStats,
    Task,
    is_done,
    plan_tasks,
    read_stats,
    run_task,
    task_files,
)
from gristmill.records.arrow import schema_for
from gristmill.records.kinds import Kind
from gristmill.store import StoreError, Version, VersionWriter, Workspace

EXCLUDED_SUFFIX = ".excluded"
Progress = Callable[[str, int, int], None]  # (stage label, tasks done, tasks total)


@dataclass
class RunOptions:
    executor: str = "local"  # local | ray
    workers: int = 2
    rows_per_task: int = 20_000
    ray_address: str | None = None
    fresh: bool = False  # forget finished tasks of an earlier run of the same command


@dataclass
class RunResult:
    output: Version
    excluded: Version | None
    stats: list[StepStats]
    run_dir: Path
    tasks: int
    resumed: int  # tasks found finished from an earlier, interrupted run
    already_done: bool = False
    attributes: list[str] = field(default_factory=list)


class WorkerDied(RuntimeError):
    pass


# -- worker side ------------------------------------------------------------------------------

_BUILT: dict[tuple[str, int], tuple[list[Step], GlobalStep | None]] = {}


def stage_steps(
    spec: PipelineSpec, run_dir: Path, stage: int
) -> tuple[list[Step], GlobalStep | None]:
    """The steps of one stage, built once per process; a leading global step gets the
    merged state its stage starts from."""
    key = (str(run_dir), stage)
    if key not in _BUILT:
        steps, closing = stages(spec.build())[stage]
        if steps and isinstance(steps[0], GlobalStep):
            steps[0].set_state(
                pickle.loads((run_dir / f"stage-{stage}" / "state.pkl").read_bytes())
            )
        _BUILT[key] = (steps, closing)
    return _BUILT[key]


def work(
    run_dir: str,
    stage: int,
    task: Task,
    spec: PipelineSpec,
    kind: str,
    workspace_root: str,
    world: int,
) -> int:
    """One task of one stage (top-level, so any executor can ship it)."""
    root = Path(run_dir)
    steps, closing = stage_steps(spec, root, stage)
    ctx = StepContext(
        kind=Kind(kind),
        rank=task.index,
        world_size=world,
        workspace=Workspace(Path(workspace_root)),
        scratch=root / "scratch",
    )
    run_task(task, steps, closing, ctx, root / f"stage-{stage}", schema_for(kind))
    return task.index


def _forked_worker_init() -> None:
    """A forked worker whose parent already ran torch must not use torch's OpenMP
    pool: GNU libgomp's threads do not survive fork, and the first parallel op
    waits for them forever (a notebook that loads a model, then scores with
    ``workers=2``). One thread per worker, as PyTorch's DataLoader workers do; the
    workers themselves are the parallelism."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


# -- driver side ------------------------------------------------------------------------------


def run_dir_for(
    workspace: Workspace, spec: PipelineSpec, source: Version, output: str | None
) -> Path:
    label = output if output is not None else "attributes"
    return workspace.root / "runs" / f"{label}-{spec.digest()}-{source.name}@{source.number}"


def run_pipeline(
    workspace: Workspace,
    spec: PipelineSpec,
    input_ref: str,
    output: str | None,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run ``spec`` over ``input_ref``. With an ``output`` name, kept and dropped
    records become new versions; with ``output=None`` (scoring) no record may be
    dropped and the steps' attributes are attached to the input version itself."""
    options = options or RunOptions()
    _BUILT.clear()  # steps are rebuilt for each run (forked workers inherit this)
    source = workspace.version(input_ref)
    kind = source.kind
    steps = spec.build()
    for step in steps:  # fail before any work if a step cannot take this kind
        step.bind(StepContext(kind=kind, workspace=workspace))
    run_dir = run_dir_for(workspace, spec, source, output)
    if options.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "scratch").mkdir(exist_ok=True)
    tasks = _load_or_plan(run_dir, source, spec, options)
    done_file = run_dir / "assembled.json"
    if done_file.exists() and output is not None:  # scoring runs simply attach again
        refs = orjson.loads(done_file.read_bytes())
        try:
            out = workspace.version(refs["output"])
            excluded = workspace.version(refs["excluded"]) if refs.get("excluded") else None
        except StoreError:
            done_file.unlink()  # the versions were removed: assemble again
        else:
            return RunResult(
                out, excluded, _stats(run_dir, steps, tasks), run_dir, len(tasks), len(tasks), True
            )

    plan = stages(steps)
    resumed = sum(is_done(run_dir / "stage-0", t.index) for t in tasks)
    for number, (stage_list, _closing) in enumerate(plan):
        stage_dir = run_dir / f"stage-{number}"
        stage_dir.mkdir(exist_ok=True)
        if number > 0:
            _merge_state(run_dir, number, plan[number - 1][1], tasks)
        inputs = (
            tasks
            if number == 0
            else [
                Task(t.index, str(task_files(run_dir / f"stage-{number - 1}", t.index)["kept"]))
                for t in tasks
            ]
        )
        pending = [t for t in inputs if not is_done(stage_dir, t.index)]
        label = f"stage {number + 1}/{len(plan)}: " + ", ".join(s.name for s in stage_list)
        if progress:
            progress(label, len(inputs) - len(pending), len(inputs))
        _execute(
            run_dir,
            number,
            pending,
            spec,
            kind,
            workspace,
            len(tasks),
            options,
            label,
            len(inputs),
            progress,
        )

    if output is None:
        result = _attach_attributes(source, spec, run_dir, steps, tasks, len(plan), options)
    else:
        result = _assemble(
            workspace, source, spec, output, run_dir, steps, tasks, len(plan), options
        )
    result.resumed = resumed
    done_file.write_bytes(
        orjson.dumps(
            {
                "output": result.output.ref,
                "excluded": result.excluded.ref if result.excluded else None,
            }
        )
    )
    return result


def _load_or_plan(
    run_dir: Path, source: Version, spec: PipelineSpec, options: RunOptions
) -> list[Task]:
    plan_file = run_dir / "plan.json"
    if plan_file.exists():
        data = orjson.loads(plan_file.read_bytes())
        return [Task(t["index"], t["path"], t["start"], t["stop"]) for t in data["tasks"]]
    tasks = plan_tasks(source.shard_paths, options.rows_per_task)
    plan_file.write_bytes(
        orjson.dumps(
            {
                "input": source.ref,
                "pipeline": spec.to_data(),
                "tasks": [
                    {"index": t.index, "path": t.path, "start": t.start, "stop": t.stop}
                    for t in tasks
                ],
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    return tasks


def _merge_state(run_dir: Path, stage: int, closing: GlobalStep | None, tasks: list[Task]) -> None:
    state_file = run_dir / f"stage-{stage}" / "state.pkl"
    if state_file.exists() or closing is None:
        return
    prev = run_dir / f"stage-{stage - 1}"
    partials = [pickle.loads(task_files(prev, t.index)["partial"].read_bytes()) for t in tasks]
    tmp = state_file.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(closing.merge(partials)))
    tmp.replace(state_file)


def _execute(
    run_dir: Path,
    stage: int,
    pending: list[Task],
    spec: PipelineSpec,
    kind: Kind,
    workspace: Workspace,
    world: int,
    options: RunOptions,
    label: str,
    total: int,
    progress: Progress | None,
) -> None:
    if not pending:
        return
    args = (str(run_dir), stage, spec, str(kind), str(workspace.root), world)
    finished = total - len(pending)
    if options.executor == "ray":
        from gristmill.pipeline.ray_executor import run_on_ray

        run_on_ray(pending, args, options.ray_address, options.workers)
        if progress:
            progress(label, total, total)
        return
    if options.executor != "local":
        raise ValueError(f"unknown executor {options.executor!r}: use local or ray")
    if options.workers <= 1:
        for task in pending:
            work(args[0], stage, task, spec, args[3], args[4], world)
            finished += 1
            if progress:
                progress(label, finished, total)
        return
    pool = ProcessPoolExecutor(
        max_workers=options.workers,
        mp_context=get_context("fork"),
        initializer=_forked_worker_init,
    )
    try:
        futures = [
            pool.submit(work, args[0], stage, t, spec, args[3], args[4], world) for t in pending
        ]
        for future in futures:
            future.result()
            finished += 1
            if progress:
                progress(label, finished, total)
    except BrokenProcessPool as exc:
        raise WorkerDied(
            f"a worker died during {label}; finished tasks are kept in {run_dir}: "
            "run the same command again to resume"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stats(run_dir: Path, steps: list[Step], tasks: list[Task]) -> list[StepStats]:
    """Per-step totals over every stage and task."""
    order = [StepStats(s.name) for s in steps]
    position = 0
    for number, (stage_list, _closing) in enumerate(stages(steps)):
        stage_dir = run_dir / f"stage-{number}"
        for task in tasks:
            for offset, stat in enumerate(read_stats(stage_dir, task.index)):
                order[position + offset].add(stat)
        position += len(stage_list)
    return order


def _assemble(
    workspace: Workspace,
    source: Version,
    spec: PipelineSpec,
    output: str,
    run_dir: Path,
    steps: list[Step],
    tasks: list[Task],
    n_stages: int,
    options: RunOptions,
) -> RunResult:
    stats = _stats(run_dir, steps, tasks)
    kept_rows = stats[-1].rows_out if stats else source.row_count
    params: dict[str, Any] = {
        "pipeline": spec.to_data(),
        "executor": options.executor,
        "workers": options.workers,
        "run": str(run_dir),
    }
    step_stats = [s.__dict__ for s in stats]
    last = run_dir / f"stage-{n_stages - 1}"
    with VersionWriter(
        workspace,
        output,
        source.kind,
        operation="curate",
        params=params,
        parent=source.ref,
        background=True,
    ) as writer:
        for task in tasks:
            writer.write_table(pq.read_table(task_files(last, task.index)["kept"]))
        writer.stats = {"steps": step_stats, "rows_in": source.row_count, "rows_out": kept_rows}
    out = writer.version
    assert out is not None

    # exclusions in a canonical order: stage, then step, then input order, so the
    # exclusions dataset does not depend on task size or workers
    dropped: list[tuple[pa.Table, pa.Table]] = []
    for number, (stage_list, _closing) in enumerate(stages(steps)):
        files = [task_files(run_dir / f"stage-{number}", t.index) for t in tasks]
        loaded = [
            (pq.read_table(f["dropped"]), pq.read_table(f["reasons"]))
            for f in files
            if f["dropped"].exists()
        ]
        for position in range(len(stage_list)):
            for rows_table, log in loaded:
                mask = pc.equal(log.column("position"), position)
                if pc.any(mask).as_py():
                    dropped.append((rows_table.filter(mask), log.filter(mask)))
    excluded: Version | None = None
    if dropped:
        with VersionWriter(
            workspace,
            output + EXCLUDED_SUFFIX,
            source.kind,
            operation="curate-exclusions",
            params=params,
            parent=source.ref,
        ) as ex_writer:
            for rows_table, _log in dropped:
                ex_writer.write_table(rows_table)
            ex_writer.stats = {"steps": step_stats, "curated": out.ref}
        excluded = ex_writer.version
        assert excluded is not None
        log = pa.concat_tables([lg for _rows, lg in dropped]).drop_columns(["position"])
        excluded.write_attribute("exclusion", log, operation="curate", params=params)

    names = _gather_attributes(run_dir, tasks, n_stages)
    for name, table in names.items():
        out.write_attribute(name, table, operation="curate", params=params)
    return RunResult(out, excluded, stats, run_dir, len(tasks), 0, attributes=sorted(names))


def _gather_attributes(run_dir: Path, tasks: list[Task], n_stages: int) -> dict[str, pa.Table]:
    names: dict[str, list[Path]] = {}
    for n in range(n_stages):
        for t in tasks:
            folder = task_files(run_dir / f"stage-{n}", t.index)["attrs"]
            if folder.is_dir():
                for path in sorted(folder.glob("*.parquet")):
                    names.setdefault(path.stem, []).append(path)
    return {
        name: pa.concat_tables([pq.read_table(p) for p in paths], promote_options="default")
        for name, paths in names.items()
    }


def _attach_attributes(
    source: Version,
    spec: PipelineSpec,
    run_dir: Path,
    steps: list[Step],
    tasks: list[Task],
    n_stages: int,
    options: RunOptions,
) -> RunResult:
    """Scoring runs: attributes go onto the input version (replacing same-named ones)."""
    stats = _stats(run_dir, steps, tasks)
    dropping = [s.name for s in stats if s.dropped]
    if dropping:
        raise ValueError(
            f"a scoring run may not drop records, but {', '.join(dropping)} did; "
            "use `gristmill curate` with an output name to filter"
        )
    params: dict[str, Any] = {
        "pipeline": spec.to_data(),
        "executor": options.executor,
        "run": str(run_dir),
    }
    gathered = _gather_attributes(run_dir, tasks, n_stages)
    for name, table in gathered.items():
        source.write_attribute(name, table, operation="score", params=params, overwrite=True)
    return RunResult(source, None, stats, run_dir, len(tasks), 0, attributes=sorted(gathered))


def explain(workspace: Workspace, record_id: str) -> list[dict[str, Any]]:
    """Where and why a record was dropped, in every curation run of the workspace."""
    out: list[dict[str, Any]] = []
    for name in workspace.dataset_names():
        if not name.endswith(EXCLUDED_SUFFIX):
            continue
        for version in workspace.versions(name):
            if "exclusion" not in version.attribute_names():
                continue
            table = version.read_attribute("exclusion")
            mask = pc.equal(table.column("id"), record_id)
            for row in table.filter(mask).to_pylist():
                out.append(
                    {
                        "dataset": version.ref,
                        "curated": version.manifest.stats.get("curated"),
                        "input": version.manifest.parent,
                        "step": row["step"],
                        "reason": row["reason"],
                    }
                )
    return out
