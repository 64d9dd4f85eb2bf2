"""`perplexity`: how surprised a small language model is by the text.

Perplexity = exp(-mean token log-probability) of the text as a continuation of an
empty context. Low perplexity means fluent, predictable text (or repetitive
boilerplate, which is why a percentile *band* is the usual filter, not a floor).
Stored per record: ``score`` (the perplexity), ``mean_logprob``, ``tokens`` and
``truncated_chars`` (texts are cut to ``max_chars`` first, so one long document
cannot stall a CPU worker; the cut is recorded).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import StepOutput
from gristmill.sampling.base import Scorer, check_params, chunks
from gristmill.sampling.text import truncate_chars


@register
class Perplexity(Scorer):
    """Perplexity of the text under a small language model (lower: more predictable)."""

    name = "perplexity"

    def __init__(
        self,
        model: str | None = None,
        max_chars: int = 4000,
        batch_size: int = 8,
        attribute: str | None = None,
        **rest: Any,
    ) -> None:
        check_params(self.name, rest)
        super().__init__(
            model=model, max_chars=max_chars, batch_size=batch_size, attribute=attribute
        )
        self.model_spec = model
        self.max_chars = max_chars
        self.batch_size = batch_size
        self._attribute = attribute

    def process(self, table: pa.Table) -> StepOutput:
        cut = [truncate_chars(t, self.max_chars) for t in self.texts(table)]
        texts = [text for text, _ in cut]
        lm = self.lm()
        per_token: list[list[float]] = []
        for part in chunks(len(texts), self.batch_size):
            batch = texts[part]
            per_token += lm.continuation_logprobs([""] * len(batch), batch)
        means = np.asarray(
            [float(np.mean(lp)) if lp else math.nan for lp in per_token], dtype=np.float64
        )
        perplexity = np.exp(-means)
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": perplexity,
                "mean_logprob": means,
                "tokens": pa.array([len(lp) for lp in per_token], pa.int64()),
                "truncated_chars": pa.array([d for _, d in cut], pa.int64()),
                "model": pa.array([lm.name] * len(texts), pa.string()),
            }
        )
        counters = {"texts cut to max_chars": sum(1 for _, d in cut if d)}
        return StepOutput(table, None, {self.attribute: attribute}, counters)
