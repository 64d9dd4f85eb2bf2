"""Annotators against known answers: accuracy on gold records, and how often people
keep a model's suggestion.

"Correct" is equality of canonical forms (``qc_values.canonical``): the same label,
the same label set, the same ranks, the same preference choice, the same spans, the
same scores on every dimension, or the same text after whitespace/case folding.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gristmill.annotate.qc_values import QCError, canonical, check_answers, question_kind

NOMINAL_FOR_KAPPA = ("label", "preference")


def gold_accuracy(
    question: dict[str, Any], answers: pd.DataFrame, gold: dict[str, object]
) -> pd.DataFrame:
    """One row per annotator who answered a gold record: annotator, n (gold records
    answered), correct, accuracy (correct / n)."""
    df = check_answers(question, answers)
    truth = {str(k): canonical(question, v) for k, v in gold.items() if v is not None}
    df = df[df["record_id"].isin(list(truth))]
    rows = []
    for annotator, group in df.groupby("annotator", sort=True):
        right = sum(
            canonical(question, value) == truth[rid]
            for rid, value in zip(group["record_id"], group["value"], strict=True)
        )
        rows.append((str(annotator), len(group), int(right), right / len(group)))
    return pd.DataFrame(rows, columns=["annotator", "n", "correct", "accuracy"])


def suggestion_agreement(
    question: dict[str, Any], answers: pd.DataFrame, suggestions: pd.DataFrame
) -> dict[str, Any]:
    """How often the submitted answer equals the model's suggestion for that record:
    ``rate`` (None without any pair), ``n`` (answers on suggested records) and, for
    label and preference questions, Cohen's κ between suggestion and answer."""
    from gristmill.annotate.agreement import cohen_kappa

    if not {"record_id", "value"} <= set(suggestions.columns):
        raise QCError("suggestions need columns record_id, value")
    df = check_answers(question, answers)
    suggested = {
        str(rid): canonical(question, value)
        for rid, value in zip(suggestions["record_id"], suggestions["value"], strict=True)
        if value is not None
    }
    pairs = [
        (suggested[rid], canonical(question, value))
        for rid, value in zip(df["record_id"], df["value"], strict=True)
        if rid in suggested
    ]
    out: dict[str, Any] = {"rate": None, "n": len(pairs), "kappa": None}
    if pairs:
        out["rate"] = sum(s == a for s, a in pairs) / len(pairs)
        if question_kind(question) in NOMINAL_FOR_KAPPA:
            out["kappa"] = cohen_kappa([s for s, _ in pairs], [a for _, a in pairs])
    return out
