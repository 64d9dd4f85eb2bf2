"""The Ray executor runs the same pipeline file to the same records as the local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.store import Workspace

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_matches_local(workspace: Workspace, samples: Path, tmp_path: Path) -> None:
    lines = (samples / "llamafactory_demos" / "c4_demo.jsonl").read_bytes().splitlines()
    path = tmp_path / "web.jsonl"
    path.write_bytes(b"\n".join(lines + lines[:50]) + b"\n")  # 50 exact duplicates
    import_path(workspace, path, "web")
    spec = parse_pipeline(
        {
            "steps": [
                {"where": {"sql": "length(text) >= 300", "reason": "short"}},
                "exact_dedup",
                {"where": {"sql": "text NOT ILIKE '%cookie%'", "reason": "cookies"}},
            ]
        }
    )
    local = run_pipeline(workspace, spec, "web", "local", RunOptions(workers=2, rows_per_task=60))
    on_ray = run_pipeline(
        workspace, spec, "web", "ray", RunOptions(executor="ray", workers=2, rows_per_task=60)
    )
    assert on_ray.output.row_count == local.output.row_count > 0
    assert list(on_ray.output.iter_rows()) == list(local.output.iter_rows())
    assert on_ray.excluded is not None and local.excluded is not None
    assert list(on_ray.excluded.iter_rows()) == list(local.excluded.iter_rows())
    assert [s.__dict__ | {"seconds": 0} for s in on_ray.stats] == [
        s.__dict__ | {"seconds": 0} for s in local.stats
    ]
    assert on_ray.output.manifest.params["executor"] == "ray"
