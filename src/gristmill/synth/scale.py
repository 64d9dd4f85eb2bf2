"""A rating read from the judge's next-token probabilities instead of its text (G-Eval,
Liu et al. 2023): the prompt ends where the score digit goes, the probabilities of the
scale's values as the next token form a distribution, and the rating is its
probability-weighted mean, so a small model that never writes valid JSON still rates,
and two answers rarely tie.

Each value is asked as ``"3"`` and ``" 3"`` (the digit may follow a space, like Ask-LLM's
yes/no variants, ``models.text.probability``). A backend gives a candidate the
probability of its *first* token, so where ``" 3"`` is two tokens (a space, then the
digit) every spaced variant reads the same space token: a family whose values all read
exactly the same is that shared token, not the digits, and is left out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gristmill.models.protocols import NextTokens
from gristmill.models.text import probability

FAMILIES: tuple[str, ...] = ("{v}", " {v}")


def scale_values(low: int, high: int) -> list[int]:
    return list(range(low, high + 1))


def scale_candidates(low: int, high: int) -> list[str]:
    """Every token variant to ask the backend for."""
    return [f.format(v=v) for f in FAMILIES for v in scale_values(low, high)]


@dataclass(frozen=True)
class ScaleScore:
    """The distribution over the scale's values, its total mass (the rest went to other
    tokens), the weighted mean (the rating) and the most likely value."""

    distribution: dict[int, float]
    mass: float
    mean: float
    argmax: int
    top: dict[str, float]  # the backend's most likely next tokens, for the record

    def to_dict(self) -> dict[str, Any]:
        return {
            "distribution": {str(k): round(v, 6) for k, v in self.distribution.items()},
            "mass": round(self.mass, 6),
            "mean": self.mean,
            "argmax": self.argmax,
        }


def _shared_token(tokens: NextTokens, family: str, values: list[int]) -> bool:
    lps = [tokens.logprobs.get(family.format(v=v)) for v in values]
    present = [lp for lp in lps if lp is not None and lp > -math.inf]
    return len(present) == len(values) and len(set(present)) == 1


def scale_distribution(tokens: NextTokens, low: int, high: int) -> dict[int, float]:
    """P(value) summed over its variants, families reading a shared first token left out."""
    values = scale_values(low, high)
    families = [f for f in FAMILIES if not _shared_token(tokens, f, values)]
    return {v: probability(tokens, [f.format(v=v) for f in families]) for v in values}


def score(tokens: NextTokens, low: int, high: int) -> ScaleScore:
    """The weighted mean over the distribution renormalised to the scale (mass > 0)."""
    dist = scale_distribution(tokens, low, high)
    mass = sum(dist.values())
    mean = sum(v * p for v, p in dist.items()) / mass if mass > 0 else math.nan
    argmax = max(dist, key=dist.__getitem__)
    top = dict(sorted(tokens.logprobs.items(), key=lambda kv: -kv[1])[:5])
    return ScaleScore(dist, mass, mean, argmax, {k: round(math.exp(v), 6) for k, v in top.items()})
