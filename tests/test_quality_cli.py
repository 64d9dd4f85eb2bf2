"""`gristmill report` through click's CliRunner: files stored with the version, the
terminal summary, --compare, --html, --stale-days, and friendly errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_quality_data import clean_conversations, planted_conversations, planted_eval_items, write

from gristmill.cli import cli
from gristmill.quality import QualityReport, load_report
from gristmill.records import Kind
from gristmill.store import Version, Workspace

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def run(workspace: Workspace, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--workspace", str(workspace.root), *args], catch_exceptions=False
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace.init(tmp_path_factory.mktemp("quality-cli") / "ws")
    write(workspace, "chat", Kind.CONVERSATION, clean_conversations())
    write(workspace, "chat", Kind.CONVERSATION, planted_conversations())
    return workspace


def _assert_self_contained(page: str) -> None:
    assert not EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') >= 4


def test_report_writes_json_and_html_beside_the_version(ws: Workspace) -> None:
    result = run(ws, "report", "chat@2")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Data quality of chat@2" in out
    for metric in (
        "error rate",
        "completeness",
        "coherence index",
        "exact duplicates",
        "median age",
    ):
        assert metric in out
    assert "empty assistant reply" in out and "assistant turn first" in out
    version = ws.version("chat@2")
    assert version.report_json.is_file() and version.report_html.is_file()
    stored = load_report(version)
    assert isinstance(stored, QualityReport)
    assert stored.ref == "chat@2" and stored.duplicates.duplicate_records == 1
    _assert_self_contained(version.report_html.read_text())


def test_stale_days_and_html_path(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "out" / "chat.html"
    result = run(ws, "report", "chat@1", "--stale-days", "5", "--html", str(target))
    assert result.exit_code == 0, result.output
    stored = load_report(ws.version("chat@1"))
    assert stored is not None and stored.options.stale_days == 5
    assert stored.freshness.stale_rate == 1.0  # every record is at least 5 days old
    assert target.is_file()
    _assert_self_contained(target.read_text())


def test_compare_two_versions(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "compare.html"
    run(ws, "report", "chat@1")  # stored; @2 is computed by --compare if missing
    ws.version("chat@2").report_json.unlink(missing_ok=True)
    result = run(ws, "report", "chat", "--compare", "1", "v2", "--html", str(target))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "using the stored report of chat@1" in out
    assert "computed and stored the report of chat@2" in out
    assert "Quality change chat@1 → chat@2" in out
    row = next(line for line in out.splitlines() if "duplicate records" in line)
    assert re.search(r"\b0\b.*\b1\b.*\+1", row), row
    assert ws.version("chat@2").report_json.is_file()
    page = target.read_text()
    assert "Comparison: chat@1 → chat@2" in page
    _assert_self_contained(page)


def test_compare_default_html_goes_beside_the_newer_version(ws: Workspace) -> None:
    result = run(ws, "report", "chat", "--compare", "chat@1", "chat@2")
    assert result.exit_code == 0, result.output
    assert (ws.version("chat@2").path / "report-vs-v1.html").is_file()


def test_eval_report_and_errors(ws: Workspace) -> None:
    version: Version = write(ws, "gsm", Kind.EVAL_ITEM, planted_eval_items())
    result = run(ws, "report", version.ref)
    assert result.exit_code == 0, result.output
    assert "same input, different references" in result.output

    missing = run(ws, "report", "nosuch")
    assert missing.exit_code == 1
    assert "no dataset named 'nosuch'" in missing.output
    bad = run(ws, "report", "chat@1", "--tokenizer", str(ws.root / "missing.json"))
    assert bad.exit_code == 1 and "no tokenizer.json" in bad.output
