"""Plant real eval items (GSM8K, OpenBookQA) into a real training set (LIMA) and find
exactly them: the colliding records and items, the longest common substring, and a
clean version without them. A paraphrase that shares no 13-gram is not flagged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from gristmill.curate.decontaminate import normalize
from gristmill.evals.contamination import contaminated_ids, contamination_report
from gristmill.records.kinds import Kind
from gristmill.store import VersionWriter, Workspace


@pytest.fixture
def planted(run_cli: Callable[..., Result], workspace: Workspace, samples: Path) -> dict[str, Any]:
    for path, name, fmt in (
        (samples / "lima", "lima", "alpaca"),
        (samples / "gsm8k" / "test.jsonl", "gsm8k", "gsm8k"),
        (samples / "openbookqa" / "openbookqa.jsonl", "openbookqa", "openbookqa"),
    ):
        assert run_cli("import", str(path), "--as", name, "--format", fmt).exit_code == 0
    lima = workspace.version("lima@1").table().to_pylist()
    gsm = list(workspace.version("gsm8k@1").iter_rows())
    obqa = list(workspace.version("openbookqa@1").iter_rows())
    long_obqa = [r for r in obqa if len(normalize(r["input"])) >= 13][:1]
    short_obqa = [r for r in obqa if 3 <= len(normalize(r["input"])) < 13][:1]
    plan = {  # lima record index → eval items planted in it
        3: [gsm[10]],
        50: [gsm[11]],
        200: [gsm[12], short_obqa[0]],
        500: [long_obqa[0]],
        900: [gsm[13]],
    }
    expected: dict[str, set[str]] = {}
    for index, items in plan.items():
        row = lima[index]
        for n, item in enumerate(items):
            turn = row["messages"][n % len(row["messages"])]
            # inside other text, with its case and punctuation changed
            turn["content"] += f"\n\nAlso, {item['input'].upper().replace(',', ';')} Thanks!"
        expected[row["id"]] = {i["id"] for i in items}
    # a paraphrase: every 8th word replaced, so no 13-word window survives
    words = gsm[20]["input"].split()
    assert len(words) >= 26
    lima[700]["messages"][0]["content"] += " " + " ".join(
        "blorp" if i % 8 == 7 else w for i, w in enumerate(words)
    )
    with VersionWriter(workspace, "train", Kind.CONVERSATION, "test-plant") as writer:
        writer.write_rows(lima)
    return {"expected": expected, "paraphrased": lima[700]["id"], "total": len(lima)}


def test_report_finds_exactly_the_planted_items(
    workspace: Workspace, planted: dict[str, Any]
) -> None:
    train = workspace.version("train@1")
    evals = [workspace.version("gsm8k@1"), workspace.version("openbookqa@1")]
    assert contamination_report(workspace.version("lima@1"), evals).collisions == []
    report = contamination_report(train, evals)
    found: dict[str, set[str]] = {}
    for c in report.collisions:
        found.setdefault(c.record_id, set()).add(c.item_id)
    assert found == planted["expected"]
    assert planted["paraphrased"] not in found
    assert contaminated_ids(train, evals) == set(planted["expected"])
    for c in report.collisions:
        item_words = normalize(c.item_input)
        assert c.lcs_words == len(item_words)  # the whole question was copied
        if len(item_words) >= 13:
            assert c.ngrams == len(item_words) - 12  # every 13-gram of it
        else:
            assert c.ngrams == 1  # a short input is one whole-text n-gram
        assert c.eval in ("gsm8k@1", "openbookqa@1")


def test_cli_lists_collisions_and_drop_writes_a_clean_version(
    run_cli: Callable[..., Result], workspace: Workspace, planted: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "contamination.json"
    result = run_cli(
        "eval", "contamination", "train", "gsm8k", "openbookqa", "--drop", "--json", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "5 contaminated records, 6 eval items hit" in result.output
    clean = workspace.version("train@2")
    assert clean.manifest.parent == "train@1"
    assert clean.row_count == planted["total"] - 5
    ids = set(clean.table(columns=["id"]).column("id").to_pylist())
    assert not ids & set(planted["expected"])
    assert planted["paraphrased"] in ids
    data = orjson.loads(out.read_bytes())
    assert data["contaminated_records"] == 5 and data["eval_items_hit"] == 6
    again = run_cli("eval", "contamination", "train@2", "gsm8k", "openbookqa", "--drop")
    assert "0 contaminated records" in again.output and "nothing to drop" in again.output


def test_export_leaves_out_or_refuses_contaminated_records(
    run_cli: Callable[..., Result], planted: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "sft.jsonl"
    result = run_cli(
        "export", "train", "--format", "openai-chat", "--out", str(out),
        "--decontaminate-against", "gsm8k", "--decontaminate-against", "openbookqa",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "contaminated: gsm8k@1" in result.output or "contaminated: openbookqa@1" in result.output
    rows = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == planted["total"] - len(planted["expected"])
    refused = tmp_path / "refused.jsonl"
    result = run_cli(
        "export", "train", "--format", "openai-chat", "--out", str(refused),
        "--decontaminate-against", "gsm8k", "--refuse-contaminated",
    )  # fmt: skip
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not refused.exists()
