"""``--model`` → a transformers folder a trainer can load, and who that model is.

A packaged name (``smollm2``) or a ``.gguf`` file is dequantised once into the same
cached folder the transformers backend uses (``converted_gguf``), so training and
evaluation start from identical weights. The identity (path, sha256 of every weight
and tokenizer file) goes into the run card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.models.errors import ModelError
from gristmill.models.packaged import PACKAGED, find_packaged, require_path
from gristmill.models.resolve import split_spec

# What defines a model folder's behaviour: weights, config, tokenizer, template.
HASHED_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".jinja", ".model", ".txt")
NOT_MODEL = {"run_card.json"}  # a trained folder's card describes it, it is not part of it
CHUNK = 1 << 20


@dataclass
class BaseModel:
    """The model a run starts from: what the user named, the folder trained from, and
    the source file(s) with their sha256."""

    spec: str
    folder: Path  # a transformers folder (config.json + weights + tokenizer)
    source: Path  # what --model named: the folder itself, or the GGUF file
    packaged: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "packaged": self.packaged,
            "source": str(self.source.resolve()),
            "folder": str(self.folder.resolve()),
            "sha256": self.files,
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_model_files(source: Path) -> dict[str, str]:
    """sha256 of a model file, or of every file in a model folder that shapes it."""
    if source.is_file():
        return {source.name: sha256_file(source)}
    return {
        str(p.relative_to(source)): sha256_file(p)
        for p in sorted(source.iterdir())
        if p.is_file() and p.suffix in HASHED_SUFFIXES and p.name not in NOT_MODEL
    }


def resolve_base_model(spec: str | None) -> BaseModel:
    """The trainable folder for a ``--model`` value: a packaged name, a local
    transformers folder, or a local ``.gguf`` file (``transformers:`` prefix allowed)."""
    backend, target = split_spec(spec)
    if backend not in (None, "transformers"):
        raise ModelError(
            f"cannot train {spec!r}: training needs local weights (a transformers folder, "
            f"a .gguf file or a packaged name), not a {backend} backend"
        )
    packaged = find_packaged(target or "smollm2", "lm")
    if packaged is not None:
        source = require_path(packaged)
    else:
        source = Path(target).expanduser()
        if not source.exists():
            names = ", ".join(p.name for p in PACKAGED if p.kind == "lm")
            raise ModelError(
                f"no model {target!r}: not a packaged language model ({names}) "
                "and not an existing path"
            )
    if source.is_file():
        if source.suffix != ".gguf":
            raise ModelError(f"{source} is neither a transformers folder nor a .gguf file")
        folder = _dequantised(source)
    elif (source / "config.json").is_file():
        folder = source
    else:
        raise ModelError(f"{source} is not a transformers model folder (no config.json)")
    return BaseModel(
        spec=spec or "smollm2",
        folder=folder,
        source=source,
        packaged=packaged.name if packaged else None,
        files=hash_model_files(source),
    )


def _dequantised(gguf: Path) -> Path:
    """The GGUF as a dense bfloat16 transformers folder: the conversion the transformers
    backend makes and caches for evaluation (a quantised file holds no more precision)."""
    import torch

    from gristmill.models.transformers_backend import converted_gguf

    return converted_gguf(gguf, torch.bfloat16)
