"""The vectorised JSONL path must give exactly the rows of the row-by-row path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from gristmill.io.ingest import ImportOptions, import_path
from gristmill.store import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from make_corpus import write_corpus


def both_paths(
    workspace: Workspace, path: Path, block_bytes: int = 64 << 10, expect_fast: bool = True
) -> tuple[pa.Table, pa.Table]:
    tables = []
    for fast in (True, False):
        name = f"{path.stem.replace('.', '_')}-{'fast' if fast else 'rows'}"
        report = import_path(
            workspace, path, name, ImportOptions(fast=fast, block_bytes=block_bytes)
        )
        assert report.balanced
        assert (sum(f.fast_rows for f in report.files) > 0) == (fast and expect_fast)
        tables.append(workspace.version(name).table().drop_columns(["created_at"]))
    return tables[0], tables[1]


def assert_same(fast: pa.Table, rows: pa.Table) -> None:
    assert fast.num_rows == rows.num_rows
    for name in fast.column_names:
        assert fast.column(name).to_pylist() == rows.column(name).to_pylist(), name


def test_real_chats_with_ids(workspace: Workspace, tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "corpus.jsonl", 2500)  # LIMA, Alpaca, ShareGPT chats
    fast, rows = both_paths(workspace, path)
    assert_same(fast, rows)
    assert fast.column("id").to_pylist()[:2] == ["bench-00000000", "bench-00000001"]


def test_content_ids_system_prompts_and_bad_rows(workspace: Workspace, tmp_path: Path) -> None:
    good: list[dict[str, Any]] = []
    for i in range(600):
        messages = [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "Be brief." if i % 2 else "  "})
        if i % 5 == 0:
            messages.append({"role": "tool", "content": ""})
        good.append({"messages": messages, "n": i, "tag": "x"})
    lines = [orjson.dumps(r) for r in good]
    lines[300] = b'{"messages": [{"role": "user", "content": ""}], "n": 1, "tag": "x"}'  # blank
    lines[450] = b'{"messages": [{"role": "system", "content": "only"}], "n": 2, "tag": "x"}'
    lines[500] = b"not json"
    path = tmp_path / "chats.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast, rows = both_paths(workspace, path, block_bytes=8 << 10)
    assert_same(fast, rows)
    assert fast.num_rows == 597
    assert fast.column("system").to_pylist()[:4] == [None, None, None, "Be brief."]


@pytest.mark.parametrize(
    "sample",
    [
        "llamafactory_demos/c4_demo.jsonl",
        "dolma_cc_samples/cc_en_head-0091.jsonl",
        "datajuicer_web_samples/redpajama-c4-refined.jsonl",
    ],
)
def test_real_documents(workspace: Workspace, samples: Path, sample: str) -> None:
    # Dolma rows carry dates, which only the row path reads
    fast, rows = both_paths(
        workspace, samples / sample, 32 << 10, expect_fast="dolma" not in sample
    )
    assert_same(fast, rows)
