"""One answer per record from several annotators' answers, with crowd-kit's models.

Methods per kind (``auto`` first):

- label: ``dawid_skene``, ``majority``, ``glad``, ``mace`` (crowd-kit); confidence is
  the posterior probability of the chosen label (the vote share for majority).
- multi_label: each label is a binary task aggregated by the same methods; the value is
  the labels decided "on"; confidence is the least certain of those decisions.
- rating: ``median`` or ``mean`` per dimension (per response for each_response); no
  confidence (None).
- ranking and preference: ``bradley_terry`` fitted per record on the pairwise
  comparisons each answer implies, or ``majority`` (the most frequent full answer).
  Ties: a decisive comparison counts as two wins, a tie as one win each way (half a win
  each), and every pair gets one virtual tie as a prior so that a record ranked by one
  annotator still has finite scores. Confidence is P(best beats the runner-up) under
  the fitted model.
- spans: ``majority`` per character (a character takes the label a strict majority of
  the record's annotators gave it); confidence is the share of annotators whose spans
  equal the result exactly.
- text: ``medoid`` (the answer with the highest mean token-F1 to the others;
  confidence is that mean) or ``majority`` (the most frequent normalised answer).
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gristmill.annotate.qc_values import (
    QCError,
    canonical,
    check_answers,
    check_ranks,
    check_spans,
    label_units,
    multi_label_units,
    normalize_text,
    preference_choice,
    question_kind,
    question_name,
    rating_dimensions,
)

METHODS: dict[str, tuple[str, ...]] = {
    "label": ("dawid_skene", "majority", "glad", "mace"),
    "multi_label": ("dawid_skene", "majority", "glad", "mace"),
    "rating": ("median", "mean"),
    "ranking": ("bradley_terry", "majority"),
    "preference": ("bradley_terry", "majority"),
    "spans": ("majority",),
    "text": ("medoid", "majority"),
}
RESULT_COLUMNS = ["record_id", "value", "confidence", "method"]


def resolve_method(question: dict[str, Any], method: str = "auto") -> str:
    kind = question_kind(question)
    allowed = METHODS[kind]
    if method == "auto":
        return allowed[0]
    if method not in allowed:
        raise QCError(
            f"question {question_name(question)!r} ({kind}): method must be auto or one of "
            f"{', '.join(allowed)}, got {method!r}"
        )
    return method


def _result(rows: list[tuple[str, Any, float | None]], method: str) -> pd.DataFrame:
    return pd.DataFrame(
        [(rid, value, conf, method) for rid, value, conf in rows], columns=RESULT_COLUMNS
    )


# -- categorical: crowd-kit -----------------------------------------------------------


def _crowdkit_model(method: str) -> Any:
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote

    models: dict[str, Callable[[], Any]] = {
        "majority": MajorityVote,
        "dawid_skene": lambda: DawidSkene(n_iter=100),
        "glad": lambda: GLAD(n_iter=100),
        "mace": lambda: MACE(random_state=0),
    }
    return models[method]()


def categorical_posteriors(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """Posterior probability of every value per unit (rows: units, columns: values)
    from a (unit, annotator, value) table, with crowd-kit's ``method``."""
    data = pd.DataFrame(
        {"task": frame["unit"], "worker": frame["annotator"], "label": frame["value"]}
    )
    values = pd.unique(data["label"])
    if len(values) == 1:  # no alternative: every model would agree (GLAD cannot fit it)
        return pd.DataFrame(1.0, index=pd.unique(data["task"]), columns=values)
    model = _crowdkit_model(method)
    with warnings.catch_warnings():  # crowd-kit's own pandas deprecations, not the user's
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        probas = model.fit_predict_proba(data)
    return probas.fillna(0.0)


def _label_rows(frame: pd.DataFrame, method: str) -> list[tuple[Hashable, Any, float]]:
    probas = categorical_posteriors(frame, method)
    order = list(pd.unique(frame["unit"]))
    probas = probas.reindex(order)
    best = probas.to_numpy().argmax(axis=1)  # ties: the first value in column order
    columns = list(probas.columns)
    return [
        (unit, columns[b], float(probas.iloc[i, b]))
        for i, (unit, b) in enumerate(zip(order, best, strict=True))
    ]


