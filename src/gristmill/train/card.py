"""The run card: everything needed to know what a trained model is and to redo it.

``run_card.json`` holds the base model (path and sha256), the method, every
hyper-parameter TRL actually used, the exact data (dataset ref, the exported files
with their sha256, written/skipped counts per reason, and the version's lineage back
to the imported source files with their sha256), the loss curves, device, wall time,
library versions and seed. ``README.md`` is a short model card made from it.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill import __version__
from gristmill.train.base_model import BaseModel
from gristmill.train.device import Placement
from gristmill.train.options import TrainOptions

CARD_NAME = "run_card.json"
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
# TRL config fields worth recording (whatever their value came from: flag or default)
HYPERPARAMETERS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "optim",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "max_grad_norm",
    "seed",
    "beta",
    "loss_type",
    "completion_only_loss",
    "assistant_only_loss",
    "packing",
    "desirable_weight",
    "undesirable_weight",
    "bf16",
    "fp16",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"gristmill": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def curves(history: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """The train and eval loss per logged step, from the trainer's log history."""
    train, evals = [], []
    for entry in history:
        step = entry.get("step")
        if "loss" in entry:
            train.append({"step": step, "loss": entry["loss"]})
        if "eval_loss" in entry:
            evals.append({"step": step, "loss": entry["eval_loss"]})
    return {"train": _jsonable(train), "eval": _jsonable(evals)}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class RunCard:
    method: str
    base_model: dict[str, Any]
    hyperparameters: dict[str, Any]
    lora: dict[str, Any] | None
    data: dict[str, Any]
    training: dict[str, Any]
    output: dict[str, Any]
    device: dict[str, Any]
    seed: int
    wall_time_s: float
    libraries: dict[str, str | None] = field(default_factory=library_versions)
    command: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    created_by: str = field(default_factory=_user)

    @classmethod
    def build(
        cls,
        *,
        method: str,
        base: BaseModel,
        parameters: dict[str, int],
        args: Any,
        options: TrainOptions,
        data: dict[str, Any],
        state: Any,
        final_eval: dict[str, Any] | None,
        placement: Placement,
        saved: dict[str, Any],
        wall_time_s: float,
        command: str | None,
    ) -> RunCard:
        hyper = {k: _jsonable(getattr(args, k)) for k in HYPERPARAMETERS if hasattr(args, k)}
        if hyper.get("completion_only_loss") is None and "completion_only_loss" in hyper:
            # TRL's default: loss on the completion only for prompt-completion rows
            hyper["completion_only_loss"] = data["export"]["format"] == "trl-prompt-completion"
        hyper["eval_fraction"] = options.eval_fraction
        hyper["group_by"] = options.group_by
        hyper["sft_format"] = str(options.sft_format) if method == "sft" else None
        losses = curves(state.log_history)
        summary: dict[str, Any] = next(
            (e for e in reversed(state.log_history) if "train_loss" in e), {}
        )
        training = {
            "steps": int(state.global_step),
            "epochs": _jsonable(state.epoch),
            "final_train_loss": losses["train"][-1]["loss"] if losses["train"] else None,
            "mean_train_loss": _jsonable(summary.get("train_loss")),
            "final_eval_loss": _jsonable((final_eval or {}).get("eval_loss")),
            "train_runtime_s": _jsonable(summary.get("train_runtime")),
            "loss_curve": losses["train"],
            "eval_curve": losses["eval"],
        }
        return cls(
            method=method,
            base_model={**base.as_dict(), "parameters": parameters},
            hyperparameters=hyper,
            lora=options.lora.as_dict() if options.lora else None,
            data=data,
            training=training,
            output={"folder": str(options.output.resolve()), **saved},
            device=placement.as_dict(),
            seed=options.seed,
            wall_time_s=round(wall_time_s, 3),
            command=command,
        )

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def read(cls, folder: Path) -> RunCard:
        return cls(**json.loads((folder / CARD_NAME).read_text()))


def write_card(card: RunCard, folder: Path) -> Path:
    """``run_card.json`` and the ``README.md`` model card; returns the JSON's path."""
    path = folder / CARD_NAME
    path.write_text(json.dumps(card.as_dict(), indent=2, ensure_ascii=False) + "\n")
    (folder / "README.md").write_text(model_card(card))
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card(card: RunCard) -> str:
    """A short Hugging Face style model card (YAML front matter + tables)."""
    base = card.base_model
    data = card.data
    export = data["export"]
    training = card.training
    name = base.get("packaged") or base["source"]
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {json.dumps(str(name))}",
        f"tags: [gristmill, trl, {card.method}{', lora' if card.lora else ''}]",
        "---",
        "",
        f"# {card.method.upper()} of {name} on {data['dataset']}",
        "",
        f"Trained by gristmill {card.libraries.get('gristmill')} with TRL "
        f"{card.libraries.get('trl')} on {card.device['device']} ({card.device['precision']}) "
        f"in {card.wall_time_s:.0f} s. Every detail is in `run_card.json`.",
        "",
        "| | |",
        "|---|---|",
        f"| method | {card.method}{' + LoRA ' + _lora_text(card.lora) if card.lora else ''} |",
        f"| base model | `{base['source']}` |",
        f"| data | `{data['dataset']}` ({data['kind']}, {data['records']} records) |",
        f"| export | {export['format']} ({export['form'] or 'standard'}): "
        + ", ".join(f"{s} {n}" for s, n in export["rows_written"].items())
        + f", {sum(export['skipped'].values())} skipped |",
        f"| steps | {training['steps']} ({_fmt(training['epochs'])} epochs) |",
        f"| final train loss | {_fmt(training['final_train_loss'])} |",
        f"| final eval loss | {_fmt(training['final_eval_loss'])} |",
        f"| learning rate | {_fmt(card.hyperparameters.get('learning_rate'))} |",
        f"| batch | {card.hyperparameters.get('per_device_train_batch_size')} × "
        f"{card.hyperparameters.get('gradient_accumulation_steps')} accumulation |",
        f"| seed | {card.seed} |",
        "",
    ]
    if export["skipped"]:
        lines += ["## Skipped by the export", ""]
        lines += [f"- {n} × {reason}" for reason, n in export["skipped"].items()]
        lines.append("")
    lines += ["## Data lineage", ""]
    for step in data["lineage"]:
        lines.append(f"- `{step['ref']}`: {step['operation']} ({step['rows']} rows)")
        for source in step["sources"]:
            lines.append(f"  - `{source['path']}` sha256 `{source['sha256']}`")
    lines.append("")
    return "\n".join(lines)


def _lora_text(lora: dict[str, Any]) -> str:
    return (
        f"(r={lora['r']}, alpha={lora['alpha']}, dropout={lora['dropout']}, "
        f"targets={','.join(lora['targets'])})"
    )
