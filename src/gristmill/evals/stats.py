"""Bootstrap confidence intervals, paired comparison and classification tables.

A resample is a multinomial count vector over the samples (how often each is drawn);
with per-sample statistics ``S`` (n × d) every resampled aggregate is ``finish(W @ S)``
for the (B × n) count matrix ``W``: one matrix product for all B resamples. The
interval is the percentile interval (Efron), 95 % and 1000 resamples by default, seeded
so a report is reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gristmill.evals.metrics import F64, Aggregate

RESAMPLES = 1000
LEVEL = 0.95


@dataclass
class Estimate:
    """An aggregate with its bootstrap interval (``n`` samples)."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def counts(n: int, resamples: int, seed: int) -> npt.NDArray[np.float64]:
    """(resamples × n) draw counts of a bootstrap with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _interval(values: F64, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def estimate(
    stats: F64,
    agg: Aggregate,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Estimate:
    """The aggregate of per-sample ``stats`` (n × d) and its percentile interval."""
    n = stats.shape[0]
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    value = float(agg.finish(stats.sum(axis=0, keepdims=True))[0])
    if n == 1 or resamples == 0:
        return Estimate(value, value, value, n)
    boot = agg.finish(counts(n, resamples, seed) @ stats)
    low, high = _interval(boot, level)
    return Estimate(value, low, high, n)


@dataclass
class Difference:
    """B − A on the items both runs scored: the difference, its paired bootstrap
    interval, and a two-sided p-value for "no difference"."""

    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_difference(
    stats_a: F64,
    stats_b: F64,
    agg: Aggregate,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Difference:
    """Paired bootstrap (Koehn 2004; the same items are drawn for both runs).

    The p-value is the share of resampled differences, shifted to mean zero (the null
    hypothesis), that are at least as far from zero as the observed one (Efron &
    Tibshirani 1993, §16.4), with the +1 correction so it is never exactly 0."""
    n = stats_a.shape[0]
    a = float(agg.finish(stats_a.sum(axis=0, keepdims=True))[0])
    b = float(agg.finish(stats_b.sum(axis=0, keepdims=True))[0])
    diff = b - a
    if n < 2:
        return Difference(a, b, diff, diff, diff, 1.0, n)
    w = counts(n, resamples, seed)
    boot = agg.finish(w @ stats_b) - agg.finish(w @ stats_a)
    boot = boot[np.isfinite(boot)]
    low, high = _interval(boot, level)
    centred = boot - boot.mean()
    extreme = int(np.sum(np.abs(centred) >= abs(diff) - 1e-12))
    p = (extreme + 1) / (len(boot) + 1)
    return Difference(a, b, diff, low, high, min(1.0, p), n)


# -- classification ---------------------------------------------------------------------------


@dataclass
class ClassReport:
    labels: list[str]
    matrix: list[list[int]]  # rows: gold, columns: predicted
    accuracy: Estimate
    macro_f1: Estimate
    per_class: dict[str, dict[str, Estimate]]  # label → precision, recall, f1, support

    def as_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "matrix": self.matrix,
            "accuracy": self.accuracy.as_dict(),
            "macro_f1": self.macro_f1.as_dict(),
            "per_class": {
                k: {m: e.as_dict() for m, e in v.items()} for k, v in self.per_class.items()
            },
        }


def _prf(w: F64, gold: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], k: int) -> F64:
    """Precision, recall, F1 of each class under weights ``w`` (B × n): (B, k, 3)."""
    g = np.eye(k)[gold]  # n × k
    p = np.eye(k)[pred]
    tp = w @ (g * p)
    gold_n = w @ g
    pred_n = w @ p
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_n > 0, tp / pred_n, 0.0)
        recall = np.where(gold_n > 0, tp / gold_n, np.nan)
        f1 = np.where(
            precision + np.nan_to_num(recall) > 0,
            2 * precision * recall / (precision + recall),
            0.0,
        )
    return np.stack([precision, recall, f1], axis=-1)


def classification(
    gold: list[str],
    predicted: list[str],
    labels: list[str] | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> ClassReport:
    """Accuracy, per-class precision/recall/F1 and macro F1 (over classes present in
    the gold labels), each with a bootstrap interval, and the confusion matrix."""
    order = labels or sorted(set(gold) | set(predicted))
    for extra in sorted((set(gold) | set(predicted)) - set(order)):
        order.append(extra)
    index = {label: i for i, label in enumerate(order)}
    k = len(order)
    g = np.asarray([index[x] for x in gold], dtype=np.int64)
    p = np.asarray([index[x] for x in predicted], dtype=np.int64)
    n = len(g)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (g, p), 1)
    present = np.bincount(g, minlength=k) > 0
    w_all = np.ones((1, n))
    w_boot = counts(n, resamples, seed) if n > 1 else w_all

    def both(fn: Any) -> tuple[F64, F64]:
        return fn(w_all)[0], fn(w_boot)

    def acc(w: F64) -> F64:
        return np.asarray((w @ (g == p).astype(np.float64)) / w.sum(axis=1), dtype=np.float64)

    def macro(w: F64) -> F64:
        f1 = _prf(w, g, p, k)[..., 2][:, present]
        return np.asarray(np.nanmean(f1, axis=1), dtype=np.float64)

    def est(pair: tuple[F64, F64]) -> Estimate:
        value, boot = pair
        low, high = _interval(np.asarray(boot, dtype=np.float64), level)
        return Estimate(float(value), low, high, n)

    prf_all, prf_boot = _prf(w_all, g, p, k)[0], _prf(w_boot, g, p, k)
    per_class: dict[str, dict[str, Estimate]] = {}
    support = matrix.sum(axis=1)
    for i, label in enumerate(order):
        per_class[label] = {
            name: est((prf_all[i, j], prf_boot[:, i, j]))
            for j, name in enumerate(("precision", "recall", "f1"))
        }
        per_class[label]["support"] = Estimate(float(support[i]), *(float(support[i]),) * 2, n)
    return ClassReport(order, matrix.tolist(), est(both(acc)), est(both(macro)), per_class)
