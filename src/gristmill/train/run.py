"""One training run: export the data, train with TRL (optionally through a PEFT LoRA
adapter), save a model folder every gristmill model spec loads, and write its card.

The output folder holds the model itself (merged when LoRA was used, so
``resolve_language_model(folder)`` and ``gristmill eval run --model folder`` load it
directly), ``adapter/`` for LoRA runs, ``data/`` with the exact exported files, and
``run_card.json`` + ``README.md``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.store import Version, Workspace
from gristmill.train.base_model import BaseModel, resolve_base_model
from gristmill.train.card import CARD_NAME, RunCard, write_card
from gristmill.train.data import EVAL, TRAIN, TrainData, load_training_data
from gristmill.train.device import Placement, place
from gristmill.train.options import Method, TrainOptions

Log = Callable[[str], None]


@dataclass
class TrainResult:
    output: Path
    card_path: Path
    card: RunCard

    @property
    def steps(self) -> int:
        return int(self.card.training["steps"])

    @property
    def final_loss(self) -> float | None:
        value = self.card.training.get("final_train_loss")
        return None if value is None else float(value)


def check_output(folder: Path, overwrite: bool) -> Path | None:
    """Refuse to train into a folder that already holds a run, unless told to. The run
    being replaced is moved aside (the path returned), not deleted: it comes back if
    the new run fails, and goes only once the new one is complete."""
    if folder.is_file():
        raise ValueError(f"--output {folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise ValueError(
                f"--output {folder} is not empty; pass --overwrite to replace the run in it, "
                "or choose another folder"
            )
        if not (folder / CARD_NAME).is_file():  # only a finished run is ever replaced
            raise ValueError(
                f"--output {folder} is not empty and holds no earlier run ({CARD_NAME}); "
                "refusing to overwrite it (choose an empty or new folder)"
            )
        aside = folder.with_name(f".{folder.name}.replaced-{os.getpid()}-{time.time_ns()}")
        folder.rename(aside)
        return aside
    return None


def default_output(workspace: Workspace, version: Version, method: Method) -> Path:
    """``<workspace>/runs/<method>-<name>-v<N>``, with ``-2``, ``-3`` … when taken."""
    base = workspace.root / "runs" / f"{method}-{version.name}-v{version.number}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def train(
    workspace: Workspace,
    ref: str,
    model_spec: str | None,
    options: TrainOptions,
    *,
    log: Log = print,
    command: str | None = None,
) -> TrainResult:
    """Train ``model_spec`` on the dataset version ``ref`` with ``options.method``."""
    started = time.time()
    version = workspace.version(ref)
    out = options.output
    base = resolve_base_model(model_spec)
    for folder in {base.folder.resolve(), base.source.resolve()}:
        if folder == out.resolve() or out.resolve() in folder.parents:
            raise ValueError(f"--output {out} holds the base model {base.spec}; choose another")
    previous = check_output(out, options.overwrite)
    log(f"base model: {base.spec} ({base.folder})")
    try:
        out.mkdir(parents=True, exist_ok=True)  # new, or empty
        result = _train(workspace, version, base, options, out, started, log, command)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a failed run leaves nothing that looks done
        if previous is not None:
            previous.rename(out)  # and the run it was to replace is back
            log(f"the earlier run in {out} is kept")
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return result


def _train(
    workspace: Workspace,
    version: Version,
    base: BaseModel,
    options: TrainOptions,
    out: Path,
    started: float,
    log: Log,
    command: str | None,
) -> TrainResult:
    data = load_training_data(workspace, version, options, out)
    skipped = sum(data.report.skipped.values())
    log(
        f"data: {version.ref} → {data.report.format}, "
        + ", ".join(f"{s} {n}" for s, n in data.report.rows_written.items())
        + (f", {skipped} skipped (see run_card.json)" if skipped else "")
    )
    placement = place(options.device, options.threads)
    log(f"device: {placement.device} ({placement.precision})")
    trainer = _trainer(base, data, options, placement, out)
    parameters = parameter_counts(trainer.model)  # before a LoRA merge folds the adapter
    dropped = trainer_dropped(trainer, data)
    if any(dropped.values()):
        log(f"the trainer dropped {dropped} rows with nothing left to learn from at max_length")
    trainer.train()
    final_eval = _final_eval(trainer) if data.eval is not None else None
    saved = _save(trainer, out, options)
    card = RunCard.build(
        method=options.method,
        base=base,
        parameters=parameters,
        args=trainer.args,
        options=options,
        data={**data.card(version), "trainer_dropped": dropped},
        state=trainer.state,
        final_eval=final_eval,
        placement=placement,
        saved=saved,
        wall_time_s=time.time() - started,
        command=command,
    )
    card_path = write_card(card, out)
    _readable(out)
    shutil.rmtree(out / "data" / ".cache", ignore_errors=True)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # save_strategy "no": only logs
    return TrainResult(out, card_path, card)


def _final_eval(trainer: Any) -> dict[str, Any]:
    """The eval metrics at the last step: logged already when --eval-steps landed
    there, else measured now."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return dict(entry)
    return dict(trainer.evaluate())


