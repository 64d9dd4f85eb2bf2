"""Uncertainty of a label distribution: the active-learning order for annotation.

Three classic measures (Settles 2009), each oriented so that a larger value means
"more uncertain", so any of them sorts an annotation queue the same way (most
uncertain first):

- ``entropy``: -Σ p log p, normalised by log C to lie in [0, 1];
- ``margin``: 1 - (p₁ - p₂), one minus the gap between the two likeliest labels;
- ``least_confidence``: 1 - p₁.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MEASURES = ("entropy", "margin", "least_confidence")
F64 = npt.NDArray[np.float64]


def normalise_rows(probs: npt.ArrayLike) -> F64:
    """Rows rescaled to sum to 1 (a label subset of a model's vocabulary, or scores
    that do not quite sum to 1); an all-zero row becomes uniform."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("uncertainty: need a distribution over at least two labels per record")
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def from_logprobs(logprobs: list[dict[str, float]], labels: list[str]) -> F64:
    """Label distribution from next-token log-probabilities: each label's probability
    is the sum over the tokens that spell it (case and leading space aside), then the
    labels are renormalised among themselves."""
    wanted = [lbl.strip().lower() for lbl in labels]
    out = np.zeros((len(logprobs), len(labels)), dtype=np.float64)
    for i, tokens in enumerate(logprobs):
        for token, lp in tokens.items():
            key = token.strip().lower()
            for j, lbl in enumerate(wanted):
                if key == lbl:
                    out[i, j] += math.exp(lp)
    return normalise_rows(out)


def measures(probs: npt.ArrayLike) -> dict[str, F64]:
    """The three measures for each row of ``probs`` (rows need not be normalised)."""
    p = normalise_rows(probs)
    c = p.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -(p * logs).sum(axis=1) / math.log(c)
    top = -np.sort(-p, axis=1)
    return {
        "entropy": np.clip(entropy, 0.0, 1.0),
        "margin": 1.0 - (top[:, 0] - top[:, 1]),
        "least_confidence": 1.0 - top[:, 0],
    }
