"""Two runs of one task, side by side: per-metric B − A on the items both scored, with
a paired bootstrap interval and p-value (``stats.paired_difference``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from gristmill.evals.metrics import aggregate_of
from gristmill.evals.stats import RESAMPLES, Difference, paired_difference
from gristmill.records.kinds import Kind
from gristmill.store import Version


class CompareError(ValueError):
    pass


def run_samples(version: Version) -> dict[str, dict[str, list[float]]]:
    """Eval item id → metric → per-sample statistics, from a run version."""
    if version.kind != Kind.CONVERSATION or version.manifest.operation != "eval":
        raise CompareError(
            f"{version.ref} is not an eval run (made by {version.manifest.operation!r}); "
            "runs are written by `gristmill eval run`"
        )
    out: dict[str, dict[str, list[float]]] = {}
    for row in version.iter_rows(columns=["id", "meta"]):
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        stats: dict[str, list[float]] = dict(meta.get("stats") or {})
        if "gold_label" in meta:
            stats["accuracy"] = [float(meta["gold_label"] == meta.get("predicted_label")), 1.0]
        out[str(meta.get("eval_item", row["id"]))] = stats
    return out


@dataclass
class Comparison:
    a: str
    b: str
    task_a: str
    task_b: str
    shared: int
    only_a: int
    only_b: int
    metrics: dict[str, Difference] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "task_a": self.task_a,
            "task_b": self.task_b,
            "shared": self.shared,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "metrics": {k: v.as_dict() for k, v in self.metrics.items()},
        }


def compare_runs(a: Version, b: Version, resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    sa, sb = run_samples(a), run_samples(b)
    shared = [k for k in sa if k in sb]
    if not shared:
        raise CompareError(f"{a.ref} and {b.ref} share no eval items; nothing to compare")
    out = Comparison(
        a.ref,
        b.ref,
        str(a.manifest.params.get("task")),
        str(b.manifest.params.get("task")),
        len(shared),
        len(sa) - len(shared),
        len(sb) - len(shared),
    )
    names = list(dict.fromkeys(m for k in shared for m in sa[k]))
    for name in names:
        ids = [k for k in shared if name in sa[k] and name in sb[k]]
        if not ids:
            continue
        agg = aggregate_of(name)
        mat_a = np.asarray([sa[k][name] for k in ids], dtype=np.float64)
        mat_b = np.asarray([sb[k][name] for k in ids], dtype=np.float64)
        out.metrics[name] = paired_difference(mat_a, mat_b, agg, resamples, seed=seed)
        out.higher_is_better[name] = agg.higher_is_better
    return out
