"""The `gristmill eval` command line end to end with a tiny Llama built from a config (a
local transformers folder, as `gristmill train` writes one): run, compare, report,
failures → SFT data, export to lm-eval-harness and inspect_ai, judge and rank."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import Result
from tiny_models import save_tiny_model

from gristmill.records.arrow import to_row
from gristmill.records.kinds import Candidate, Kind, Message, Preference
from gristmill.store import VersionWriter, Workspace


@pytest.fixture
def tiny(tmp_path: Path, samples: Path) -> tuple[str, str]:
    lines = (samples / "openbookqa" / "openbookqa.jsonl").read_text().splitlines()[:50]
    texts = [json.dumps(json.loads(x)) for x in lines]
    texts += (samples / "gsm8k" / "test.jsonl").read_text().splitlines()[:20]
    return (
        str(save_tiny_model(tmp_path / "tiny-a", texts, 0, vocab_size=4000, max_positions=512)),
        str(save_tiny_model(tmp_path / "tiny-b", texts, 1, vocab_size=4000, max_positions=512)),
    )


def test_run_compare_report_failures_with_local_folders(
    run_cli: Callable[..., Result], workspace: Workspace, tiny: tuple[str, str], tmp_path: Path
) -> None:
    a, b = tiny
    first = run_cli(
        "eval",
        "run",
        "openbookqa",
        "--model",
        a,
        "--limit",
        "6",
        "--threads",
        "1",
        "--name",
        "before",
    )
    assert first.exit_code == 0, first.output
    assert "run stored as before@1" in first.output
    second = run_cli("eval", "run", "openbookqa", "--model", b, "--limit", "6", "--threads", "1")
    assert second.exit_code == 0, second.output
    assert "run stored as eval-openbookqa-tiny-b@1" in second.output

    comp = run_cli("eval", "compare", "before@1", "eval-openbookqa-tiny-b@1", "--json")
    assert comp.exit_code == 0, comp.output
    data = orjson.loads(comp.output)
    acc = data["metrics"]["acc"]
    va = workspace.version("before@1").manifest.stats["metrics"]["acc"]["value"]
    vb = workspace.version("eval-openbookqa-tiny-b@1").manifest.stats["metrics"]["acc"]["value"]
    assert acc["diff"] == pytest.approx(vb - va) and data["shared"] == 6
    assert acc["low"] <= acc["diff"] <= acc["high"] and 0 < acc["p_value"] <= 1
    table = run_cli("eval", "compare", "before", "eval-openbookqa-tiny-b")
    assert table.exit_code == 0 and "p-value" in table.output and "acc_norm" in table.output

    html = tmp_path / "report.html"
    rep = run_cli("eval", "report", "before@1", "-o", str(html))
    assert rep.exit_code == 0 and html.read_text().count("<tr>") >= 3
    assert "data:image/png;base64" not in html.read_text() or "by tag" in html.read_text()

    fails = run_cli("eval", "failures", "before@1", "--name", "fix")
    wrong = [
        r
        for r in workspace.version("before@1").iter_rows()
        if not orjson.loads(r["meta"])["correct"]
    ]
    if not wrong:
        assert "no failed samples" in fails.output
        return
    assert f"{len(wrong)} failed samples stored as fix@1" in fails.output
    fixed = {r["id"]: r for r in workspace.version("fix@1").iter_rows()}
    for row in wrong:
        meta = orjson.loads(row["meta"])
        assert fixed[row["id"]]["messages"][-1]["content"] == meta["choices"][meta["answer_index"]]
        assert fixed[row["id"]]["messages"][0]["content"] == row["messages"][0]["content"]
    exported = tmp_path / "sft.jsonl"
    assert run_cli("export", "fix", "-f", "openai-chat", "-o", str(exported)).exit_code == 0
    first_line = json.loads(exported.read_text().splitlines()[0])
    assert first_line["messages"][-1]["role"] == "assistant"


def test_generative_run_with_a_local_folder_and_bad_input(
    run_cli: Callable[..., Result], workspace: Workspace, tiny: tuple[str, str], tmp_path: Path
) -> None:
    result = run_cli(
        "eval",
        "run",
        "gsm8k",
        "--model",
        tiny[0],
        "--limit",
        "2",
        "--max-tokens",
        "4",
        "--threads",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert workspace.version("eval-gsm8k-tiny-a@1").manifest.params["max_tokens"] == 4
    # a longer run resumes from the cache: only the two new items reach the model
    more = ("eval", "run", "gsm8k", "--model", tiny[0], "--max-tokens", "4", "--batch-size", "1")
    longer = run_cli(*more, "--limit", "4", "--threads", "1")
    assert "model calls: 2 (the rest from the cache)" in longer.output
    first = [r["messages"][-1] for r in workspace.version("eval-gsm8k-tiny-a@1").iter_rows()]
    again = [r["messages"][-1] for r in workspace.version("eval-gsm8k-tiny-a@2").iter_rows()]
    assert again[:2] == first
    sampled = run_cli(
        "eval",
        "run",
        "openbookqa",
        "--model",
        tiny[0],
        "--sample",
        "3",
        "--seed",
        "5",
        "--threads",
        "1",
        "--name",
        "s",
    )
    assert sampled.exit_code == 0, sampled.output
    ids = [r["id"] for r in workspace.version("s@1").iter_rows()]
    everything = [r["id"] for r in workspace.version("openbookqa@1").iter_rows(columns=["id"])]
    assert len(ids) == 3 and ids != everything[:3]
    assert ids == sorted(ids, key=everything.index)  # in dataset order
    again = run_cli(
        "eval",
        "run",
        "openbookqa",
        "--model",
        tiny[0],
        "--sample",
        "3",
        "--seed",
        "5",
        "--threads",
        "1",
        "--name",
        "s",
    )
    assert [
        r["id"] for r in workspace.version("s@2").iter_rows()
    ] == ids and "model calls: 0" in again.output
    bad = tmp_path / "task.yaml"
    bad.write_text("dataset: nowhere\ndata: missing.jsonl\noutput_type: generate\n")
    missing = run_cli("eval", "run", str(bad), "--model", tiny[0])
    assert missing.exit_code == 1 and "missing.jsonl" in missing.output
    nomodel = run_cli("eval", "run", "gsm8k", "--model", str(tmp_path / "nope"))
    assert nomodel.exit_code == 1 and "no model" in nomodel.output
    notrun = run_cli("eval", "compare", "gsm8k@1", "eval-gsm8k-tiny-a@1")
    assert notrun.exit_code == 1 and "gsm8k@1 is not an eval run" in notrun.output


def test_custom_yaml_task_with_text_metrics(
    run_cli: Callable[..., Result], workspace: Workspace, tiny: tuple[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"input": q, "target": a, "tags": [t]})
            for q, a, t in [
                ("What colour is the sky?", "blue", "easy"),
                ("Name a large cat.", "a lion", "easy"),
                ("Translate 'chat' to English.", "cat", "hard"),
            ]
        )
    )
    task = tmp_path / "qa.yaml"
    task.write_text(
        "name: qa\ndataset: qa\ndata: qa.jsonl\noutput_type: generate\n"
        "prompt: 'Q: {{ input }}\\nA:'\ngeneration: {max_tokens: 3}\n"
        "metrics: [exact_match, f1, bleu, chrf, rouge1, rougeL]\n"
    )
    result = run_cli("eval", "run", str(task), "--model", tiny[0], "--threads", "1")
    assert result.exit_code == 0, result.output
    assert f"imported {data}" in result.output
    stats = workspace.version("eval-qa-tiny-a@1").manifest.stats
    assert set(stats["metrics"]) == {"exact_match", "f1", "bleu", "chrf", "rouge1", "rougeL"}
    assert set(stats["by_tag"]) == {"easy", "hard"} and stats["by_tag"]["easy"]["f1"]["n"] == 2
    from sacrebleu.metrics.bleu import BLEU

    rows = list(workspace.version("eval-qa-tiny-a@1").iter_rows())
    hyps = [r["messages"][-1]["content"] for r in rows]
    refs = [orjson.loads(r["meta"])["references"][0] for r in rows]
    assert stats["metrics"]["bleu"]["value"] == pytest.approx(
        BLEU().corpus_score(hyps, [refs]).score
    )
    scores = workspace.version("eval-qa-tiny-a@1").read_attribute("scores").to_pylist()
    assert [s["id"] for s in scores] == [r["id"] for r in rows] and "rougeL" in scores[0]


def test_export_to_lm_eval_and_inspect(
    run_cli: Callable[..., Result], workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "lm"
    result = run_cli(
        "eval", "export", "openbookqa", "--to", "lm-eval", "-o", str(folder), "--limit", "4"
    )
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((folder / "openbookqa.yaml").read_text())
    assert spec["task"] == "gristmill_openbookqa" and spec["output_type"] == "multiple_choice"
    docs = [json.loads(x) for x in (folder / "openbookqa.jsonl").read_text().splitlines()]
    assert len(docs) == 4 and docs[0]["gm_choices"][docs[0]["answer_index"]]
    TaskManager = pytest.importorskip("lm_eval.tasks").TaskManager  # the bench extra

    manager = TaskManager(include_path=str(folder))
    task = manager.load(["gristmill_openbookqa"])["tasks"]["gristmill_openbookqa"]
    doc = task.test_docs()[0]
    assert task.doc_to_text(doc) == docs[0]["gm_prompt"]
    assert task.doc_to_choice(doc) == docs[0]["gm_choices"]
    assert task.doc_to_target(doc) == docs[0]["answer_index"]

    path = tmp_path / "inspect.jsonl"
    assert (
        run_cli(
            "eval", "export", "mmlu", "--to", "inspect", "-o", str(path), "--limit", "3"
        ).exit_code
        == 0
    )
    sample = json.loads(path.read_text().splitlines()[0])
    assert sample["target"] in "ABCD" and len(sample["choices"]) == 4 and sample["input"]


def _preference(i: int, a: str, b: str, rank_a: int, rank_b: int, by: str) -> dict[str, Any]:
    return to_row(
        Preference(
            id=f"p{i}",
            origin=by,
            prompt=[Message(role="user", content=f"question {i}")],
            candidates=[
                Candidate(messages=[Message(role="assistant", content="x")], model=a, rank=rank_a),
                Candidate(
                    messages=[Message(role="assistant", content="y")],
                    origin=f"model:{b}",
                    rank=rank_b,
                ),
            ],
        )
    )


def test_rank_from_judgements(
    run_cli: Callable[..., Result], workspace: Workspace, tmp_path: Path
) -> None:
    rows = [_preference(i, "big", "small", 1, 2, "human:ann") for i in range(6)]
    rows += [_preference(10 + i, "big", "small", 2, 1, "human:bob") for i in range(2)]
    rows += [_preference(20, "big", "small", 1, 1, "human:ann")]
    with VersionWriter(workspace, "votes", Kind.PREFERENCE, "test") as writer:
        writer.write_rows(rows)
    html = tmp_path / "ladder.html"
    result = run_cli("eval", "rank", "votes", "--json", "--prior", "0", "--html", str(html))
    assert result.exit_code == 0, result.output
    ladder = orjson.loads(result.output[: result.output.rindex("]") + 1])
    assert [r["system"] for r in ladder] == ["big", "small"]
    assert ladder[0]["wins"] == 6 and ladder[0]["losses"] == 2 and ladder[0]["ties"] == 1
    # 6.5 : 2.5 with the tie split → Elo gap 400·log10(6.5 / 2.5)
    import math

    assert ladder[0]["rating"] - ladder[1]["rating"] == pytest.approx(400 * math.log10(6.5 / 2.5))
    assert "Bradley-Terry" in html.read_text()


def test_human_grades_from_the_annotation_apps_write_back(
    run_cli: Callable[..., Result], workspace: Workspace, tiny: tuple[str, str]
) -> None:
    """People rate a run's answers in the app (record-level rating, two annotators);
    the app's write-back version becomes a run with human_graded and its interval."""
    pytest.importorskip("gristmill.annotate.writeback")
    import pandas as pd

    from gristmill.annotate.aggregate import aggregate
    from gristmill.annotate.writeback import write_back

    ok = run_cli(
        "eval",
        "run",
        "openbookqa",
        "--model",
        tiny[0],
        "--limit",
        "4",
        "--threads",
        "1",
        "--name",
        "r",
    )
    assert ok.exit_code == 0, ok.output
    ids = [r["id"] for r in workspace.version("r@1").iter_rows(columns=["id"])]
    question = {"name": "quality", "kind": "rating", "target": "record",
                "dimensions": [{"name": "helpful", "min": 1, "max": 5}]}  # fmt: skip
    given = {ids[0]: (4, 5), ids[1]: (2, 2), ids[2]: (1, 3)}  # ids[3] left unrated
    answers = pd.DataFrame(
        [
            (rid, who, {"helpful": v})
            for rid, pair in given.items()
            for who, v in zip("ab", pair, strict=True)
        ],
        columns=["record_id", "annotator", "value"],
    )
    annotated = write_back(
        workspace, "r@1", "grading", [question], {"quality": aggregate(question, answers)}
    )
    result = run_cli("eval", "human", annotated.ref, "--question", "quality")
    assert result.exit_code == 0, result.output
    assert "3 rated samples, 1 without a rating (left out)" in result.output
    version = workspace.version("r@3")
    means = [sum(v) / 2 for v in given.values()]
    est = version.manifest.stats["metrics"]["human_graded"]
    assert est["value"] == pytest.approx(sum(means) / 3) and est["n"] == 3
    assert (
        version.manifest.stats["metrics"]["acc"]
        == workspace.version("r@1").manifest.stats["metrics"]["acc"]
    )
    assert version.manifest.params["human"]["from"] == annotated.ref
    comp = run_cli("eval", "compare", "r@1", "r@3", "--json")
    assert comp.exit_code == 0 and orjson.loads(comp.output)["metrics"]["acc"]["diff"] == 0


