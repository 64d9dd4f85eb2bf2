"""The whole loop in one test, all through the command line: import real data, sample
it, SFT a tiny model built here, DPO the result on real preference pairs, evaluate
base and trained model on OpenBookQA, compare the two runs.

The model is tiny and trains a few steps, so the scores mean nothing; what must hold
is the plumbing a user relies on: the card names the exact data (version and source
sha256), the weights moved, each eval stored per-sample logs of *its* model, and the
comparison prints a difference with a confidence interval.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from tiny_models import file_texts, save_tiny_model, weights

from gristmill.store import Workspace

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
LIMA = SAMPLES / "lima" / "lima.json"
DPO = SAMPLES / "llamafactory_demos" / "v1_dpo_demo.jsonl"
OBQA = SAMPLES / "openbookqa" / "openbookqa.jsonl"
STEPS = ["--max-steps", "3", "--batch-size", "2", "--max-length", "96", "--lr", "2e-3"]
STEPS += ["--logging-steps", "1", "--threads", "1", "--device", "cpu"]
EVAL = ["--limit", "12", "--threads", "1", "--device", "cpu"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "run_card.json").read_text())  # type: ignore[no-any-return]


def moved(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return any(not (wa[name] == wb[name]).all() for name in wa)


def logprobs(workspace: Workspace, ref: str) -> dict[str, list[float]]:
    """Per item, the log-probabilities the run's model gave each choice."""
    return {r.id: r.meta["choice_logprobs"] for r in workspace.version(ref).iter_records()}


def test_import_train_sft_dpo_eval_compare(
    workspace: Workspace, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    ok(run_cli("import", str(LIMA), "--as", "lima"))
    ok(run_cli("sample", "lima", "--by", "random", "--size", "120", "-o", "lima-120"))
    ok(run_cli("import", str(DPO), "--as", "prefs"))
    texts = file_texts(LIMA, 300) + file_texts(DPO) + file_texts(OBQA, 100)
    base = save_tiny_model(tmp_path / "base", texts)
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"

    out = ok(
        run_cli(
            "train", "sft", "--data", "lima-120@1", "--model", str(base), "-o", str(sft),
            "--eval-split", "0.1", "--eval-steps", "2", *STEPS,
        )
    )  # fmt: skip
    assert "final train loss" in out and str(sft) in out
    out = ok(
        run_cli("train", "dpo", "--data", "prefs@1", "--model", str(sft), "-o", str(dpo), *STEPS)
    )
    assert "final train loss" in out

    # the card names the exact data: the version, its chain back to the import, and
    # the imported file's sha256
    sft_card = card(sft)
    assert sft_card["data"]["dataset"] == "lima-120@1"
    chain = sft_card["data"]["lineage"]
    assert [step["ref"] for step in chain] == ["lima-120@1", "lima@1"]
    assert [step["operation"] for step in chain] == ["sample", "import"]
    assert chain[-1]["sources"][0]["sha256"] == sha256(LIMA)
    assert sum(sft_card["data"]["export"]["rows_written"].values()) == 120
    # eval loss every 2 steps and at the end, train loss every step
    assert [p["step"] for p in sft_card["training"]["eval_curve"]] == [2, 3]
    assert [p["step"] for p in sft_card["training"]["loss_curve"]] == [1, 2, 3]
    # eval loss every 2 steps and at the end, train loss every step
    assert [p["step"] for p in sft_card["training"]["eval_curve"]] == [2, 3]
    assert [p["step"] for p in sft_card["training"]["loss_curve"]] == [1, 2, 3]
    dpo_card = card(dpo)
    assert dpo_card["data"]["lineage"][0]["ref"] == "prefs@1"
    assert dpo_card["data"]["lineage"][0]["sources"][0]["sha256"] == sha256(DPO)
    # DPO started from the SFT model: its base is that folder, hash for hash
    assert dpo_card["base_model"]["sha256"]["model.safetensors"] == sha256(
        sft / "model.safetensors"
    )
    assert dpo_card["training"]["steps"] == 3 and len(dpo_card["training"]["loss_curve"]) == 3
    assert moved(base, sft) and moved(sft, dpo)

    out = ok(
        run_cli("eval", "run", "openbookqa", "--model", str(base), "--name", "obqa-base", *EVAL)
    )
    assert "run stored as obqa-base@1" in out
    out = ok(run_cli("eval", "run", "openbookqa", "--model", str(dpo), "--name", "obqa-dpo", *EVAL))
    assert "run stored as obqa-dpo@1" in out
    # per-sample logs, one per item, and each from its own model
    before, after = logprobs(workspace, "obqa-base@1"), logprobs(workspace, "obqa-dpo@1")
    assert len(before) == len(after) == 12 and before.keys() == after.keys()
    assert any(before[k] != after[k] for k in before)

    out = ok(run_cli("eval", "compare", "obqa-base@1", "obqa-dpo@1"))
    assert "B − A" in out and "95% CI" in out
    assert re.search(r"acc\s.*[+-]\d\.\d{3}\s.*\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]", out), out
    comparison = json.loads(ok(run_cli("eval", "compare", "obqa-base@1", "obqa-dpo@1", "--json")))
    acc = comparison["metrics"]["acc"]
    assert acc["n"] == 12 and acc["low"] <= acc["diff"] <= acc["high"]
