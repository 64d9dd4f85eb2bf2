"""Bad input: every broken row ends in the quarantine with its file, line and reason,
and the balance read = kept + quarantined holds."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from gristmill.io.ingest import ImportReport, import_path
from gristmill.store import Workspace


def chat(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": f"{i} + {i} = {2 * i}."},
        ]
    }


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def quarantined(report: ImportReport) -> list[dict[str, Any]]:
    assert report.quarantine_path is not None
    return [orjson.loads(line) for line in report.quarantine_path.read_bytes().splitlines()]


def test_truncated_file(
    workspace: Workspace, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    path = jsonl(tmp_path / "chats.jsonl", [chat(i) for i in range(10)])
    path.write_bytes(path.read_bytes()[:-25])  # cut inside the last record
    out = run_cli("import", str(path), "--as", "cli").output
    assert "chats.jsonl:10: broken JSON" in out and "truncated" in out
    assert "read 10 = kept 9 + quarantined 1" in out
    report = import_path(workspace, path, "chats")
    assert (report.rows_read, report.kept, report.quarantined) == (10, 9, 1)
    [bad] = quarantined(report)
    assert bad["file"] == "chats.jsonl" and bad["line"] == 10
    assert "broken JSON" in bad["reason"] and "truncated" in bad["reason"]
    assert bad["raw"].startswith('{"messages"')  # the raw text is kept, not lost


def test_line_that_is_not_json(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    lines = [orjson.dumps(chat(i)) for i in range(5)]
    lines.insert(2, b"this is not json at all")
    lines.insert(4, b"[1, 2, 3]")
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = import_path(workspace, path, "chats")
    assert report.balanced and (report.kept, report.quarantined) == (5, 2)
    bad = {b["line"]: b["reason"] for b in quarantined(report)}
    assert bad[3].startswith("broken JSON")
    assert bad[5] == "expected a JSON object, got list"


def test_invalid_utf8(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    good = [orjson.dumps(chat(i)) for i in range(3)]
    broken = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'
    path.write_bytes(b"\n".join([good[0], broken, good[1], good[2]]) + b"\n")
    report = import_path(workspace, path, "chats")
    assert (report.kept, report.quarantined) == (3, 1)
    [bad] = quarantined(report)
    assert bad["line"] == 2 and bad["reason"].startswith("invalid UTF-8 at byte")
    assert "raw_base64" in bad  # bytes that are not UTF-8 are kept as base64


def test_wrong_field_types(workspace: Workspace, tmp_path: Path) -> None:
    rows: list[Any] = [
        chat(0),
        {"messages": "hello"},
        {"messages": [{"role": "user", "content": 42}]},
        {"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        chat(1),
    ]
    report = import_path(workspace, jsonl(tmp_path / "c.jsonl", rows), "chats")
    assert (report.kept, report.quarantined) == (2, 3)
    bad = {b["line"]: b for b in quarantined(report)}
    assert bad[2]["field"] == "messages"
    assert bad[3]["field"] == "messages[0].content"
    assert "wizard" in bad[4]["reason"] and bad[4]["field"] == "messages[0].role"
    assert bad[3]["row"] == rows[2]  # the parsed row is kept whole


def test_empty_file(workspace: Workspace, tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = import_path(workspace, path, "nothing")
    assert (report.rows_read, report.kept, report.quarantined) == (0, 0, 0)
    assert report.version is None and workspace.dataset_names() == []
    result = run_cli("import", str(path), "--as", "nothing")
    assert result.exit_code == 1
    assert "empty.jsonl" in result.output and "nothing imported" in result.output
    assert "read 0 = kept 0 + quarantined 0" in result.output


@pytest.mark.slow
def test_50mb_single_line(workspace: Workspace, tmp_path: Path) -> None:
    big = "word " * 10_000_000  # 50 MB of text in one record
    path = jsonl(
        tmp_path / "big.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "echo"},
                    {"role": "assistant", "content": big},
                ]
            }
        ],
    )
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"x" * 50_000_000)  # 50 MB, no newline, not JSON
    report = import_path(workspace, path, "big")
    assert report.kept == 1
    [row] = list(workspace.version("big").iter_rows())
    assert len(row["messages"][1]["content"]) == len(big)
    report = import_path(workspace, garbage, "garbage")
    assert (report.rows_read, report.quarantined) == (1, 1)
    [bad] = quarantined(report)
    assert bad["line"] == 1 and len(bad["raw"]) == 50_000_000


def test_mix_of_formats_in_one_folder(
    workspace: Workspace, samples: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    jsonl(folder / "a_openai.jsonl", [chat(i) for i in range(4)])
    (folder / "b_sharegpt.json").write_bytes(
        (samples / "sharegpt_samples" / "dialogstudio_sharegpt_original_example.json").read_bytes()
    )
    (folder / "c_docs.csv").write_text("text,url\nA web page.,http://x\nAnother page.,http://y\n")
    (folder / "d_blob.bin").write_bytes(b"\x00\x01\x02")
    with gzip.open(folder / "e_more.jsonl.gz", "wb") as f:
        f.write(b"".join(orjson.dumps(chat(i)) + b"\n" for i in range(10, 13)))
    report = import_path(workspace, folder, "mixed")
    assert report.kind == "conversation"
    by_file = {f.name: f for f in report.files}
    assert by_file["mixed/a_openai.jsonl"].kept == 4
    assert by_file["mixed/b_sharegpt.json"].kept == 5
    assert by_file["mixed/e_more.jsonl.gz"].kept == 3
    docs = by_file["mixed/c_docs.csv"]
    assert (docs.rows_read, docs.quarantined) == (2, 2)
    assert "makes document records but this dataset holds conversation" in (
        docs.first_problem or ""
    )
    blob = by_file["mixed/d_blob.bin"]
    assert blob.quarantined == 1 and "unsupported file type .bin" in (blob.first_problem or "")
    assert report.balanced and report.rows_read == 4 + 5 + 2 + 1 + 3
    out = run_cli("import", str(folder), "--as", "mixed2").output
    assert "c_docs.csv" in out and "unsupported file type .bin" in out
    assert "read 15 = kept 12 + quarantined 3" in out


def test_truncated_json_array_keeps_complete_items(workspace: Workspace, tmp_path: Path) -> None:
    data = orjson.dumps([chat(i) for i in range(6)])
    path = tmp_path / "arr.json"
    path.write_bytes(data[: len(data) - 40])
    report = import_path(workspace, path, "arr")
    assert report.kept == 5 and report.quarantined == 1 and report.balanced
    [bad] = quarantined(report)
    assert bad["line"] == 6 and "after item 5" in bad["reason"]


def test_duplicate_ids_are_reported_not_merged(workspace: Workspace, tmp_path: Path) -> None:
    rows = [{"id": "same", **chat(1)}, {"id": "same", **chat(2)}, chat(3), chat(3)]
    report = import_path(workspace, jsonl(tmp_path / "d.jsonl", rows), "dups")
    assert report.kept == 4
    # two explicit duplicates, and two identical rows whose content ids collide
    assert (report.duplicate_ids, report.duplicate_id_rows) == (2, 4)
    assert workspace.version("dups").manifest.stats["duplicate_ids"] == 2


def test_unknown_fields_are_kept_in_meta(workspace: Workspace, tmp_path: Path) -> None:
    rows = [{**chat(1), "source_set": "lima", "score": 0.5}]
    import_path(workspace, jsonl(tmp_path / "m.jsonl", rows), "m")
    [row] = list(workspace.version("m").iter_rows())
    assert orjson.loads(row["meta"]) == {"source_set": "lima", "score": 0.5}
    assert (
        row["source"] == "m.jsonl" and row["source_row"] == 1 and row["origin"] == "import:m.jsonl"
    )
