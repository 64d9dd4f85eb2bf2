"""Scoring at scale: a fleet of OpenAI-compatible servers (one dead, one real
llama-cpp-python server on loopback) behind ``gristmill score``, with two worker
processes, and the Ray executor running the Density sketch (counters merged across
Ray tasks) to the same scores as the local executor."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from llama_server import dead_url, llama_server, needs_llama_server
from test_sampling_models import boilerplate, wiki

from gristmill.pipeline import RunOptions
from gristmill.sampling import score
from gristmill.store import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llama_server() as url:
        yield url


def _import(run_cli: Callable[..., Result], tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"m-{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    assert run_cli("import", str(path), "--as", "mixed").exit_code == 0


@needs_llama_server
def test_ask_llm_through_a_fleet_with_a_dead_endpoint(
    server: str, run_cli: Callable[..., Result], workspace: Workspace, tmp_path: Path
) -> None:
    _import(run_cli, tmp_path, wiki(2, 700) + boilerplate("eeme.ucd.ie", "bufvc.ac.uk"))
    fleet = f"openai:{dead_url()}/smollm2,{server}/smollm2?retries=2"
    result = run_cli("score", "mixed", "--by", "ask_llm", "--model", fleet, "--workers", "2")
    assert result.exit_code == 0, result.output
    table = workspace.version("mixed@1").read_attribute("ask_llm")
    s = dict(zip(table.column("id").to_pylist(), table.column("score").to_pylist(), strict=True))
    assert min(s["m-0"], s["m-1"]) > max(s["m-2"], s["m-3"]), s
    assert set(table.column("model").to_pylist()) == {"openai:smollm2"}


def test_density_on_ray_equals_local(workspace: Workspace, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    texts = wiki(6, 300) + boilerplate("eeme.ucd.ie", "bufvc.ac.uk")
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"d-{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    from gristmill.io.ingest import import_path

    version = import_path(workspace, path, "docs").version
    assert version is not None
    params = {"bandwidth": 0.3}
    score(workspace, version.ref, "density", params, RunOptions(workers=1))
    local = version.read_attribute("density").to_pylist()
    score(
        workspace,
        version.ref,
        "density",
        params,
        RunOptions(executor="ray", workers=2, rows_per_task=3, fresh=True),
    )
    on_ray = version.read_attribute("density").to_pylist()
    assert on_ray == local
    assert version.attribute_info("density").params.get("executor") == "ray"
