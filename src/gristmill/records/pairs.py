"""Preference pairs and unpaired labels from a Preference record (DESIGN.md,
"Preference pairs from ratings").

Pure functions on typed records: exporters call them one record at a time, so they
stream, and every record that yields no pair says why (a reason string, counted by
the caller) instead of vanishing.

Rules:

- ``ranks``: chosen = the best (lowest) rank, rejected = the worst (highest) rank;
  margin = worst rank - best rank.
- ``ratings``: a candidate's score is the mean over dimensions of its mean rating on
  that dimension (or only ``dimension``); chosen = best score, rejected = worst score;
  margin = the difference of the two scores.
- Several candidates sharing the best (or worst) score: the first in candidate order.
  A record whose best and worst scores are equal is a tie and is dropped.
- ``rejected="random"``: a candidate drawn among those strictly below the chosen one,
  from a generator seeded by (seed, record id), so the draw does not depend on the
  order or the batch in which records arrive.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from gristmill.records.kinds import Candidate, Preference


class PairStrategy(StrEnum):
    RANKS = "ranks"
    RATINGS = "ratings"


class RejectedChoice(StrEnum):
    WORST = "worst"
    RANDOM = "random"


@dataclass(frozen=True)
class PairOptions:
    """How to turn a record into one pair. ``strategy=None`` uses ranks when at least
    two candidates are ranked and no ``dimension`` is named, ratings otherwise."""

    strategy: PairStrategy | None = None
    rejected: RejectedChoice = RejectedChoice.WORST
    dimension: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class Pair:
    chosen: Candidate
    rejected: Candidate
    margin: float
    chosen_index: int
    rejected_index: int
    strategy: PairStrategy


@dataclass
class PairResult:
    """Pairs made from many records, and how many records gave none, by reason."""

    pairs: list[Pair] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


# Reasons a record yields no pair (also used as report keys).
TIE = "tie: best and worst candidates score the same"
TOO_FEW_RANKED = "fewer than two ranked candidates"
TOO_FEW_RATED = "fewer than two rated candidates"


def too_few_on(dimension: str) -> str:
    return f"fewer than two candidates rated on {dimension!r}"


def candidate_score(candidate: Candidate, dimension: str | None = None) -> float | None:
    """Mean over dimensions of the mean rating per dimension (raters averaged first,
    so a dimension with many raters does not outweigh one with few); None if unrated."""
    by_dimension: dict[str, list[float]] = {}
    for rating in candidate.ratings:
        if dimension is None or rating.dimension == dimension:
            by_dimension.setdefault(rating.dimension, []).append(rating.value)
    if not by_dimension:
        return None
    means = [sum(values) / len(values) for values in by_dimension.values()]
    return sum(means) / len(means)


def _strategy(record: Preference, options: PairOptions) -> PairStrategy:
    if options.strategy is not None:
        return options.strategy
    ranked = sum(c.rank is not None for c in record.candidates)
    return PairStrategy.RANKS if ranked >= 2 and options.dimension is None else PairStrategy.RATINGS


def make_pair(record: Preference, options: PairOptions | None = None) -> Pair | str:
    """The record's (chosen, rejected) pair, or the reason it has none."""
    options = options or PairOptions()
    strategy = _strategy(record, options)
    # goodness: higher is better, so ranks are negated
    goodness: list[tuple[int, float]] = []
    if strategy is PairStrategy.RANKS:
        goodness = [
            (i, -float(c.rank)) for i, c in enumerate(record.candidates) if c.rank is not None
        ]
        if len(goodness) < 2:
            return TOO_FEW_RANKED
    else:
        for i, candidate in enumerate(record.candidates):
            score = candidate_score(candidate, options.dimension)
            if score is not None:
                goodness.append((i, score))
        if len(goodness) < 2:
            return TOO_FEW_RATED if options.dimension is None else too_few_on(options.dimension)
    best_i, best = max(goodness, key=lambda g: g[1])  # max/min keep the first on ties
    worst_i, worst = min(goodness, key=lambda g: g[1])
    if best == worst:
        return TIE
    if options.rejected is RejectedChoice.RANDOM:
        lower = [g for g in goodness if g[1] < best]
        rng = random.Random(f"{options.seed}:{record.id}")
        worst_i, worst = lower[rng.randrange(len(lower))]
    return Pair(
        chosen=record.candidates[best_i],
        rejected=record.candidates[worst_i],
        margin=best - worst,
        chosen_index=best_i,
        rejected_index=worst_i,
        strategy=strategy,
    )


def make_pairs(records: Iterable[Preference], options: PairOptions | None = None) -> PairResult:
    """Pairs for many records, with the count of records dropped per reason."""
    result = PairResult()
    for record in records:
        pair = make_pair(record, options)
        if isinstance(pair, str):
            result.dropped[pair] += 1
        else:
            result.pairs.append(pair)
    return result


# -- unpaired preference (KTO) ------------------------------------------------------------

NO_LABEL = "candidate has no label (set one, or pass a rating threshold)"
NO_LABEL_UNRATED = "candidate has no label and no rating to threshold"


@dataclass(frozen=True)
class LabelledCandidate:
    candidate: Candidate
    label: bool
    index: int


def unpaired_labels(
    record: Preference, threshold: float | None = None, dimension: str | None = None
) -> tuple[list[LabelledCandidate], Counter[str]]:
    """Each candidate with a desirable/undesirable label: its own ``label`` when set,
    else ``score >= threshold`` when a threshold is given; the rest are counted by
    reason (one per candidate)."""
    labelled: list[LabelledCandidate] = []
    skipped: Counter[str] = Counter()
    for i, candidate in enumerate(record.candidates):
        if candidate.label is not None:
            labelled.append(LabelledCandidate(candidate, candidate.label, i))
            continue
        if threshold is None:
            skipped[NO_LABEL] += 1
            continue
        score = candidate_score(candidate, dimension)
        if score is None:
            skipped[NO_LABEL_UNRATED] += 1
        else:
            labelled.append(LabelledCandidate(candidate, score >= threshold, i))
    return labelled, skipped
