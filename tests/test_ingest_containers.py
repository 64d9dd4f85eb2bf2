"""Every container the importer reads: CSV/TSV, Parquet, HF save_to_disk, text
folders, gzip/zstd, JSON arrays; plus --map and --format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from click.testing import Result

from gristmill.io.ingest import ImportOptions, import_path
from gristmill.store import Workspace


def test_tsv_with_header(workspace: Workspace, samples: Path) -> None:
    path = samples / "uci_sentiment_amazon" / "amazon_cells_labelled.tsv"
    report = import_path(workspace, path, "amazon")
    assert report.kind == "document" and report.balanced
    assert report.kept == 1000
    first = next(workspace.version("amazon").iter_rows())
    assert first["text"].startswith("So there is no way for me to plug it in")
    assert orjson.loads(first["meta"]) == {"label": "0"}
    assert first["source_row"] == 2  # line 1 is the header


def test_csv_header_guess_and_override(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('text,url\n"A page, with a comma",http://a\n"Line one\nline two",http://b\n')
    report = import_path(workspace, path, "docs")
    rows = list(workspace.version("docs").iter_rows())
    assert [r["url"] for r in rows] == ["http://a", "http://b"]
    assert rows[1]["text"] == "Line one\nline two" and report.kept == 2
    bad = tmp_path / "ragged.csv"
    bad.write_text("text,url\nfine,http://a\ntoo,many,cells\n")
    report = import_path(workspace, bad, "ragged")
    assert (report.kept, report.quarantined) == (1, 1)
    assert report.files[0].first_problem == "ragged.csv:3: expected 2 columns, found 3"


def test_parquet_and_zstd_and_json_array(workspace: Workspace, tmp_path: Path) -> None:
    rows = [{"text": f"document number {i}", "lang_hint": "en"} for i in range(50)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "docs.parquet")
    (tmp_path / "docs.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    )
    (tmp_path / "docs.json").write_bytes(orjson.dumps(rows))
    for name in ("docs.parquet", "docs.jsonl.zst", "docs.json"):
        ref = name.replace(".", "_")
        report = import_path(workspace, tmp_path / name, ref)
        assert report.kept == 50 and report.quarantined == 0, name
        assert report.files[0].sha256 and len(report.files[0].sha256) == 64
    texts = [
        [r["text"] for r in workspace.version(n).iter_rows()]
        for n in ("docs_parquet", "docs_jsonl_zst", "docs_json")
    ]
    assert texts[0] == texts[1] == texts[2]


def test_hf_save_to_disk(workspace: Workspace, tmp_path: Path) -> None:
    chats = [
        {
            "messages": [
                {"role": "user", "content": f"hi {i}"},
                {"role": "assistant", "content": "hello"},
            ]
        }
        for i in range(20)
    ]
    ds = datasets.Dataset.from_list(chats)
    ds.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict(
        {"train": ds.select(range(15)), "test": ds.select(range(15, 20))}
    ).save_to_disk(str(tmp_path / "dict"))
    assert import_path(workspace, tmp_path / "single", "single").kept == 20
    report = import_path(workspace, tmp_path / "dict", "split")
    assert report.kept == 20 and report.kind == "conversation"
    splits = [orjson.loads(r["meta"])["split"] for r in workspace.version("split").iter_rows()]
    assert splits.count("train") == 15 and splits.count("test") == 5


def test_text_folder(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("First page.\nWith two lines.")
    (folder / "sub" / "b.md").write_text("# Second page")
    (folder / "bad.txt").write_bytes(b"caf\xe9")
    (folder / ".hidden.txt").write_text("ignored")
    report = import_path(workspace, folder, "pages")
    assert (report.kept, report.quarantined) == (2, 1)
    texts = {r["source"]: r["text"] for r in workspace.version("pages").iter_rows()}
    assert texts == {
        "pages/a.txt": "First page.\nWith two lines.",
        "pages/sub/b.md": "# Second page",
    }


def test_map_and_format_options(
    workspace: Workspace, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    path = tmp_path / "raw.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps({"body": f"text {i}", "src": "web"}) + b"\n" for i in range(3))
    )
    result = run_cli("import", str(path), "--as", "raw", "--map", "body=text")
    assert result.exit_code == 0, result.output
    assert "document" in result.output and "read 3 = kept 3 + quarantined 0" in result.output
    assert [r["text"] for r in workspace.version("raw").iter_rows()] == [
        "text 0",
        "text 1",
        "text 2",
    ]
    report = import_path(workspace, path, "raw2", ImportOptions(format="document"))
    assert report.quarantined == 3 and "text: missing required field" in report.reasons
    bad = run_cli("import", str(path), "--as", "raw3", "--map", "body")
    assert bad.exit_code != 0 and "--map expects old=new" in bad.output
    unknown = run_cli("import", str(path), "--as", "raw4", "--format", "nope")
    assert unknown.exit_code == 1 and "unknown format 'nope'" in unknown.output


def test_text_lines(workspace: Workspace, samples: Path) -> None:
    path = samples / "llamafactory_demos" / "wiki_demo.txt"
    assert import_path(workspace, path, "wiki_whole").kept == 1
    report = import_path(workspace, path, "wiki", ImportOptions(text_lines=True))
    assert report.kept == 30
    first = next(workspace.version("wiki").iter_rows())
    assert (
        first["text"].startswith("Anarchism is a political philosophy") and first["source_row"] == 1
    )
