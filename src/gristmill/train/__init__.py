"""Train: fine-tune a model on a dataset version with TRL (SFT, DPO, KTO), optionally
through a PEFT LoRA adapter, and record exactly what went in (``run_card.json``).

``train(workspace, "lima@2", "smollm2", TrainOptions(Method.SFT, Path("out")))``
exports the version with gristmill's own TRL exporters, trains, and saves a model
folder that ``gristmill.models.resolve_language_model(folder)`` loads directly.
"""

from gristmill.train.card import RunCard
from gristmill.train.options import LoraOptions, Method, SftFormat, TrainOptions, parse_lora
from gristmill.train.run import TrainResult, default_output, train

__all__ = [
    "LoraOptions",
    "Method",
    "RunCard",
    "SftFormat",
    "TrainOptions",
    "TrainResult",
    "default_output",
    "parse_lora",
    "train",
]