def test_people_judge_pairs_in_the_app_and_rank_reads_their_write_back(
    run_cli: Callable[..., Result], workspace: Workspace, tiny: tuple[str, str]
) -> None:
    pytest.importorskip("gristmill.annotate.writeback")
    import pandas as pd

    from gristmill.annotate.aggregate import aggregate
    from gristmill.annotate.writeback import write_back

    for model, run in ((tiny[0], "ra"), (tiny[1], "rb")):
        done = run_cli(
            "eval",
            "run",
            "openbookqa",
            "--model",
            model,
            "--limit",
            "4",
            "--threads",
            "1",
            "--name",
            run,
        )
        assert done.exit_code == 0, done.output
    made = run_cli("eval", "pairs", "ra", "rb", "--name", "duel")
    assert made.exit_code == 0 and "4 pairs stored as duel@1" in made.output
    records = list(workspace.version("duel@1").iter_rows())
    shown = [[c["model"] for c in r["candidates"]] for r in records]
    assert shown == [["tiny-a", "tiny-b"], ["tiny-b", "tiny-a"]] * 2  # order alternates
    assert all(c["rank"] is None for r in records for c in r["candidates"])
    # two people prefer whatever was shown as A three times, and call one a tie
    choices = ["a", "a", "a", "tie"]
    answers = pd.DataFrame(
        [
            (r["id"], who, {"choice": c})
            for r, c in zip(records, choices, strict=True)
            for who in ("ann", "bob")
        ],
        columns=["record_id", "annotator", "value"],
    )
    question = {"name": "pref", "kind": "preference"}
    voted = write_back(
        workspace, "duel@1", "duel", [question], {"pref": aggregate(question, answers)}
    )
    ladder = run_cli("eval", "rank", voted.ref, "--json", "--prior", "0")
    assert ladder.exit_code == 0, ladder.output
    by = {r["system"]: r for r in orjson.loads(ladder.output)}
    # shown-as-A won items 1 and 3 for tiny-a, item 2 for tiny-b; item 4 tied
    assert (by["tiny-a"]["wins"], by["tiny-a"]["losses"], by["tiny-a"]["ties"]) == (2, 1, 1)
    assert (by["tiny-b"]["wins"], by["tiny-b"]["losses"], by["tiny-b"]["ties"]) == (1, 2, 1)
