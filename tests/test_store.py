"""Workspace, immutable versions, attributes, lineage, SQL, diff and rm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import Result

from gristmill.records import Document, Kind, to_row
from gristmill.store import StoreError, VersionWriter, Workspace, derive_version
from gristmill.store.diff import diff_versions
from gristmill.store.query import run_query


def docs(texts: list[str]) -> list[dict[str, object]]:
    return [to_row(Document(id=f"d{i}", text=t, origin="import:test")) for i, t in enumerate(texts)]


def write(ws: Workspace, name: str, texts: list[str]) -> str:
    with VersionWriter(ws, name, Kind.DOCUMENT, operation="test") as w:
        w.write_rows(docs(texts))
    assert w.version is not None
    return w.version.ref


def test_versions_are_numbered_and_immutable(workspace: Workspace) -> None:
    assert write(workspace, "web", ["a", "b"]) == "web@1"
    assert write(workspace, "web", ["a", "b", "c"]) == "web@2"
    v1 = workspace.version("web@1")
    assert v1.row_count == 2 and [r["text"] for r in v1.iter_rows()] == ["a", "b"]
    assert workspace.version("web").number == 2
    with pytest.raises(StoreError, match="has no version 7"):
        workspace.version("web@7")
    with pytest.raises(StoreError, match="no dataset named 'nope'"):
        workspace.version("nope")


def test_failed_write_leaves_nothing(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError), VersionWriter(workspace, "half", Kind.DOCUMENT, "test") as w:
        w.write_rows(docs(["x"]))
        raise RuntimeError("crash mid-write")
    assert workspace.dataset_names() == []
    assert not (workspace.datasets_dir / "half").exists()


def test_shards_roll_over(workspace: Workspace) -> None:
    with VersionWriter(workspace, "big", Kind.DOCUMENT, "test", shard_rows=3) as w:
        w.write_rows(docs([str(i) for i in range(8)]))
    assert w.version is not None
    assert [s.rows for s in w.version.manifest.shards] == [3, 3, 2]
    assert [r["text"] for r in w.version.iter_rows()] == [str(i) for i in range(8)]


def test_attributes_attach_without_rewriting(workspace: Workspace) -> None:
    v = workspace.version(write(workspace, "web", ["a", "bb"]))
    before = {p: p.stat().st_mtime_ns for p in v.shard_paths}
    v.write_attribute("length", pa.table({"id": ["d0", "d1"], "chars": [1, 2]}), operation="test")
    assert {p: p.stat().st_mtime_ns for p in v.shard_paths} == before
    assert v.attribute_names() == ["length"]
    with pytest.raises(StoreError, match="already has attribute"):
        v.write_attribute("length", pa.table({"id": ["d0"], "chars": [1]}), operation="test")
    with pytest.raises(StoreError, match="needs an 'id' column"):
        v.write_attribute("bad", pa.table({"x": [1]}), operation="test")
    rows = run_query(
        workspace,
        'SELECT w.text, l.chars FROM web w JOIN "web@1/length" l USING (id) ORDER BY chars',
    ).to_pylist()
    assert rows == [{"text": "a", "chars": 1}, {"text": "bb", "chars": 2}]


def test_lineage_and_diff(workspace: Workspace) -> None:
    v1 = workspace.version(write(workspace, "web", ["a", "b", "c"]))
    rows = [*docs(["a", "B!", "c"])[:2], to_row(Document(id="new", text="n", origin="import:t"))]
    v2 = derive_version(v1, pa.Table.from_pylist(rows, schema=v1.schema), "edit", {"why": "test"})
    assert [m.ref for m in workspace.lineage(v2.ref)] == ["web@2", "web@1"]
    d = diff_versions(v1, v2)
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 1, 1)
    assert d.sample_added == ["new"] and d.sample_removed == ["d2"] and d.sample_changed == ["d1"]


def test_cli_verbs(workspace: Workspace, run_cli: Callable[..., Result]) -> None:
    write(workspace, "web", ["alpha", "beta"])
    write(workspace, "web", ["alpha", "beta", "gamma"])
    out = run_cli("ls").output
    assert "web" in out and "@2" in out and "document" in out
    assert "web@1" in run_cli("show", "web@1").output
    head = run_cli("head", "web", "-n", "1").output
    assert '"text":"alpha"' in head
    assert "added 1" in run_cli("diff", "web@1", "web@2").output
    q = run_cli("query", 'SELECT count(*) AS n FROM "web@2"', "--json").output
    assert '{"n":3}' in q
    bad = run_cli("query", "SELEC nonsense")
    assert bad.exit_code == 1 and "query failed" in bad.output
    assert "nothing deleted" in run_cli("rm", "web@1", input="n\n").output
    assert workspace.version_numbers("web") == [1, 2]
    assert "deleted web@1" in run_cli("rm", "web@1", "--yes").output
    assert workspace.version_numbers("web") == [2]


def test_no_workspace_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRISTMILL_WORKSPACE", raising=False)
    with pytest.raises(StoreError, match="gristmill init"):
        Workspace.find()
