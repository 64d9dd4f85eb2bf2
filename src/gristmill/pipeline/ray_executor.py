"""The Ray executor: the same tasks, shipped with ``ray.data`` to a Ray cluster.

Each task is one item of a Ray dataset; ``map`` runs :func:`gristmill.pipeline.run.work`
on it, which writes the same task files as the local executor. The run folder must
be on storage every Ray worker sees (one machine, or a shared file system).
"""

from __future__ import annotations

from typing import Any

from gristmill.pipeline.tasks import Task


def run_on_ray(tasks: list[Task], args: tuple[Any, ...], address: str | None, workers: int) -> None:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the ray executor needs Ray: pip install 'gristmill[ray]'") from exc
    from gristmill.pipeline.run import work

    run_dir, stage, spec, kind, workspace_root, world = args
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address,
            num_cpus=None if address else workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        items = [
            {"index": t.index, "path": t.path, "start": t.start, "stop": t.stop} for t in tasks
        ]

        def run_item(item: dict[str, Any]) -> dict[str, Any]:
            stop = None if item["stop"] is None else int(item["stop"])
            task = Task(int(item["index"]), str(item["path"]), int(item["start"]), stop)
            return {"index": work(run_dir, stage, task, spec, kind, workspace_root, world)}

        dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        done = dataset.map(run_item, concurrency=workers, num_cpus=1).take_all()
        if sorted(d["index"] for d in done) != sorted(t.index for t in tasks):
            raise RuntimeError("the Ray run did not finish every task; run again to resume")
    finally:
        if started_here:
            ray.shutdown()