def _aggregate_label(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    units = label_units(question, df)
    return _result([(str(u), v, c) for u, v, c in _label_rows(units.frame, method)], method)


def _aggregate_multi_label(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    per_label = multi_label_units(question, df)
    records = list(pd.unique(df["record_id"]))
    chosen: dict[str, list[str]] = {r: [] for r in records}
    certainty: dict[str, list[float]] = {r: [] for r in records}
    for label, units in per_label.items():
        for unit, on, conf in _label_rows(units.frame, method):
            if bool(on):
                chosen[str(unit)].append(label)
            certainty[str(unit)].append(conf)
    rows = [(r, chosen[r], min(certainty[r]) if certainty[r] else None) for r in records]
    return _result(rows, method)


# -- ratings --------------------------------------------------------------------------


def _aggregate_rating(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    dims = set(rating_dimensions(question))
    each = question.get("target") == "each_response"
    reduce = np.median if method == "median" else np.mean
    rows: list[tuple[str, Any, float | None]] = []
    for rid, group in df.groupby("record_id", sort=False):
        answers = list(group["value"])
        if each:
            lengths = {len(a) if isinstance(a, list) else -1 for a in answers}
            if len(lengths) != 1 or -1 in lengths:
                raise QCError(
                    f"question {question_name(question)!r}, record {rid!r}: per-response "
                    f"ratings must be lists of the same length, got lengths {sorted(lengths)}"
                )
            per_response = [list(col) for col in zip(*answers, strict=True)]
        else:
            per_response = [answers]
        out = []
        for items in per_response:
            agg: dict[str, float] = {}
            for dim in sorted(dims):
                scores = [float(a[dim]) for a in items if a.get(dim) is not None]
                if scores:
                    agg[dim] = float(reduce(scores))
            unknown = {k for a in items for k in a} - dims
            if unknown:
                raise QCError(
                    f"question {question_name(question)!r}, record {rid!r}: unknown "
                    f"dimension(s) {sorted(unknown)}"
                )
            out.append(agg)
        rows.append((str(rid), out if each else out[0], None))
    return _result(rows, method)


# -- rankings and preferences: Bradley-Terry ------------------------------------------


def bradley_terry(comparisons: Sequence[tuple[Hashable, Hashable, Hashable | None]]) -> pd.Series:
    """Bradley-Terry scores (summing to 1) from (left, right, winner) comparisons,
    ``winner`` None for a tie, fitted with crowd-kit's MM algorithm.

    crowd-kit counts whole wins only, so each decisive comparison is passed twice and
    a tie once each way (half a win each); every compared pair also gets one virtual
    tie, a prior that keeps scores finite when one item always wins."""
    from crowdkit.aggregation import BradleyTerry

    rows: list[tuple[Hashable, Hashable, Hashable]] = []
    pairs = set()
    for left, right, winner in comparisons:
        pairs.add(frozenset((left, right)))
        if winner is None:
            rows += [(left, right, left), (left, right, right)]
        else:
            rows += [(left, right, winner), (left, right, winner)]
    for pair in pairs:
        left, right = sorted(pair, key=str)
        rows += [(left, right, left), (left, right, right)]
    if not rows:
        return pd.Series(dtype=float)
    data = pd.DataFrame(rows, columns=["left", "right", "label"])
    data["worker"] = "all"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return BradleyTerry(n_iter=1000, tol=1e-10).fit(data).scores_


def dense_ranks(scores: list[float], rtol: float = 1e-6) -> list[int]:
    """1 = best; scores within ``rtol`` of each other (relative to the best) share a
    rank, ranks are dense (1..k)."""
    top = max(scores) if scores else 0.0
    distinct: list[float] = []
    for s in sorted(scores, reverse=True):
        if not distinct or distinct[-1] - s > rtol * max(top, 1e-12):
            distinct.append(s)
    return [
        1 + next(i for i, d in enumerate(distinct) if abs(d - s) <= rtol * max(top, 1e-12))
        for s in scores
    ]


def _pairwise(ranks: list[int]) -> list[tuple[int, int, int | None]]:
    out: list[tuple[int, int, int | None]] = []
    for i, j in itertools.combinations(range(len(ranks)), 2):
        winner = None if ranks[i] == ranks[j] else (i if ranks[i] < ranks[j] else j)
        out.append((i, j, winner))
    return out


def _bt_record(rank_lists: list[list[int]]) -> tuple[list[int], float | None]:
    size = len(rank_lists[0])
    comparisons = [c for ranks in rank_lists for c in _pairwise(ranks)]
    scores = bradley_terry(comparisons).reindex(range(size)).fillna(0.0).tolist()
    ranks = dense_ranks(scores)
    order = sorted(range(size), key=lambda i: -scores[i])
    best, second = scores[order[0]], scores[order[1]]
    confidence = best / (best + second) if best + second > 0 else None
    return ranks, confidence


def _rank_lists(question: dict[str, Any], group: pd.DataFrame) -> list[list[int]]:
    lists = [check_ranks(question, rid, ann, v) for rid, ann, v in group.itertuples(index=False)]
    if len({len(r) for r in lists}) != 1:
        raise QCError(
            f"question {question_name(question)!r}, record {group['record_id'].iloc[0]!r}: "
            f"answers rank different numbers of responses ({sorted({len(r) for r in lists})})"
        )
    return lists


def _aggregate_ranking(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    rows: list[tuple[str, Any, float | None]] = []
    for rid, group in df.groupby("record_id", sort=False):
        lists = _rank_lists(question, group)
        if method == "majority":
            top, count = _mode([tuple(r) for r in lists])
            rows.append((str(rid), list(top), count / len(lists)))
        else:
            ranks, conf = _bt_record(lists)
            rows.append((str(rid), ranks, conf))
    return _result(rows, method)


def _mode(values: Sequence[Hashable]) -> tuple[Any, int]:
    """The most frequent value; ties go to the one seen first."""
    counts = Counter(values)
    top = max(counts.values())
    first = next(v for v in values if counts[v] == top)
    return first, top


def _preference_value(choice: str, group: pd.DataFrame) -> dict[str, Any]:
    """The aggregated choice with the median strength and the first reason of the
    annotators who made that choice."""
    agreeing = [v for v in group["value"] if v.get("choice") == choice]
    strengths = sorted(int(v["strength"]) for v in agreeing if v.get("strength") is not None)
    strength = strengths[len(strengths) // 2] if strengths and choice != "tie" else None
    reason = next((str(v["reason"]) for v in agreeing if v.get("reason")), None)
    return {"choice": choice, "strength": strength, "reason": reason}


def _aggregate_preference(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    rows: list[tuple[str, Any, float | None]] = []
    for rid, group in df.groupby("record_id", sort=False):
        choices = [
            preference_choice(question, r, a, v) for r, a, v in group.itertuples(index=False)
        ]
        if method == "majority":
            choice, count = _mode(choices)
            conf: float | None = count / len(choices)
        else:
            as_ranks = [{"a": [1, 2], "b": [2, 1], "tie": [1, 1]}[c] for c in choices]
            ranks, conf = _bt_record(as_ranks)
            choice = "tie" if ranks[0] == ranks[1] else ("a" if ranks[0] < ranks[1] else "b")
            if choice == "tie":
                conf = None if conf is None else 1.0 - abs(conf - 0.5) * 2
        rows.append((str(rid), _preference_value(choice, group), conf))
    return _result(rows, method)


def global_bradley_terry(
    question: dict[str, Any], answers: pd.DataFrame, items: dict[str, list[str]]
) -> pd.Series:
    """One Bradley-Terry rating across the whole project: ``items`` names what sits at
    each response position of each record (e.g. the model that wrote it), and every
    answer's comparisons count towards those names. Scores sum to 1, best first."""
    kind = question_kind(question)
    if kind not in ("ranking", "preference"):
        raise QCError(f"question {question_name(question)!r}: global ratings need rankings")
    df = check_answers(question, answers)
    comparisons: list[tuple[Hashable, Hashable, Hashable | None]] = []
    for rid, ann, value in df.itertuples(index=False):
        if rid not in items:
            raise QCError(f"record {rid!r} has no entry in items (what its responses are)")
        if kind == "ranking":
            ranks = check_ranks(question, rid, ann, value)
        else:
            ranks = {"a": [1, 2], "b": [2, 1], "tie": [1, 1]}[
                preference_choice(question, rid, ann, value)
            ]
        names = items[rid]
        if len(names) != len(ranks):
            raise QCError(f"record {rid!r}: {len(names)} named responses but {len(ranks)} ranks")
        for i, j, w in _pairwise(ranks):
            if names[i] != names[j]:
                comparisons.append((names[i], names[j], None if w is None else names[w]))
    return bradley_terry(comparisons).sort_values(ascending=False)


# -- spans and text -------------------------------------------------------------------


def _aggregate_spans(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    rows: list[tuple[str, Any, float | None]] = []
    for rid, group in df.groupby("record_id", sort=False):
        answers = [check_spans(question, r, a, v) for r, a, v in group.itertuples(index=False)]
        votes: dict[int, Counter[str]] = {}
        chars: dict[int, str] = {}
        for spans in answers:
            for span in spans:
                text = span.get("text")
                for pos in range(span["start"], span["end"]):
                    votes.setdefault(pos, Counter())[span["label"]] += 1
                    if isinstance(text, str) and len(text) == span["end"] - span["start"]:
                        chars.setdefault(pos, text[pos - span["start"]])
        need = len(answers) / 2
        won = {
            pos: label
            for pos, counter in votes.items()
            for label, n in [counter.most_common(1)[0]]
            if n > need
        }
        spans_out: list[dict[str, Any]] = []
        for pos in sorted(won):
            last = spans_out[-1] if spans_out else None
            if last and last["end"] == pos and last["label"] == won[pos]:
                last["end"] = pos + 1
            else:
                spans_out.append({"start": pos, "end": pos + 1, "label": won[pos]})
        for span in spans_out:
            text = [chars.get(p) for p in range(span["start"], span["end"])]
            span["text"] = "".join(c for c in text if c is not None) if None not in text else None
        result = canonical(question, spans_out)
        same = sum(canonical(question, spans) == result for spans in answers)
        rows.append((str(rid), spans_out, same / len(answers)))
    return _result(rows, method)


def token_f1(a: str, b: str) -> float:
    """Bag-of-words F1 between two texts (lower-cased, split on whitespace)."""
    ta, tb = Counter(normalize_text(a).split()), Counter(normalize_text(b).split())
    if not ta and not tb:
        return 1.0
    common = sum((ta & tb).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(tb.values()), common / sum(ta.values())
    return 2 * precision * recall / (precision + recall)


def medoid(texts: list[str]) -> tuple[int, float]:
    """Index of the text with the highest mean token F1 to the others, and that mean
    (1.0 for a single text). Ties go to the first."""
    if len(texts) == 1:
        return 0, 1.0
    sims = np.eye(len(texts))
    for i, j in itertools.combinations(range(len(texts)), 2):
        sims[i, j] = sims[j, i] = token_f1(texts[i], texts[j])
    means = (sims.sum(axis=1) - 1.0) / (len(texts) - 1)
    best = int(means.argmax())
    return best, float(means[best])


def _aggregate_text(question: dict[str, Any], df: pd.DataFrame, method: str) -> pd.DataFrame:
    rows: list[tuple[str, Any, float | None]] = []
    for rid, group in df.groupby("record_id", sort=False):
        texts = [str(v) for v in group["value"]]
        if method == "majority":
            top, count = _mode([normalize_text(t) for t in texts])
            original = next(t for t in texts if normalize_text(t) == top)
            rows.append((str(rid), original, count / len(texts)))
        else:
            best, score = medoid(texts)
            rows.append((str(rid), texts[best], score))
    return _result(rows, method)


_AGGREGATORS: dict[str, Callable[[dict[str, Any], pd.DataFrame, str], pd.DataFrame]] = {
    "label": _aggregate_label,
    "multi_label": _aggregate_multi_label,
    "rating": _aggregate_rating,
    "ranking": _aggregate_ranking,
    "preference": _aggregate_preference,
    "spans": _aggregate_spans,
    "text": _aggregate_text,
}


def aggregate(
    question: dict[str, Any], answers: pd.DataFrame, method: str = "auto"
) -> pd.DataFrame:
    """One row per answered record: record_id, value (in the question's answer form),
    confidence (float or None) and the method used."""
    kind = question_kind(question)
    chosen = resolve_method(question, method)
    df = check_answers(question, answers)
    if df.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return _AGGREGATORS[kind](question, df, chosen)
