"""Shared fixtures: a fresh workspace, the sample data folder, a CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gristmill.cli import cli
from gristmill.store import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


@pytest.fixture
def run_cli(workspace: Workspace) -> Callable[..., Result]:
    """Run `gristmill <args>` against the test workspace; returns click's Result."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            cli, ["--workspace", str(workspace.root), *args], input=input, catch_exceptions=False
        )

    return run
