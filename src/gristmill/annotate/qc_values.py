"""Answers as QC sees them: the long table checked, and each kind's values turned into
comparable *units* (the thing two annotators can agree on) and canonical forms.

Every QC function (agreement, aggregation, gold, write-back) reads answers through
here, so "what counts as the same answer" is defined once per question kind.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pandas as pd

ANSWER_COLUMNS = ("record_id", "annotator", "value")
KINDS = ("label", "multi_label", "spans", "text", "rating", "ranking", "preference")
NOMINAL_KINDS = ("label", "multi_label", "preference", "spans", "text")


class QCError(ValueError):
    """Answers or questions QC cannot use; the message names the record, annotator and
    question concerned."""


def question_name(question: dict[str, Any]) -> str:
    return str(question.get("name") or "?")


def question_kind(question: dict[str, Any]) -> str:
    kind = question.get("kind")
    if kind not in KINDS:
        raise QCError(
            f"question {question_name(question)!r}: kind must be one of {', '.join(KINDS)}, "
            f"got {kind!r}"
        )
    return str(kind)


def check_answers(question: dict[str, Any], answers: pd.DataFrame) -> pd.DataFrame:
    """The answers with the contract's columns, ids as strings, unanswered (None)
    values dropped (they are no answer to agree on), in a stable order."""
    missing = [c for c in ANSWER_COLUMNS if c not in answers.columns]
    if missing:
        raise QCError(
            f"question {question_name(question)!r}: answers need columns "
            f"{', '.join(ANSWER_COLUMNS)}; missing {', '.join(missing)}"
        )
    df = answers.loc[:, list(ANSWER_COLUMNS)].copy()
    df["record_id"] = df["record_id"].astype(str)
    df["annotator"] = df["annotator"].astype(str)
    df = df[~df["value"].map(is_missing).astype(bool)]
    dupes = df.duplicated(["record_id", "annotator"], keep=False)
    if dupes.any():
        row = df[dupes].iloc[0]
        raise QCError(
            f"question {question_name(question)!r}: annotator {row['annotator']!r} answered "
            f"record {row['record_id']!r} more than once ({int(dupes.sum())} duplicate rows); "
            "pass one submitted answer per record and annotator"
        )
    return df.reset_index(drop=True)


def is_missing(value: Any) -> bool:
    """None, or the NaN pandas puts in a text column for a missing value."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _where(question: dict[str, Any], record_id: Any, annotator: Any) -> str:
    return f"question {question_name(question)!r}, record {record_id!r}, annotator {annotator!r}"


