"""End to end: exports feed TRL's SFTTrainer and DPOTrainer as they are.

A tiny LlamaForCausalLM from a config and a WordLevel tokenizer trained here on the
exported text (no hub download), a few steps on CPU each: the point is that the
files load and train, not that the model learns.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import pytest
from test_export_fixtures import lima_conversations, make_version, rated, user
from tiny_models import build_model, build_tokenizer, file_texts

from gristmill.io.export import ExportOptions, export_version
from gristmill.io.splits import SplitSpec
from gristmill.records.kinds import Kind, Preference

pytestmark = pytest.mark.slow


def _preferences() -> list[Preference]:
    """LIMA prompts, each with its answer (rated high) and a clipped answer (low)."""
    out = []
    for conv in lima_conversations(12):
        prompt, answer = conv.messages[-2].content, conv.messages[-1].content
        out.append(
            Preference(
                id=f"p-{conv.id}",
                prompt=[user(prompt)],
                candidates=[
                    rated(answer, helpful=[5, 4], honest=5),
                    rated(" ".join(answer.split()[:8]), helpful=2, honest=3),
                ],
            )
        )
    return out


def _common_args(out: Path) -> dict[str, Any]:
    return {
        "output_dir": str(out),
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "bf16": False,
        "max_length": 96,
        "dataloader_num_workers": 0,
        "seed": 0,
    }


def _losses(history: list[dict[str, Any]]) -> list[float]:
    return [float(entry["loss"]) for entry in history if "loss" in entry]


def test_sft_and_dpo_train_on_exports(tmp_path: Path) -> None:
    import datasets
    import torch
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    sft_version = make_version(tmp_path, "lima", Kind.CONVERSATION, lima_conversations(20))
    sft_dir = tmp_path / "sft-data"
    sft_report = export_version(
        sft_version,
        "trl-lm",
        sft_dir,
        ExportOptions(split=SplitSpec({"train": 0.8, "validation": 0.2}, seed=0)),
    )
    prefs = _preferences()
    pref_version = make_version(tmp_path, "prefs", Kind.PREFERENCE, prefs)
    dpo_file = tmp_path / "dpo.jsonl"
    dpo_report = export_version(pref_version, "trl-preference", dpo_file)
    assert dpo_report.rows_written["train"] == len(prefs) and not dpo_report.skipped

    data_files = {s: str(sft_dir / f"{s}.jsonl") for s in sft_report.rows_written}
    cache = str(tmp_path / "hf-cache")
    sft_data = datasets.load_dataset("json", data_files=data_files, cache_dir=cache)
    dpo_data = datasets.load_dataset(
        "json", data_files=str(dpo_file), split="train", cache_dir=cache
    )
    files = [*map(Path, data_files.values()), dpo_file]
    tokenizer = build_tokenizer(t for f in files for t in file_texts(f))

    sft = SFTTrainer(
        model=build_model(len(tokenizer)),
        args=SFTConfig(**_common_args(tmp_path / "sft")),
        train_dataset=sft_data["train"],
        processing_class=tokenizer,
    )
    sft.train()
    sft_losses = _losses(sft.state.log_history)
    assert sft_losses and all(math.isfinite(x) for x in sft_losses)
    sft.save_model(str(tmp_path / "sft-model"))
    assert (tmp_path / "sft-model" / "config.json").is_file()
    assert any((tmp_path / "sft-model").glob("*.safetensors"))

    policy = build_model(len(tokenizer))
    dpo = DPOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),  # built from a config: nothing to reload it from
        args=DPOConfig(**_common_args(tmp_path / "dpo"), beta=0.1),
        train_dataset=dpo_data,
        processing_class=tokenizer,
    )
    dpo.train()
    dpo_losses = _losses(dpo.state.log_history)
    assert dpo_losses and all(math.isfinite(x) for x in dpo_losses)
    dpo.save_model(str(tmp_path / "dpo-model"))
    assert any((tmp_path / "dpo-model").glob("*.safetensors"))
