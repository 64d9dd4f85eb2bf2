"""Bradley-Terry ratings of systems from pairwise judgements, with bootstrap intervals.

Judgements are ``preference`` records: each candidate names its system (``model``, else
``origin`` without its ``model:``/``human:`` prefix) and carries a ``rank`` (1 is best,
equal ranks tie), whether a person ranked them in the annotation app or a judge model
did. Every pair of ranked candidates of a record is one comparison; a tie counts half a
win to each side.

The fit is Hunter's (2004) minorise-maximise iteration for the Bradley-Terry model
P(i beats j) = p_i / (p_i + p_j); ``prior`` adds that many virtual ties between every
pair of systems that met (so a system that never lost still gets a finite rating). The
ratings are printed on the Elo scale, 1000 + 400·log10(p_i / geometric mean of p), and
their intervals come from resampling the judgement records (percentile bootstrap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gristmill.evals.stats import LEVEL, RESAMPLES
from gristmill.records.kinds import Kind
from gristmill.store import Version

F64 = npt.NDArray[np.float64]
Judgement = tuple[str, str, float]  # (system a, system b, score of a: 1 win, 0.5 tie, 0 loss)


class RankError(ValueError):
    pass


def system_of(candidate: dict[str, Any]) -> str | None:
    model = candidate.get("model")
    if model:
        return str(model)
    origin = candidate.get("origin") or ""
    for prefix in ("model:", "human:", "synthetic:", "import:"):
        if origin.startswith(prefix):
            return origin[len(prefix) :] or None
    return origin or None


def judgements_of(version: Version) -> list[list[Judgement]]:
    """The comparisons in each preference record (records without two ranked, named
    candidates are skipped)."""
    if version.kind != Kind.PREFERENCE:
        raise RankError(f"{version.ref} holds {version.kind} records, not preference")
    out: list[list[Judgement]] = []
    for row in version.iter_rows(columns=["candidates"]):
        ranked = [
            (system_of(c), c["rank"])
            for c in row.get("candidates") or []
            if c.get("rank") is not None and system_of(c)
        ]
        pairs: list[Judgement] = []
        for i in range(len(ranked)):
            for j in range(i + 1, len(ranked)):
                (a, ra), (b, rb) = ranked[i], ranked[j]
                if a == b:
                    continue
                pairs.append((str(a), str(b), 1.0 if ra < rb else 0.5 if ra == rb else 0.0))
        if pairs:
            out.append(pairs)
    return out


def _flat(
    records: list[list[Judgement]], index: dict[str, int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], F64]:
    """Every comparison as arrays: its record, the two systems and the score of the first."""
    rec, ia, ib, sc = [], [], [], []
    for r, pairs in enumerate(records):
        for a, b, s in pairs:
            rec.append(r)
            ia.append(index[a])
            ib.append(index[b])
            sc.append(s)
    return (
        np.asarray(rec, dtype=np.int64),
        np.asarray(ia, dtype=np.int64),
        np.asarray(ib, dtype=np.int64),
        np.asarray(sc, dtype=np.float64),
    )


def _tables(
    flat: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], F64],
    k: int,
    weights: F64 | None = None,
) -> tuple[F64, F64]:
    """(wins[i, j]: score of i against j, games[i, j]) summed over weighted records."""
    rec, ia, ib, sc = flat
    w = np.ones(len(rec)) if weights is None else weights[rec]
    wins = np.zeros((k, k))
    games = np.zeros((k, k))
    np.add.at(wins, (ia, ib), w * sc)
    np.add.at(wins, (ib, ia), w * (1 - sc))
    np.add.at(games, (ia, ib), w)
    np.add.at(games, (ib, ia), w)
    return wins, games


def fit(
    wins: F64, games: F64, prior: float = 0.1, iterations: int = 1000, tol: float = 1e-10
) -> F64:
    """Bradley-Terry strengths (log scale, mean 0) by minorise-maximise."""
    met = games > 0
    wins = wins + prior * 0.5 * met
    games = games + prior * met
    total_wins = wins.sum(axis=1)
    k = len(total_wins)
    p = np.ones(k)
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(denom > 0, total_wins / denom, p)
        new = np.maximum(new, 1e-300)
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    logs = np.log(p)
    return np.asarray(logs - logs.mean(), dtype=np.float64)


def elo(log_strength: F64) -> F64:
    return np.asarray(1000 + 400 * log_strength / np.log(10), dtype=np.float64)


@dataclass
class Rating:
    system: str
    rating: float
    low: float
    high: float
    wins: float
    losses: float
    ties: float
    games: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_systems(
    records: list[list[Judgement]],
    prior: float = 0.1,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> list[Rating]:
    """Elo-scale Bradley-Terry ratings, best first, with percentile intervals."""
    systems = sorted({s for pairs in records for a, b, _ in pairs for s in (a, b)})
    if len(systems) < 2:
        raise RankError("ranking needs judgements between at least two systems")
    index = {s: i for i, s in enumerate(systems)}
    flat = _flat(records, index)
    k = len(systems)
    wins, games = _tables(flat, k)
    point = elo(fit(wins, games, prior))
    boot = np.empty((resamples, len(systems)))
    rng = np.random.default_rng(seed)
    n = len(records)
    for b in range(resamples):
        w = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        bw, bg = _tables(flat, k, w)
        boot[b] = elo(fit(bw, bg, prior, iterations=300, tol=1e-8))
    tail = (1 - level) / 2 * 100
    lows, highs = np.percentile(boot, [tail, 100 - tail], axis=0) if resamples else (point, point)
    outcome: dict[str, list[float]] = {s: [0.0, 0.0, 0.0, 0.0] for s in systems}
    for pairs in records:
        for first, second, value in pairs:
            for who, score in ((first, value), (second, 1 - value)):
                slot = 0 if score == 1 else 1 if score == 0 else 2
                outcome[who][slot] += 1
                outcome[who][3] += 1
    out = [
        Rating(
            s,
            float(point[i]),
            float(lows[i]),
            float(highs[i]),
            outcome[s][0],
            outcome[s][1],
            outcome[s][2],
            int(outcome[s][3]),
        )
        for i, s in enumerate(systems)
    ]
    return sorted(out, key=lambda r: -r.rating)
