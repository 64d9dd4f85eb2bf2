"""What a training run can be asked for: the method, hyper-parameters and LoRA.

Plain dataclasses with no torch import, so the command line can parse and check
everything (and fail on a typo) before the heavy libraries load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from gristmill.records.pairs import PairOptions


class Method(StrEnum):
    SFT = "sft"
    DPO = "dpo"
    KTO = "kto"


class SftFormat(StrEnum):
    """How conversations are shown to SFT: the last assistant turn as the completion
    (loss on it only), or every turn as one text (loss on all of it)."""

    PROMPT_COMPLETION = "prompt-completion"
    LM = "lm"


@dataclass(frozen=True)
class LoraOptions:
    """A PEFT LoRA adapter: rank, scale, dropout and which modules it wraps."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("all-linear",)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": list(self.targets)}


LORA_KEYS = {"r", "alpha", "dropout", "targets"}


def parse_lora(text: str | None) -> LoraOptions | None:
    """``"r=16,alpha=32,dropout=0.05,targets=q_proj,v_proj"`` → options.

    Any key may be left out (defaults: r=16, alpha=32, dropout=0.05, every linear
    layer); ``""``/``"default"`` is all defaults; None is no LoRA. A bare word after
    ``targets=`` is another target module, so the list can use commas too."""
    if text is None:
        return None
    text = text.strip()
    if text.lower() in ("", "default", "on", "true"):
        return LoraOptions()
    values: dict[str, str] = {}
    targets: list[str] = []
    last = ""
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            if last != "targets":
                raise ValueError(
                    f"bad --lora part {part!r}: expected KEY=VALUE with keys "
                    f"{', '.join(sorted(LORA_KEYS))}, e.g. r=16,alpha=32,targets=q_proj,v_proj"
                )
            targets.append(part)
            continue
        if key not in LORA_KEYS:
            raise ValueError(f"unknown --lora key {key!r}; keys: {', '.join(sorted(LORA_KEYS))}")
        last = key
        if key == "targets":
            targets.extend(t for t in value.replace("+", ",").split(",") if t.strip())
        else:
            values[key] = value.strip()
    try:
        r = int(values.get("r", 16))
        alpha = int(values.get("alpha", 32))
        dropout = float(values.get("dropout", 0.05))
    except ValueError as exc:
        raise ValueError(f"bad --lora value in {text!r}: {exc}") from None
    if r <= 0 or alpha <= 0:
        raise ValueError(f"--lora r and alpha must be positive, got r={r}, alpha={alpha}")
    if not 0 <= dropout < 1:
        raise ValueError(f"--lora dropout must be in [0, 1), got {dropout}")
    return LoraOptions(r, alpha, dropout, tuple(targets) or ("all-linear",))


@dataclass(frozen=True)
class TrainOptions:
    """Everything besides the model and the data. ``None`` means TRL's own default
    (learning rate, batch size, max length), so the card records what TRL used."""

    method: Method
    output: Path
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    grad_accum: int = 1
    max_length: int | None = None
    seed: int = 0
    lora: LoraOptions | None = None
    eval_fraction: float = 0.0  # 0: no eval split
    group_by: str = "prompt"
    eval_steps: int | None = None  # None: evaluate at the end only
    logging_steps: int = 10
    beta: float | None = None  # DPO / KTO
    sft_format: SftFormat = SftFormat.PROMPT_COMPLETION
    conversational: bool | None = None  # None: the exporter's default form
    pairs: PairOptions = field(default_factory=PairOptions)
    label_threshold: float | None = None  # KTO: label unlabelled candidates by rating
    device: str = "auto"
    threads: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"--epochs must be positive, got {self.epochs}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"--max-steps must be positive, got {self.max_steps}")
        for name in ("batch_size", "max_length", "eval_steps", "threads"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.grad_accum <= 0 or self.logging_steps <= 0:
            raise ValueError("--grad-accum and --logging-steps must be positive")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"--lr must be positive, got {self.learning_rate}")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"--eval-split must be in [0, 1), got {self.eval_fraction}")
        if self.eval_steps is not None and self.eval_fraction == 0:
            raise ValueError("--eval-steps needs an eval split: pass --eval-split, e.g. 0.05")
        if self.beta is not None and self.method == Method.SFT:
            raise ValueError("--beta applies to dpo and kto, not sft")
