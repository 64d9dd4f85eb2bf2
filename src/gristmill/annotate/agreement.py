"""Inter-annotator agreement per question: Krippendorff's α, Fleiss' κ, pairwise
Cohen's κ.

α is computed from the coincidence matrix (Krippendorff 2011, "Computing
Krippendorff's Alpha-Reliability"), so it takes any number of annotators, missing
answers, and nominal, ordinal, interval or ratio distances. Fleiss' κ needs every item
rated by the same number of annotators; when they differ it is None and ``note`` says
why (α is the coefficient that covers that case).

Levels per kind: label and preference choice nominal; multi_label one binary nominal
task per label (pooled over (record, label) units at the top); rating ordinal per
dimension (interval α in ``details``); ranking ordinal over (record, response) units;
spans nominal over characters (plus the mean pairwise exact span F1 in ``details``);
text nominal over whitespace/case-normalised answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gristmill.annotate.gold import gold_accuracy, suggestion_agreement
from gristmill.annotate.qc_values import (
    Units,
    check_answers,
    check_spans,
    label_units,
    multi_label_units,
    preference_units,
    question_kind,
    question_name,
    ranking_units,
    rating_units,
    span_units,
    text_units,
)

__all__ = [
    "Agreement",
    "agreement",
    "cohen_kappa",
    "cohen_kappas",
    "fleiss_kappa",
    "gold_accuracy",
    "krippendorff_alpha",
    "suggestion_agreement",
]

LEVELS = ("nominal", "ordinal", "interval", "ratio")


# -- the coefficients on a (unit, annotator, value) table ------------------------------


def _value_index(values: pd.Series, level: str) -> tuple[np.ndarray, list[Any]]:
    """Codes per value and the sorted domain (numeric for non-nominal levels)."""
    if level == "nominal":
        domain = sorted(set(values), key=lambda v: (type(v).__name__, v))
    else:
        domain = sorted({float(v) for v in values})
    index = {v: i for i, v in enumerate(domain)}
    keys = values if level == "nominal" else values.astype(float)
    return np.fromiter((index[v] for v in keys), dtype=np.int64, count=len(values)), domain


def _counts(frame: pd.DataFrame, level: str) -> tuple[np.ndarray, list[Any]]:
    """Units × values matrix of how many annotators gave each value to each unit."""
    codes, domain = _value_index(frame["value"], level)
    unit_codes = pd.factorize(frame["unit"])[0]
    counts = np.zeros((int(unit_codes.max()) + 1 if len(unit_codes) else 0, len(domain)))
    np.add.at(counts, (unit_codes, codes), 1)
    return counts, domain


def _delta2(level: str, domain: list[Any], n_c: np.ndarray) -> np.ndarray:
    """Squared distance between every two values (Krippendorff 2011, section C)."""
    size = len(domain)
    if level == "nominal":
        return np.asarray(1.0 - np.eye(size))
    v = np.asarray(domain, dtype=float)
    if level == "interval":
        return np.asarray(np.subtract.outer(v, v) ** 2)
    if level == "ratio":
        total = np.add.outer(v, v)
        diff = np.subtract.outer(v, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(total == 0, 0.0, (diff / np.where(total == 0, 1, total)) ** 2)
        return np.asarray(out)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        out = np.zeros((size, size))
        for c in range(size):
            for k in range(c + 1, size):
                out[c, k] = out[k, c] = (cum[k + 1] - cum[c] - (n_c[c] + n_c[k]) / 2) ** 2
        return out
    raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def coincidences(counts: np.ndarray) -> np.ndarray:
    """The coincidence matrix o_ck: pairable values (units with two or more values),
    each unit's pairs weighted by 1/(m_u - 1)."""
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    weights = 1.0 / (m - 1)
    weighted = counts * weights[:, None]
    return np.asarray(weighted.T @ counts - np.diag(weighted.sum(axis=0)))