def _trainer(
    base: BaseModel, data: TrainData, options: TrainOptions, placement: Placement, out: Path
) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(options.seed)  # before the model: LoRA weights are drawn at wrap time
    tokenizer = AutoTokenizer.from_pretrained(str(base.folder))
    if data.report.form == "conversational" and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{base.spec} has no chat template, so it cannot train on conversational rows; "
            "pass --standard (single-turn plain text) or use a chat model"
        )
    import torch

    model = AutoModelForCausalLM.from_pretrained(str(base.folder), dtype=torch.float32)
    config = _config(options, placement, out / "trainer", data.eval is not None)
    peft_config = _lora(options)
    cls = _trainer_class(options.method)
    return cls(
        model=model,
        args=config,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def _trainer_class(method: Method) -> Any:
    if method == Method.SFT:
        from trl.trainer.sft_trainer import SFTTrainer

        return SFTTrainer
    if method == Method.DPO:
        from trl.trainer.dpo_trainer import DPOTrainer

        return DPOTrainer
    from trl.trainer.kto_trainer import KTOTrainer

    return KTOTrainer


def _config(options: TrainOptions, placement: Placement, folder: Path, has_eval: bool) -> Any:
    """The TRL config: only what the user set overrides TRL's defaults."""
    kwargs: dict[str, Any] = {
        "output_dir": str(folder),
        "num_train_epochs": options.epochs,
        "max_steps": options.max_steps or -1,
        "gradient_accumulation_steps": options.grad_accum,
        "seed": options.seed,
        "data_seed": options.seed,
        "logging_steps": options.logging_steps,
        "logging_first_step": True,
        "save_strategy": "no",
        "report_to": [],
        "dataloader_num_workers": 0,
        **placement.trainer_args(),
    }
    if has_eval and options.eval_steps:
        kwargs.update(eval_strategy="steps", eval_steps=options.eval_steps)
    if options.learning_rate is not None:
        kwargs["learning_rate"] = options.learning_rate
    if options.batch_size is not None:
        kwargs["per_device_train_batch_size"] = options.batch_size
        kwargs["per_device_eval_batch_size"] = options.batch_size
    if options.max_length is not None:
        kwargs["max_length"] = options.max_length
    if options.beta is not None:
        kwargs["beta"] = options.beta
    if options.method == Method.SFT:
        from trl.trainer.sft_config import SFTConfig

        return SFTConfig(**kwargs)
    if options.method == Method.DPO:
        from trl.trainer.dpo_config import DPOConfig

        return DPOConfig(**kwargs)
    from trl.trainer.kto_config import KTOConfig

    return KTOConfig(**kwargs)


def _lora(options: TrainOptions) -> Any:
    if options.lora is None:
        return None
    from peft import LoraConfig

    targets = list(options.lora.targets)
    return LoraConfig(
        r=options.lora.r,
        lora_alpha=options.lora.alpha,
        lora_dropout=options.lora.dropout,
        target_modules=targets[0] if targets == ["all-linear"] else targets,
        task_type="CAUSAL_LM",
    )


def _save(trainer: Any, out: Path, options: TrainOptions) -> dict[str, Any]:
    """The model at the top of ``out``; with LoRA the adapter in ``out/adapter`` first,
    then the adapter merged into the base weights at the top."""
    tokenizer = trainer.processing_class
    if options.lora is None:
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        return {"weights": "full", "adapter": None}
    adapter = out / "adapter"
    trainer.model.save_pretrained(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {"weights": "merged", "adapter": "adapter"}


def _readable(folder: Path) -> None:
    """safetensors writes owner-only files; a saved model is for others to read too."""
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


def trainer_dropped(trainer: Any, data: TrainData) -> dict[str, int]:
    """Rows TRL's preprocessing removed per split (SFT drops rows whose completion is
    cut away entirely by ``max_length``), so the card accounts for every row."""
    out = {TRAIN: len(data.train) - len(trainer.train_dataset)}
    if data.eval is not None and trainer.eval_dataset is not None:
        out[EVAL] = len(data.eval) - len(trainer.eval_dataset)
    return out


def parameter_counts(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}
