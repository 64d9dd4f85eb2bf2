"""`gristmill train sft|dpo|kto` on real sample data with a tiny model built here.

Each run trains a few steps on CPU; the assertions are about what a user relies on:
the model folder loads for evaluation, its weights moved, and the run card accounts
for the data exactly (lineage, files, written and skipped rows)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from tiny_models import file_texts, save_tiny_model, weights

from gristmill.io.ingest import import_path
from gristmill.models import resolve_language_model
from gristmill.models.protocols import GenerationParams
from gristmill.store import Workspace
from gristmill.train.options import LoraOptions, parse_lora

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
LIMA = SAMPLES / "lima" / "lima.json"
DPO = SAMPLES / "llamafactory_demos" / "v1_dpo_demo.jsonl"
KTO = SAMPLES / "llamafactory_demos" / "kto_en_demo.json"
HH = SAMPLES / "hh_rlhf" / "harmless-base-test.jsonl.gz"
C4 = SAMPLES / "llamafactory_demos" / "c4_demo.jsonl"
FAST = ["--max-steps", "2", "--batch-size", "2", "--max-length", "64", "--lr", "1e-3"]
FAST += ["--logging-steps", "1", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = file_texts(LIMA, 300) + file_texts(DPO) + file_texts(KTO, 100)
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "run_card.json").read_text())  # type: ignore[no-any-return]


def changed(a: Path, b: Path) -> set[str]:
    """Names of the tensors that differ between two saved models."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return {name for name in wa if not (wa[name] == wb[name]).all()}


def test_parse_lora() -> None:
    assert parse_lora(None) is None
    assert parse_lora("") == LoraOptions()
    spec = parse_lora("r=8,alpha=16,dropout=0.1,targets=q_proj,v_proj")
    assert spec == LoraOptions(8, 16, 0.1, ("q_proj", "v_proj"))
    with pytest.raises(ValueError, match="unknown --lora key 'rank'"):
        parse_lora("rank=8")
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_lora("r=8,q_proj")
    with pytest.raises(ValueError, match="dropout must be in"):
        parse_lora("dropout=1.5")