def krippendorff_alpha(frame: pd.DataFrame, level: str = "nominal") -> float | None:
    """α = 1 - D_o / D_e over a (unit, annotator, value) table; None when no unit has
    two values or when every value is the same (no variation: α is undefined)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if frame.empty:
        return None
    counts, domain = _counts(frame, level)
    o = coincidences(counts)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return None
    d2 = _delta2(level, domain, n_c)
    expected = float((np.outer(n_c, n_c) * d2).sum())
    if expected == 0:
        return None
    return float(1.0 - (float(n) - 1) * float((o * d2).sum()) / expected)


def fleiss_kappa(frame: pd.DataFrame) -> tuple[float | None, str | None]:
    """Fleiss' κ over items rated by two or more annotators, with the reason when it
    is undefined (items rated by different numbers of annotators, or one category)."""
    if frame.empty:
        return None, "no answers"
    counts, _ = _counts(frame, "nominal")
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if not len(m):
        return None, "no item has two or more answers"
    if (m != m[0]).any():
        return None, (
            f"items have unequal numbers of ratings ({int(m.min())}-{int(m.max())}); Fleiss' "
            "kappa needs a complete design, use Krippendorff's alpha"
        )
    raters = m[0]
    p_i = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    p_j = counts.sum(axis=0) / counts.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return None, "every answer is the same category: kappa is undefined"
    return (float(p_i.mean()) - p_e) / (1.0 - p_e), None


def cohen_kappa(a: list[Any], b: list[Any], level: str = "nominal") -> float | None:
    """Cohen's κ of two aligned answer lists: unweighted for nominal data, quadratic
    weights on the values' distances for ordinal/interval. None when undefined."""
    if len(a) != len(b) or not a:
        return None
    if level == "nominal":
        domain = sorted(set(a) | set(b), key=lambda v: (type(v).__name__, v))
        index = {v: i for i, v in enumerate(domain)}
        weights = 1.0 - np.eye(len(domain))
    else:
        domain = sorted({float(v) for v in [*a, *b]})
        index = {v: i for i, v in enumerate(domain)}
        a, b = [float(v) for v in a], [float(v) for v in b]
        values = np.asarray(domain)
        weights = np.subtract.outer(values, values) ** 2
    table = np.zeros((len(domain), len(domain)))
    np.add.at(table, ([index[v] for v in a], [index[v] for v in b]), 1)
    table /= table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0))
    denominator = float((weights * expected).sum())
    if denominator == 0:
        return None
    return 1.0 - float((weights * table).sum()) / denominator


def cohen_kappas(
    frame: pd.DataFrame, level: str = "nominal", min_shared: int = 2
) -> dict[tuple[str, str], float]:
    """Cohen's κ for every annotator pair on the units both answered (pairs sharing
    fewer than ``min_shared`` units, or whose κ is undefined, are left out). Pairs
    are collected unit by unit, so the cost follows the answers, not annotators²."""
    shared: dict[tuple[str, str], tuple[list[Any], list[Any]]] = {}
    for _, group in frame.groupby("unit", sort=False):
        coded = sorted(zip(group["annotator"], group["value"], strict=True), key=lambda t: t[0])
        for (x, vx), (y, vy) in itertools.combinations(coded, 2):
            left, right = shared.setdefault((x, y), ([], []))
            left.append(vx)
            right.append(vy)
    out: dict[tuple[str, str], float] = {}
    for pair in sorted(shared):
        left, right = shared[pair]
        if len(left) < min_shared:
            continue
        kappa = cohen_kappa(left, right, level)
        if kappa is not None:
            out[pair] = kappa
    return out


# -- per question ---------------------------------------------------------------------


@dataclass
class Agreement:
    """Agreement on one question. ``n_items`` counts the records answered by two or
    more annotators (the ones agreement is measured on); ``note`` says why a
    coefficient is None; ``details`` holds the extra figures each kind reports."""

    question: str
    kind: str
    level: str
    n_items: int
    n_annotators: int
    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    cohen_kappa: dict[tuple[str, str], float] = field(default_factory=dict)
    dimensions: dict[str, Agreement] = field(default_factory=dict)
    details: dict[str, float | None] = field(default_factory=dict)
    note: str | None = None


def _paired_records(df: pd.DataFrame) -> int:
    per_record = df.groupby("record_id")["annotator"].nunique()
    return int((per_record >= 2).sum())


