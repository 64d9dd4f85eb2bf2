"""Bounded-memory accumulators, so a report streams over any number of records.

``ValueSketch`` keeps exact counts for small values and 1%-wide logarithmic buckets
above ``EXACT_BELOW``; percentiles are therefore exact below 4096 and within 0.5%
above it. ``CappedCounter`` stops adding new keys after a cap; ``ReasonTally`` keeps a
few example ids per reason.
"""

from __future__ import annotations

import math
from collections import Counter

from gristmill.quality.model import Histogram, Reason, Share, Summary

EXACT_BELOW = 4096
GAMMA = 1.01
_LOG_GAMMA = math.log(GAMMA)
PERCENTILES = (5, 25, 50, 75, 95, 99)
OTHER = "(other)"


class ValueSketch:
    """Streaming distribution of non-negative numbers (lengths, counts, ages)."""

    def __init__(self) -> None:
        self.exact: Counter[int] = Counter()
        self.buckets: Counter[int] = Counter()
        self.n = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        value = max(0.0, value)
        self.n += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if value < EXACT_BELOW and float(value).is_integer():
            self.exact[int(value)] += 1
        elif value < EXACT_BELOW:
            self.exact[round(value)] += 1  # fractional values below 4096: nearest integer
        else:
            self.buckets[math.ceil(math.log(value) / _LOG_GAMMA)] += 1

    def _sorted(self) -> list[tuple[float, int]]:
        """(representative value, count) in increasing order."""
        out: list[tuple[float, int]] = [(float(v), c) for v, c in sorted(self.exact.items())]
        for idx, c in sorted(self.buckets.items()):
            out.append((float(round(2 * GAMMA**idx / (GAMMA + 1))), c))
        return out

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile: the smallest value with at least q% of values ≤ it."""
        if self.n == 0:
            return 0.0
        if q <= 0:
            return self.low
        if q >= 100:
            return self.high
        rank = max(1, math.ceil(q / 100 * self.n))
        seen = 0
        for value, count in self._sorted():
            seen += count
            if seen >= rank:
                return min(max(value, self.low), self.high)
        return self.high

    def summary(self) -> Summary:
        if self.n == 0:
            return Summary()
        values = {f"p{p}": self.percentile(p) for p in PERCENTILES}
        return Summary(
            count=self.n,
            mean=self.total / self.n,
            min=self.low,
            max=self.high,
            **values,
        )

    def histogram(self) -> Histogram:
        """Counts in power-of-two bins: [0,1), [1,2), [2,4), [4,8), ..."""
        if self.n == 0:
            return Histogram()
        bins: Counter[int] = Counter()
        for value, count in self._sorted():
            bins[0 if value < 1 else math.floor(math.log2(value)) + 1] += count
        top = max(bins)
        edges = [0.0] + [float(2**i) for i in range(top + 1)]
        return Histogram(edges=edges, counts=[bins.get(i, 0) for i in range(top + 1)])


class CappedCounter:
    """A Counter that stops taking new keys after ``cap`` (later ones count as other)."""

    def __init__(self, cap: int = 10_000) -> None:
        self.counts: Counter[str] = Counter()
        self.cap = cap
        self.total = 0

    def add(self, key: str, n: int = 1) -> None:
        self.total += n
        if key in self.counts or len(self.counts) < self.cap:
            self.counts[key] += n
        else:
            self.counts[OTHER] += n

    def shares(self, top: int = 25, denominator: int | None = None) -> list[Share]:
        """The ``top`` most common values (ties by name), the rest folded into other."""
        denom = denominator if denominator is not None else self.total
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [(k, c) for k, c in items if k != OTHER][:top]
        rest = self.total - sum(c for _, c in kept)
        if rest > 0:
            kept.append((OTHER, rest))
        return [Share(value=k, count=c, rate=c / denom if denom else 0.0) for k, c in kept]


class ReasonTally:
    """Records per reason with the first few example ids."""

    def __init__(self, examples: int = 3, cap: int = 1000) -> None:
        self.counts = CappedCounter(cap)
        self.examples: dict[str, list[str]] = {}
        self.keep = examples

    def add(self, reason: str, record_id: str) -> None:
        self.counts.add(reason)
        ids = self.examples.setdefault(reason, [])
        if len(ids) < self.keep and len(self.examples) <= self.counts.cap:
            ids.append(record_id)

    def reasons(self) -> list[Reason]:
        items = sorted(self.counts.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [Reason(reason=r, count=c, examples=self.examples.get(r, [])) for r, c in items]