# -- canonical forms: what "the same answer" means per kind ---------------------------

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Whitespace collapsed and case folded: two texts that differ only there are one."""
    return _SPACE.sub(" ", text).strip().casefold()


def canonical(question: dict[str, Any], value: Any) -> Hashable:
    """A hashable form of an answer value; equal forms are the same answer (gold
    accuracy, suggestion agreement, exact majorities)."""
    kind = question_kind(question)
    if kind == "label":
        return str(value)
    if kind == "multi_label":
        return tuple(sorted(str(v) for v in value))
    if kind == "text":
        return normalize_text(str(value))
    if kind == "ranking":
        return tuple(int(r) for r in value)
    if kind == "preference":
        return str(value["choice"]) if isinstance(value, dict) else str(value)
    if kind == "spans":
        return tuple(sorted((int(s["start"]), int(s["end"]), str(s["label"])) for s in value))
    # rating
    if isinstance(value, list):
        return tuple(tuple(sorted((k, float(v)) for k, v in d.items())) for d in value)
    return tuple(sorted((k, float(v)) for k, v in value.items()))


# -- units: (unit, annotator, value) rows that agreement coefficients compare ----------


@dataclass
class Units:
    """One coding task: ``frame`` has columns unit, annotator, value; ``level`` says
    how values differ (nominal, ordinal, interval)."""

    frame: pd.DataFrame
    level: str


def _frame(rows: list[tuple[Hashable, str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unit", "annotator", "value"])


def label_units(question: dict[str, Any], df: pd.DataFrame) -> Units:
    labels = question.get("labels")
    rows = []
    for rid, ann, value in df.itertuples(index=False):
        if labels and value not in labels:
            raise QCError(f"{_where(question, rid, ann)}: {value!r} is not one of {labels}")
        rows.append((rid, ann, str(value)))
    return Units(_frame(rows), "nominal")


def multi_label_units(question: dict[str, Any], df: pd.DataFrame) -> dict[str, Units]:
    """One binary coding task per label: did the annotator tick it on this record."""
    labels = list(question.get("labels") or [])
    chosen: list[tuple[str, str, set[str]]] = []
    for rid, ann, value in df.itertuples(index=False):
        if not isinstance(value, list | tuple | set):
            raise QCError(f"{_where(question, rid, ann)}: expected a list of labels")
        picked = {str(v) for v in value}
        unknown = sorted(picked - set(labels))
        if unknown:
            raise QCError(f"{_where(question, rid, ann)}: {unknown} not in {labels}")
        chosen.append((rid, ann, picked))
    return {
        label: Units(_frame([(rid, ann, label in p) for rid, ann, p in chosen]), "nominal")
        for label in labels
    }


def rating_dimensions(question: dict[str, Any]) -> list[str]:
    return [str(d["name"]) for d in question.get("dimensions") or []]


def rating_units(question: dict[str, Any], df: pd.DataFrame) -> dict[str, Units]:
    """Per dimension: units are records (target record) or (record, response index)
    (target each_response); values are the scores, ordinal."""
    dims = rating_dimensions(question)
    each = question.get("target") == "each_response"
    rows: dict[str, list[tuple[Hashable, str, Any]]] = {d: [] for d in dims}
    for rid, ann, value in df.itertuples(index=False):
        items = value if each else [value]
        if each and not isinstance(value, list):
            raise QCError(f"{_where(question, rid, ann)}: expected one rating dict per response")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise QCError(f"{_where(question, rid, ann)}: expected dimension → score")
            for dim, score in item.items():
                if dim not in rows:
                    raise QCError(f"{_where(question, rid, ann)}: unknown dimension {dim!r}")
                if score is None:
                    continue
                if isinstance(score, bool) or not isinstance(score, int | float):
                    raise QCError(f"{_where(question, rid, ann)}: {dim} score {score!r}")
                rows[dim].append(((rid, i) if each else rid, ann, float(score)))
    return {d: Units(_frame(r), "ordinal") for d, r in rows.items()}


def ranking_units(question: dict[str, Any], df: pd.DataFrame) -> Units:
    """Units are (record, response index); the value is the rank given (ordinal)."""
    rows: list[tuple[Hashable, str, Any]] = []
    for rid, ann, value in df.itertuples(index=False):
        ranks = check_ranks(question, rid, ann, value)
        rows.extend(((rid, i), ann, float(r)) for i, r in enumerate(ranks))
    return Units(_frame(rows), "ordinal")


def check_ranks(question: dict[str, Any], rid: Any, ann: Any, value: Any) -> list[int]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise QCError(f"{_where(question, rid, ann)}: expected a rank per response, got {value!r}")
    ranks = []
    for r in value:
        if isinstance(r, bool) or not isinstance(r, int | float) or int(r) != r or r < 1:
            raise QCError(f"{_where(question, rid, ann)}: rank {r!r} is not a whole number >= 1")
        ranks.append(int(r))
    return ranks


PREFERENCE_CHOICES = ("a", "b", "tie")


def preference_choice(question: dict[str, Any], rid: Any, ann: Any, value: Any) -> str:
    choice = value.get("choice") if isinstance(value, dict) else None
    if choice not in PREFERENCE_CHOICES:
        raise QCError(f"{_where(question, rid, ann)}: choice must be a, b or tie, got {choice!r}")
    return str(choice)


def preference_units(question: dict[str, Any], df: pd.DataFrame) -> tuple[Units, Units]:
    """The choice (nominal) and the signed strength: a strong 'a' is -3, a tie 0, a
    strong 'b' +3 (interval), for the two ways of asking whether annotators agree."""
    choices: list[tuple[Hashable, str, Any]] = []
    signed: list[tuple[Hashable, str, Any]] = []
    for rid, ann, value in df.itertuples(index=False):
        choice = preference_choice(question, rid, ann, value)
        choices.append((rid, ann, choice))
        strength = value.get("strength") or 1
        sign = {"a": -1, "b": 1, "tie": 0}[choice]
        signed.append((rid, ann, float(sign * strength)))
    return Units(_frame(choices), "nominal"), Units(_frame(signed), "interval")


def check_spans(question: dict[str, Any], rid: Any, ann: Any, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise QCError(f"{_where(question, rid, ann)}: expected a list of spans")
    spans = []
    for span in value:
        if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
            raise QCError(f"{_where(question, rid, ann)}: span {span!r} needs start, end, label")
        start, end = int(span["start"]), int(span["end"])
        if not 0 <= start < end:
            raise QCError(f"{_where(question, rid, ann)}: span {span!r} has start >= end")
        spans.append({**span, "start": start, "end": end, "label": str(span["label"])})
    return spans


def span_units(question: dict[str, Any], df: pd.DataFrame) -> Units:
    """Character-level coding: units are (record, character offset) for every
    character that at least one annotator of the record put in a span; the value is
    the span label there, or "" for none. Characters nobody marked are left out, so
    agreement is not inflated by the easy, unmarked bulk of the text."""
    per_record: dict[str, dict[str, dict[int, str]]] = {}
    for rid, ann, value in df.itertuples(index=False):
        chars: dict[int, str] = {}
        for span in check_spans(question, rid, ann, value):
            for pos in range(span["start"], span["end"]):
                chars[pos] = span["label"]
        per_record.setdefault(rid, {})[ann] = chars
    rows: list[tuple[Hashable, str, Any]] = []
    for rid, by_ann in per_record.items():
        covered = sorted(set().union(*(c.keys() for c in by_ann.values())))
        for ann, chars in by_ann.items():
            rows.extend(((rid, pos), ann, chars.get(pos, "")) for pos in covered)
    return Units(_frame(rows), "nominal")


def text_units(question: dict[str, Any], df: pd.DataFrame) -> Units:
    rows = [(rid, ann, normalize_text(str(v))) for rid, ann, v in df.itertuples(index=False)]
    return Units(_frame(rows), "nominal")
