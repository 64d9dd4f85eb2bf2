"""Where a run trains and at what precision: CUDA with bf16 (fp16 on older GPUs) when
there is a GPU, else the CPU in fp32 — so the same command runs a tiny model on a
laptop and a real small model on a GPU, unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gristmill.models.transformers_backend import pick_device, set_threads


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" or "cpu" (or what --device named)
    precision: str  # "bf16", "fp16" or "fp32": mixed precision over fp32 weights
    gpu: str | None = None
    threads: int | None = None

    def trainer_args(self) -> dict[str, Any]:
        """The transformers ``TrainingArguments`` that put the run there."""
        return {
            "use_cpu": self.device == "cpu",
            "bf16": self.precision == "bf16",
            "fp16": self.precision == "fp16",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "precision": self.precision,
            "gpu": self.gpu,
            "threads": self.threads,
        }


def place(device: str = "auto", threads: int | None = None) -> Placement:
    import torch

    set_threads(threads)
    dev = pick_device(device)
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device is available")
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Placement(dev, precision, torch.cuda.get_device_name(), threads)
    if dev != "cpu":
        raise ValueError(f"--device must be auto, cpu or cuda[:N], not {device!r}")
    return Placement("cpu", "fp32", None, threads or torch.get_num_threads())
