"""`density`: how crowded a record's neighbourhood is, for Density sampling.

Sachdeva et al. 2024, §3.2, Alg. 2, as a two-pass global step:

1. ``collect`` (every task, in parallel workers): embed the task's records and
   count them into a RACE sketch (``race.py``); the partial state is the task's
   non-zero counters.
2. ``merge``: add the counters of every task (counters add up, so the result is the
   sketch of the whole corpus whatever the number of workers or tasks).
3. ``process`` (every task again): embed the records again — the backend's call
   cache answers, the model does not run twice — and score
   ``d(x) = Σ_r S[r, h_r(x)] / R``.

Memory is R×B counters whatever the corpus size. Stored per record: ``score`` =
d(x), the estimated kernel density (≥ 1: a record always collides with itself).
Selection (``--by density``) samples without replacement with probability ∝
1/d(x) — inverse propensity, so sparse regions are not drowned by dense ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import StepOutput
from gristmill.sampling.base import GlobalScorer, check_params, chunks
from gristmill.sampling.race import RaceSketch, SketchParams

INSERT_BATCH = 8192


@dataclass
class SketchCounts:
    """One task's contribution: its non-zero counters (sparse, so a small task sends
    little), and the parameters that made them."""

    params: SketchParams
    index: npt.NDArray[np.int64]  # flat positions in the R×B array
    count: npt.NDArray[np.int32]
    inserted: int

    @classmethod
    def of(cls, sketch: RaceSketch) -> SketchCounts:
        flat = sketch.counts.reshape(-1)
        nz = np.flatnonzero(flat).astype(np.int64)
        return cls(sketch.params, nz, flat[nz].copy(), sketch.inserted)


def merge_counts(partials: list[SketchCounts | None]) -> RaceSketch | None:
    """Add the counters of every task into one sketch."""
    present = [p for p in partials if p is not None]
    if not present:
        return None
    sketch = RaceSketch(present[0].params)
    flat = sketch.counts.reshape(-1)
    for part in present:
        if part.params != sketch.params:
            raise ValueError("density: tasks sketched with different parameters")
        flat[part.index] += part.count  # positions are unique within a part
        sketch.inserted += part.inserted
    return sketch


@register
class Density(GlobalScorer):
    """Density d(x) of each record's embedding in a RACE sketch of the whole corpus."""

    name = "density"

    def __init__(
        self,
        model: str | None = None,
        repetitions: int = 1500,
        buckets: int = 4096,
        bandwidth: float = 0.1,
        concat: int = 2,
        orthogonal: bool = True,
        seed: int = 0,
        attribute: str | None = None,
        **rest: Any,
    ) -> None:
        check_params(self.name, rest)
        super().__init__(
            model=model,
            repetitions=repetitions,
            buckets=buckets,
            bandwidth=bandwidth,
            concat=concat,
            orthogonal=orthogonal,
            seed=seed,
            attribute=attribute,
        )
        self.model_spec = model
        # the hash functions' parameters, checked now rather than in a worker
        self.template = SketchParams(
            dim=1,
            repetitions=repetitions,
            buckets=buckets,
            bandwidth=bandwidth,
            concat=concat,
            seed=seed,
            orthogonal=orthogonal,
        )
        self._attribute = attribute

    def collect(self, table: pa.Table) -> SketchCounts | None:
        if table.num_rows == 0:
            return None
        texts = self.texts(table)
        sketch: RaceSketch | None = None
        for part in chunks(len(texts), INSERT_BATCH):
            x = self.embed(texts[part])
            if sketch is None:
                sketch = RaceSketch(replace(self.template, dim=int(x.shape[1])))
            sketch.add(x)
        assert sketch is not None
        return SketchCounts.of(sketch)

    def merge(self, partials: list[Any]) -> RaceSketch | None:
        return merge_counts(partials)

    def process(self, table: pa.Table) -> StepOutput:
        sketch: RaceSketch | None = self.state
        if table.num_rows == 0:
            scores = np.zeros(0, dtype=np.float64)
            model = ""
        else:
            if sketch is None:
                raise RuntimeError("density: the sketch of the first pass is missing")
            scores = sketch.query(self.embed(self.texts(table)))
            model = self.embedder().name
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": scores,
                "model": pa.array([model] * table.num_rows, pa.string()),
            }
        )
        return StepOutput(table, None, {self.attribute: attribute})