def _on_units(
    name: str, kind: str, units: Units, df: pd.DataFrame, level: str | None = None
) -> Agreement:
    level = level or units.level
    fleiss, note = fleiss_kappa(units.frame)
    alpha = krippendorff_alpha(units.frame, level)
    if alpha is None and note is None:
        note = "no variation or no item with two answers: alpha is undefined"
    return Agreement(
        question=name,
        kind=kind,
        level=level,
        n_items=_paired_records(df),
        n_annotators=int(df["annotator"].nunique()),
        krippendorff_alpha=alpha,
        fleiss_kappa=fleiss,
        cohen_kappa=cohen_kappas(units.frame, level),
        note=note,
    )


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _from_dimensions(
    name: str, kind: str, level: str, df: pd.DataFrame, dims: dict[str, Agreement]
) -> Agreement:
    """A question summarised over its parts (rating dimensions): the mean of their
    coefficients, each pair's κ averaged over the parts both are in."""
    pairs: dict[tuple[str, str], list[float]] = {}
    for part in dims.values():
        for pair, kappa in part.cohen_kappa.items():
            pairs.setdefault(pair, []).append(kappa)
    return Agreement(
        question=name,
        kind=kind,
        level=level,
        n_items=_paired_records(df),
        n_annotators=int(df["annotator"].nunique()),
        krippendorff_alpha=_mean([d.krippendorff_alpha for d in dims.values()]),
        fleiss_kappa=_mean([d.fleiss_kappa for d in dims.values()]),
        cohen_kappa={p: float(np.mean(v)) for p, v in pairs.items()},
        dimensions=dims,
        note="mean over dimensions" if len(dims) > 1 else None,
    )


def span_f1(question: dict[str, Any], df: pd.DataFrame) -> float | None:
    """Mean over annotator pairs and shared records of the F1 of exact (start, end,
    label) span matches; a record both left empty counts as full agreement."""
    sets: dict[str, dict[str, set[tuple[int, int, str]]]] = {}
    for rid, ann, value in df.itertuples(index=False):
        spans = check_spans(question, rid, ann, value)
        sets.setdefault(rid, {})[ann] = {(s["start"], s["end"], s["label"]) for s in spans}
    scores = []
    for by_ann in sets.values():
        for x, y in itertools.combinations(sorted(by_ann), 2):
            a, b = by_ann[x], by_ann[y]
            scores.append(1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b)))
    return float(np.mean(scores)) if scores else None


def agreement(question: dict[str, Any], answers: pd.DataFrame) -> Agreement:
    """Agreement on ``question`` from its long-format answers (record_id, annotator,
    value)."""
    name, kind = question_name(question), question_kind(question)
    df = check_answers(question, answers)
    if kind == "label":
        return _on_units(name, kind, label_units(question, df), df)
    if kind == "text":
        out = _on_units(name, kind, text_units(question, df), df)
        out.note = out.note or "exact match after whitespace and case normalisation"
        return out
    if kind == "spans":
        out = _on_units(name, kind, span_units(question, df), df)
        out.details["span_f1"] = span_f1(question, df)
        return out
    if kind == "ranking":
        units = ranking_units(question, df)
        out = _on_units(name, kind, units, df)
        out.details["interval_alpha"] = krippendorff_alpha(units.frame, "interval")
        return out
    if kind == "preference":
        choice, signed = preference_units(question, df)
        out = _on_units(name, kind, choice, df)
        out.details["signed_strength_alpha"] = krippendorff_alpha(signed.frame, "interval")
        return out
    if kind == "multi_label":
        per_label = multi_label_units(question, df)
        dims = {label: _on_units(name, kind, u, df) for label, u in per_label.items()}
        pooled = (
            pd.concat(
                [
                    u.frame.assign(unit=[(unit, lab) for unit in u.frame["unit"]])
                    for lab, u in per_label.items()
                ]
            )
            if per_label
            else pd.DataFrame(columns=["unit", "annotator", "value"])
        )
        out = _on_units(name, kind, Units(pooled, "nominal"), df)
        out.dimensions = dims
        out.note = out.note or "pooled over (record, label) units; per label in dimensions"
        return out
    # rating
    per_dim = rating_units(question, df)
    dims = {}
    for dim, units in per_dim.items():
        part = _on_units(name, kind, units, df)
        part.details["interval_alpha"] = krippendorff_alpha(units.frame, "interval")
        dims[dim] = part
    out = _from_dimensions(name, kind, "ordinal", df, dims)
    out.details["interval_alpha"] = _mean([d.details["interval_alpha"] for d in dims.values()])
    return out
