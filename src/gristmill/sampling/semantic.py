"""`semdedup` and `prototypes`: k-means on embeddings, as global steps.

Both need every record's cluster, and SemDeDup needs every pair within a cluster,
which no single task sees. So:

1. ``collect`` (every task, in parallel): embed the task's records (cached calls)
   and write them to the run's scratch folder as one ``.npy`` per task; the
   partial state is the file's path and the task's ids.
2. ``merge`` (once, in the driver): fit spherical k-means on a seeded sample of at
   most ``fit_sample`` embeddings (k-means++, Lloyd), assign every record streaming
   from the memory-mapped task files, then — for SemDeDup — walk the clusters one
   at a time: order the members farthest-from-centroid first (SemDeDup keeps the
   least prototypical copy) and compute each member's largest cosine similarity to
   an earlier member. Memory: the fit sample plus the largest cluster.
3. ``process``: look each record's results up by (task, row).

Stored per record — ``prototypes``: ``cluster``, ``distance`` (cosine distance to
the centroid) and ``score`` = distance (selection keeps the farthest, i.e. drops
the most prototypical). ``semdedup``: ``cluster``, ``distance``, ``score`` = the
largest similarity to an earlier member of the cluster (-1 for the first),
``duplicate_of`` (that member's id) and ``duplicate`` (score > ``threshold``).
Because the score does not depend on a threshold, ``gristmill sample --by semdedup
--eps E`` applies any ε = 1 - threshold without recomputing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import StepOutput
from gristmill.sampling.base import GlobalScorer, check_params
from gristmill.sampling.clusters import assign, earlier_max_similarity, fit_centroids


def default_clusters(n: int) -> int:
    """√n clusters: few enough to fit quickly, many enough that a cluster's pairwise
    pass stays small (n/k = √n members on average)."""
    return max(1, min(n, round(math.sqrt(n))))


class _Clusters(GlobalScorer):
    dedup = False

    def __init__(
        self,
        model: str | None = None,
        clusters: int | None = None,
        iterations: int = 25,
        fit_sample: int = 50_000,
        seed: int = 0,
        attribute: str | None = None,
        **extra: Any,
    ) -> None:
        if clusters is not None and clusters < 1:
            raise TypeError("clusters must be ≥ 1")
        super().__init__(
            model=model,
            clusters=clusters,
            iterations=iterations,
            fit_sample=fit_sample,
            seed=seed,
            attribute=attribute,
            **extra,
        )
        self.model_spec = model
        self.clusters = clusters
        self.iterations = iterations
        self.fit_sample = fit_sample
        self.seed = seed
        self._attribute = attribute

    def collect(self, table: pa.Table) -> dict[str, Any] | None:
        if table.num_rows == 0:
            return None
        x = self.embed(self.texts(table))
        folder = Path(self.ctx.scratch) / f"{self.name}-{self.attribute}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"task-{self.ctx.rank:05d}.npy"
        tmp = folder / f"task-{self.ctx.rank:05d}.tmp.npy"
        np.save(tmp, x)
        tmp.replace(path)
        return {
            "task": self.ctx.rank,
            "path": str(path),
            "ids": table.column("id").combine_chunks(),
            "model": self.embedder().name,
        }

    def merge(self, partials: list[Any]) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [p for p in partials if p is not None]
        total = sum(len(p["ids"]) for p in parts)
        if total == 0:
            return {"tasks": {}, "clusters": 0, "model": ""}
        k = self.clusters or default_clusters(total)
        rng = np.random.default_rng(self.seed)
        share = min(1.0, self.fit_sample / total)
        sample = []
        for p in parts:
            n = len(p["ids"])
            take = min(n, max(1, round(n * share)))
            rows = np.sort(rng.choice(n, take, replace=False))
            sample.append(np.load(p["path"], mmap_mode="r")[rows])
        centroids = fit_centroids(
            np.concatenate(sample).astype(np.float32), k, self.iterations, self.seed
        )
        results: dict[int, dict[str, Any]] = {}
        for p in parts:
            labels, dist = assign(np.load(p["path"], mmap_mode="r"), centroids)
            results[p["task"]] = {"cluster": labels, "distance": dist}
        if self.dedup:
            self._dedup(parts, results, centroids.shape[0])
        model = parts[0]["model"]
        return {"tasks": results, "clusters": int(centroids.shape[0]), "model": model}

    def _dedup(
        self, parts: list[dict[str, Any]], results: dict[int, dict[str, Any]], k: int
    ) -> None:
        """Per cluster: members farthest from the centroid first; each member's largest
        similarity to an earlier one, and which."""
        task_of = np.concatenate([np.full(len(p["ids"]), i) for i, p in enumerate(parts)])
        row_of = np.concatenate([np.arange(len(p["ids"])) for p in parts])
        cluster = np.concatenate([results[p["task"]]["cluster"] for p in parts])
        dist = np.concatenate([results[p["task"]]["distance"] for p in parts])
        order = np.lexsort(
            (row_of, task_of, -dist, cluster)
        )  # cluster, farthest first, input order
        bounds = np.searchsorted(cluster[order], np.arange(k + 1))
        maps = [np.load(p["path"], mmap_mode="r") for p in parts]
        for p in parts:
            n = len(p["ids"])
            results[p["task"]].update(
                score=np.full(n, -1.0, dtype=np.float32),
                dup_part=np.full(n, -1, dtype=np.int64),
                dup_row=np.full(n, -1, dtype=np.int64),
            )
        for c in range(k):
            members = order[bounds[c] : bounds[c + 1]]
            if members.size < 2:
                continue
            points = np.empty((members.size, maps[0].shape[1]), dtype=np.float32)
            for i in np.unique(task_of[members]):
                sel = np.flatnonzero(task_of[members] == i)
                points[sel] = maps[i][row_of[members[sel]]]
            best, which = earlier_max_similarity(points)
            for j, m in enumerate(members):
                res = results[parts[task_of[m]]["task"]]
                res["score"][row_of[m]] = best[j]
                if which[j] >= 0:
                    res["dup_part"][row_of[m]] = task_of[members[which[j]]]
                    res["dup_row"][row_of[m]] = row_of[members[which[j]]]
        # ids of the earlier members, resolved now (process sees only its own task)
        for p in parts:
            res = results[p["task"]]
            res["duplicate_of"] = [
                parts[int(t)]["ids"][int(r)].as_py() if t >= 0 else None
                for t, r in zip(res.pop("dup_part"), res.pop("dup_row"), strict=True)
            ]

    def _rows(self, table: pa.Table) -> dict[str, Any]:
        state = self.state or {"tasks": {}}
        res = state["tasks"].get(self.ctx.rank)
        if res is None:
            if table.num_rows:
                raise RuntimeError(f"{self.name}: no clustering for task {self.ctx.rank}")
            return {}
        window = slice(self.ctx.row_offset, self.ctx.row_offset + table.num_rows)
        rows = {key: value[window] for key, value in res.items()}
        rows["model"] = [state.get("model", "")] * table.num_rows
        return rows


@register
class Prototypes(_Clusters):
    """k-means cluster and distance to the centroid (prune the most prototypical records)."""

    name = "prototypes"

    def __init__(self, **params: Any) -> None:
        keys = {"model", "clusters", "iterations", "fit_sample", "seed", "attribute"}
        check_params(self.name, {k: v for k, v in params.items() if k not in keys})
        super().__init__(**params)

    def process(self, table: pa.Table) -> StepOutput:
        rows = self._rows(table)
        distance = np.asarray(rows.get("distance", []), dtype=np.float64)
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": distance,
                "cluster": pa.array(rows.get("cluster", []), pa.int64()),
                "distance": distance,
                "model": pa.array(rows.get("model", []), pa.string()),
            }
        )
        return StepOutput(table, None, {self.attribute: attribute})


@register
class SemDeDup(_Clusters):
    """SemDeDup: near-duplicates within a k-means cluster (cosine similarity above a threshold)."""

    name = "semdedup"
    dedup = True

    def __init__(self, threshold: float = 0.95, **params: Any) -> None:
        keys = {"model", "clusters", "iterations", "fit_sample", "seed", "attribute"}
        check_params(self.name, {k: v for k, v in params.items() if k not in keys})
        if not -1.0 <= threshold <= 1.0:
            raise TypeError("threshold is a cosine similarity in [-1, 1]")
        super().__init__(threshold=threshold, **params)
        self.threshold = threshold

    def process(self, table: pa.Table) -> StepOutput:
        rows = self._rows(table)
        score = np.asarray(rows.get("score", []), dtype=np.float64)
        attribute = pa.table(
            {
                "id": table.column("id"),
                "score": score,
                "cluster": pa.array(rows.get("cluster", []), pa.int64()),
                "distance": np.asarray(rows.get("distance", []), dtype=np.float64),
                "duplicate_of": pa.array(rows.get("duplicate_of", []), pa.string()),
                "duplicate": pa.array(score > self.threshold, pa.bool_()),
                "model": pa.array(rows.get("model", []), pa.string()),
            }
        )
        counters = {"near-duplicates": int((score > self.threshold).sum())}
        return StepOutput(table, None, {self.attribute: attribute}, counters)
