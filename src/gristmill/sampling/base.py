"""What every scorer step shares: the attribute it writes, the texts it reads, and a
model resolved once per worker, on first use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from gristmill.models.protocols import Embedder, LanguageModel
from gristmill.pipeline.step import GlobalStep, Step
from gristmill.records.kinds import Kind
from gristmill.sampling import backends
from gristmill.sampling.text import TEXT_KINDS, record_texts

EMBED_BATCH = 256


def check_params(name: str, rest: dict[str, Any]) -> None:
    if rest:
        raise TypeError(f"{name}: unknown parameters: {', '.join(sorted(rest))}")


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


class ScorerMixin:
    """Attribute naming, record texts and lazy models for scorer steps.

    ``attribute`` names the attribute the step writes (default: the step's name), so
    scores from two models can live side by side (``--as ask_llm_gemma``). The model
    is resolved on the first batch, never in ``setup``: the driver binds every step
    once to check kinds, and must not load a model it will not use."""

    name: ClassVar[str]
    ctx: Any
    model_spec: str | None
    _lm: LanguageModel | None = None
    _embedder: Embedder | None = None

    @property
    def attribute(self) -> str:
        value = getattr(self, "_attribute", None)
        return str(value or self.name)

    def texts(self, table: pa.Table) -> list[str]:
        return record_texts(table, self.ctx.kind)

    def _root(self) -> Path | None:
        workspace = getattr(self.ctx, "workspace", None)
        return Path(workspace.root) if workspace is not None else None

    def lm(self) -> LanguageModel:
        if self._lm is None:
            self._lm = backends.language_model(self.model_spec, self._root())
        return self._lm

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = backends.embedder(self.model_spec, self._root())
        return self._embedder

    def embed(self, texts: list[str]) -> Any:
        """Embeddings in batches (each batch one cached call)."""
        import numpy as np

        model = self.embedder()
        parts = [model.embed(texts[s]) for s in chunks(len(texts), EMBED_BATCH)]
        if not parts:
            return np.zeros((0, model.dim), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


class Scorer(ScorerMixin, Step):
    kinds: ClassVar[tuple[Kind, ...]] = TEXT_KINDS


class GlobalScorer(ScorerMixin, GlobalStep):
    kinds: ClassVar[tuple[Kind, ...]] = TEXT_KINDS
