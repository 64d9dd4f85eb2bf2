"""The pipeline core: YAML, stages, exclusions with reasons, --explain, determinism
across workers and task sizes, and a run killed mid-way that resumes to the same
output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from click.testing import Result

from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, explain, parse_pipeline, run_pipeline
from gristmill.pipeline.run import WorkerDied
from gristmill.pipeline.tasks import KILL_ENV
from gristmill.store import Version, Workspace

PIPELINE = {
    "steps": [
        {"where": {"sql": "length(text) >= 400", "reason": "shorter than 400 characters"}},
        {"exact_dedup": {}},
        {"where": {"sql": "text NOT ILIKE '%click here%'", "reason": "click-bait"}},
    ]
}


@pytest.fixture
def web(workspace: Workspace, samples: Path, tmp_path: Path) -> Version:
    """300 real C4 documents, with 20 of them repeated later in the file."""
    lines = (samples / "llamafactory_demos" / "c4_demo.jsonl").read_bytes().splitlines()
    path = tmp_path / "web.jsonl"
    path.write_bytes(b"\n".join(lines + lines[100:120]) + b"\n")
    report = import_path(workspace, path, "web")
    assert report.version is not None
    return report.version


def rows(version: Version) -> list[dict[str, object]]:
    return list(version.iter_rows())


def test_yaml_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown step 'gopher'; known steps: "):
        parse_pipeline({"steps": ["gopher"]}).build()
    with pytest.raises(
        ValueError, match=r"step 1 \(where\): .*unexpected|step 1 \(where\): .*missing"
    ):
        parse_pipeline({"steps": [{"where": {}}]}).build()
    with pytest.raises(ValueError, match="'steps' must be a non-empty list"):
        parse_pipeline({"steps": []})


def test_curate_drops_with_reasons(workspace: Workspace, web: Version) -> None:
    result = run_pipeline(
        workspace, parse_pipeline(PIPELINE), "web", "clean", RunOptions(workers=1)
    )
    short, dedup, bait = result.stats
    assert bait.rows_in == dedup.rows_out
    assert short.rows_in == 320 and short.dropped == {
        "shorter than 400 characters": 320 - short.rows_out
    }
    duplicates = dedup.dropped.get("exact duplicate of an earlier record", 0)
    # the 20 repeated documents are dropped unless they were already too short
    kept_texts = [r["text"] for r in rows(result.output)]
    assert len(kept_texts) == len(set(kept_texts))
    assert duplicates == sum(
        1 for r in rows(web)[100:120] if isinstance(r["text"], str) and len(r["text"]) >= 400
    )
    assert result.output.manifest.parent == "web@1"
    assert result.excluded is not None
    excluded = rows(result.excluded)
    assert len(excluded) + result.output.row_count == 320
    reasons = result.excluded.read_attribute("exclusion").to_pylist()
    assert {r["id"] for r in reasons} == {r["id"] for r in excluded}
    first = reasons[0]
    [hit] = explain(workspace, first["id"])
    assert hit["step"] == first["step"] and hit["curated"] == result.output.ref


def test_same_output_whatever_the_workers_and_task_size(workspace: Workspace, web: Version) -> None:
    spec = parse_pipeline(PIPELINE)
    one = run_pipeline(workspace, spec, "web", "a", RunOptions(workers=1, rows_per_task=1000))
    two = run_pipeline(workspace, spec, "web", "b", RunOptions(workers=2, rows_per_task=30))
    assert rows(one.output) == rows(two.output)
    assert one.excluded is not None and two.excluded is not None
    assert rows(one.excluded) == rows(two.excluded)


def test_killed_run_resumes_to_the_same_output(
    workspace: Workspace, web: Version, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = parse_pipeline(PIPELINE)
    unbroken = run_pipeline(
        workspace, spec, "web", "unbroken", RunOptions(workers=2, rows_per_task=40)
    )
    monkeypatch.setenv(KILL_ENV, "3")  # the worker on task 3 dies (SIGKILL) mid-task
    options = RunOptions(workers=2, rows_per_task=40)
    with pytest.raises(WorkerDied, match="run the same command again to resume"):
        run_pipeline(workspace, spec, "web", "resumed", options)
    assert workspace.version_numbers("resumed") == []  # nothing half-written appeared
    monkeypatch.delenv(KILL_ENV)
    resumed = run_pipeline(workspace, spec, "web", "resumed", options)
    assert resumed.resumed > 0  # some tasks were kept from the killed run
    assert rows(resumed.output) == rows(unbroken.output)
    assert resumed.excluded is not None and unbroken.excluded is not None
    assert rows(resumed.excluded) == rows(unbroken.excluded)
    again = run_pipeline(workspace, spec, "web", "resumed", options)
    assert again.already_done and workspace.version_numbers("resumed") == [1]


def test_step_refuses_a_kind_it_cannot_take(workspace: Workspace, samples: Path) -> None:
    import_path(workspace, samples / "gsm8k" / "test.jsonl", "gsm8k")
    spec = parse_pipeline({"steps": [{"where": {"sql": "true"}}, "exact_dedup"]})
    result = run_pipeline(workspace, spec, "gsm8k", "gsm8k-dedup", RunOptions(workers=1))
    assert result.output.row_count == 1319 and result.output.kind == "eval_item"


def test_cli(
    workspace: Workspace, web: Version, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "steps:\n  - where: {sql: 'length(text) >= 400', reason: short}\n  - exact_dedup: {}\n"
    )
    out = run_cli(
        "curate", str(path), "--input", "web", "--output", "cli", "--workers", "1", "--report"
    ).output
    assert "curate → cli@1" in out and "exact_dedup" in out and "short" in out
    assert "Quality change web@1 → cli@1" in out  # the curated version beside its parent
    excluded = workspace.version("cli.excluded")
    some = next(excluded.iter_rows())["id"]
    assert "dropped by where (short)" in run_cli("curate", "--explain", str(some)).output
    assert "where" in run_cli("curate", "--steps").output
    bad = run_cli("curate", str(path), "--input", "nope", "--output", "x")
    assert bad.exit_code == 1 and "no dataset named 'nope'" in bad.output
    stats = orjson.loads((workspace.version("cli").path / "manifest.json").read_bytes())["stats"]
    assert [s["name"] for s in stats["steps"]] == ["where", "exact_dedup"]


def test_attributes_from_steps_attach_to_the_output(workspace: Workspace, web: Version) -> None:
    from gristmill.pipeline import Step, StepOutput, register

    @register
    class Length(Step):
        """Test step: text length as an attribute."""

        name = "test_length"

        def process(self, table: pa.Table) -> StepOutput:
            lengths = pa.compute.utf8_length(table.column("text"))
            attr = pa.table({"id": table.column("id"), "chars": lengths})
            return StepOutput(table, None, {"length": attr}, {"documents measured": table.num_rows})

    result = run_pipeline(
        workspace,
        parse_pipeline({"steps": ["test_length"]}),
        "web",
        "measured",
        RunOptions(workers=1),
    )
    assert result.attributes == ["length"]
    assert result.output.read_attribute("length").num_rows == 320
    assert result.stats[0].counters == {"documents measured": 320}


def test_scoring_run_attaches_attributes_to_the_input(workspace: Workspace, web: Version) -> None:
    """With no output name, a run writes its attributes beside the input version."""
    from gristmill.pipeline import Step, StepOutput, register

    @register
    class Words(Step):
        """Test step: word counts as an attribute."""

        name = "test_words"

        def process(self, table: pa.Table) -> StepOutput:
            words = [len(t.split()) for t in table.column("text").to_pylist()]
            return StepOutput(table, None, {"words": pa.table({"id": table["id"], "words": words})})

    spec = parse_pipeline({"steps": ["test_words"]})
    result = run_pipeline(workspace, spec, "web", None, RunOptions(workers=2, rows_per_task=50))
    assert result.output.ref == "web@1" and workspace.dataset_names() == ["web"]
    assert web.read_attribute("words").num_rows == 320
    again = run_pipeline(workspace, spec, "web", None, RunOptions(workers=2, rows_per_task=50))
    assert again.attributes == ["words"]  # re-attached from the finished tasks
    with pytest.raises(ValueError, match="a scoring run may not drop records"):
        run_pipeline(workspace, parse_pipeline(PIPELINE), "web", None, RunOptions(workers=1))