@pytest.mark.slow
def test_sft_writes_model_and_exact_card(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    import_path(workspace, LIMA, "lima")
    out = tmp_path / "sft"
    result = run_cli(
        "train", "sft", "--data", "lima@1", "--model", str(tiny), "--output", str(out),
        "--eval-split", "0.1", "--standard", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "final train loss" in result.output and str(out) in result.output

    info = card(out)
    data = info["data"]
    assert info["method"] == "sft" and data["dataset"] == "lima@1"
    [source] = data["lineage"][0]["sources"]
    assert source["sha256"] == sha256(LIMA) and source["kept"] == 1029
    export = data["export"]
    assert export["format"] == "trl-prompt-completion" and export["form"] == "standard"
    # plain text cannot hold LIMA's multi-turn rows: skipped, counted, and the
    # balance holds (every record is written or skipped)
    assert export["skipped"] and sum(export["skipped"].values()) > 0
    assert sum(export["rows_written"].values()) + sum(export["skipped"].values()) == 1029
    assert set(export["rows_written"]) == {"train", "validation"}
    assert "skipped" in result.output
    for f in export["files"]:
        assert sha256(out / f["path"]) == f["sha256"]
    assert info["base_model"]["sha256"]["model.safetensors"] == sha256(tiny / "model.safetensors")
    training = info["training"]
    assert training["steps"] == 2 and len(training["loss_curve"]) == 2
    assert all(math.isfinite(p["loss"]) for p in training["loss_curve"])
    assert training["final_eval_loss"] is not None
    assert info["hyperparameters"]["learning_rate"] == 1e-3
    assert info["hyperparameters"]["completion_only_loss"] is True
    assert info["libraries"]["trl"] and info["seed"] == 0
    assert "lima@1" in (out / "README.md").read_text()

    assert changed(tiny, out)  # every tensor is trainable in a full fine-tune
    lm, _ = resolve_language_model(str(out), threads=1)
    [generation] = lm.generate(["What is the"], GenerationParams(max_tokens=4))
    assert generation.completion_tokens > 0

    again = run_cli("train", "sft", "--data", "lima", "--model", str(tiny), "-o", str(out), *FAST)
    assert again.exit_code == 1 and "not empty; pass --overwrite" in again.output


@pytest.mark.slow
def test_dpo_lora_saves_adapter_and_merged_model(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    import_path(workspace, DPO, "prefs")
    out = tmp_path / "dpo-lora"
    result = run_cli(
        "train", "dpo", "--data", "prefs", "--model", str(tiny), "-o", str(out),
        "--lora", "r=4,alpha=8,targets=q_proj,v_proj", "--beta", "0.2", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    assert any((out / "adapter").glob("adapter_model.*"))
    info = card(out)
    assert info["lora"]["targets"] == ["q_proj", "v_proj"]
    assert info["hyperparameters"]["beta"] == 0.2
    params = info["base_model"]["parameters"]
    assert 0 < params["trainable"] < params["total"] / 10
    assert info["data"]["export"]["rows_written"] == {"train": 10}
    # merged: only the wrapped projections moved, the rest is the base, bit for bit
    moved = changed(tiny, out)
    assert moved and all(".q_proj." in n or ".v_proj." in n for n in moved)
    lm, description = resolve_language_model(str(out), threads=1)
    assert str(out) in description
    [scores] = lm.continuation_logprobs(["the answer is"], [" yes"])
    assert scores and all(math.isfinite(x) for x in scores)


@pytest.mark.slow
def test_kto_trains_on_labelled_candidates(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    import_path(workspace, KTO, "kto")
    out = tmp_path / "kto"
    result = run_cli("train", "kto", "--data", "kto", "--model", str(tiny), "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    info = card(out)
    assert info["method"] == "kto"
    assert info["data"]["export"]["format"] == "trl-unpaired"
    assert info["data"]["export"]["rows_written"] == {"train": 300}
    assert info["training"]["steps"] == 2
    assert changed(tiny, out)


@pytest.mark.slow
def test_sft_on_documents_is_language_modeling(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    import_path(workspace, C4, "web")
    out = tmp_path / "pretrain"
    result = run_cli("train", "sft", "--data", "web", "--model", str(tiny), "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    export = card(out)["data"]["export"]
    assert (export["format"], export["form"]) == ("trl-lm", "standard")
    assert export["rows_written"] == {"train": 300} and not export["skipped"]
    # the run can be the base of the next one, but never its own output
    again = run_cli("train", "sft", "--data", "web", "--model", str(out), "-o", str(out))
    assert again.exit_code == 1 and "holds the base model" in again.output
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_eval_after_retraining_in_place_sees_the_new_weights(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    """`train --overwrite` into the same folder, then `eval run` again: the eval's model
    call cache must not answer for the old weights (same folder name, new model)."""
    import_path(workspace, DPO, "prefs")
    out = tmp_path / "model"
    evals = ["eval", "run", "openbookqa", "--model", str(out), "--limit", "4", "--threads", "1"]
    logprobs = []
    for lr in ("1e-3", "5e-2"):
        trained = run_cli(
            "train", "dpo", "--data", "prefs", "--model", str(tiny), "-o", str(out),
            "--overwrite", *FAST, "--lr", lr,
        )  # fmt: skip
        assert trained.exit_code == 0, trained.output
        result = run_cli(*evals)
        assert result.exit_code == 0, result.output
        ref = re.search(r"run stored as (\S+)", result.output)
        assert ref is not None
        logprobs.append(
            [r.meta["choice_logprobs"] for r in workspace.version(ref[1]).iter_records()]
        )
    assert logprobs[0] != logprobs[1]


def test_refusals_name_the_problem(
    workspace: Workspace, run_cli: Callable[..., Result], tiny: Path, tmp_path: Path
) -> None:
    import_path(workspace, DPO, "prefs")
    import_path(workspace, HH, "hh")
    model = ["--model", str(tiny)]
    wrong_kind = run_cli("train", "sft", "--data", "prefs", *model, "-o", str(tmp_path / "a"))
    assert wrong_kind.exit_code == 1
    assert "sft trains on conversation or document datasets, not preference" in wrong_kind.output
    # HH-RLHF pairs carry no desirable/undesirable label: every candidate is skipped,
    # and the error says why instead of training on nothing
    unlabelled = run_cli("train", "kto", "--data", "hh", *model, "-o", str(tmp_path / "b"))
    assert unlabelled.exit_code == 1
    assert "gave no trl-unpaired rows to train on" in unlabelled.output
    assert "4616 × candidate has no label" in unlabelled.output
    bad_lora = run_cli("train", "dpo", "--data", "prefs", *model, "--lora", "rank=4")
    assert bad_lora.exit_code == 1 and "unknown --lora key 'rank'" in bad_lora.output
    no_model = run_cli("train", "dpo", "--data", "prefs", "--model", str(tmp_path / "nope"))
    assert no_model.exit_code == 1 and "not an existing path" in no_model.output
    no_split = run_cli("train", "dpo", "--data", "prefs", *model, "--eval-steps", "5")
    assert no_split.exit_code == 1 and "--eval-steps needs an eval split" in no_split.output
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    not_a_run = run_cli("train", "dpo", "--data", "prefs", *model, "-o", str(mine), "--overwrite")
    assert not_a_run.exit_code == 1 and "holds no earlier run" in not_a_run.output
    assert (mine / "README.md").read_text() == "my notes"
    # a run that fails while replacing a finished one gives the finished one back
    done = tmp_path / "done"
    first = run_cli("train", "dpo", "--data", "prefs", *model, "-o", str(done), *FAST)
    assert first.exit_code == 0, first.output
    card = (done / "run_card.json").read_bytes()
    failed = run_cli("train", "kto", "--data", "hh", *model, "-o", str(done), "--overwrite")
    assert failed.exit_code == 1 and "the earlier run in" in failed.output
    assert (done / "run_card.json").read_bytes() == card
    assert sorted(p.name for p in tmp_path.iterdir() if ".replaced-" in p.name) == []
    missing = run_cli("train", "dpo", "--data", "nothing", *model)
    assert missing.exit_code == 1 and "no dataset named 'nothing'" in missing.output
