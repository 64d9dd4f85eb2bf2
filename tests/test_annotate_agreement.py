"""Agreement coefficients against published worked examples, hand computations and
independent implementations (scikit-learn's Cohen's kappa, NLTK's alpha)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from gristmill.annotate.agreement import (
    agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    suggestion_agreement,
)
from gristmill.annotate.qc_values import QCError

NAN = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: four
# observers, twelve units, missing values. Published: nominal .743, ordinal .815,
# interval .849, ratio .797.
K2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    "C": [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
}
# Wikipedia's "Krippendorff's alpha" computational example: three coders, fifteen
# units. Published: nominal 0.691, interval 0.811.
WIKI = {
    "c1": [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    "c2": [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    "c3": [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
}


def units(matrix: dict[str, list[int | None]]) -> pd.DataFrame:
    rows = [
        (u, coder, v) for coder, vals in matrix.items() for u, v in enumerate(vals) if v is not None
    ]
    return pd.DataFrame(rows, columns=["unit", "annotator", "value"])


def answers(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "annotator", "value"])


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_matches_krippendorff_2011(level: str, published: float) -> None:
    assert round(krippendorff_alpha(units(K2011), level) or 0, 3) == published


def test_alpha_matches_the_wikipedia_example() -> None:
    assert round(krippendorff_alpha(units(WIKI), "nominal") or 0, 6) == 0.691358
    assert round(krippendorff_alpha(units(WIKI), "interval") or 0, 6) == 0.810845


def test_label_question_reports_alpha_kappas_and_why_fleiss_is_missing() -> None:
    rows = [(str(u), c, str(v)) for u, c, v in units(K2011).itertuples(index=False)]
    result = agreement({"name": "q", "kind": "label", "labels": list("12345")}, answers(rows))
    assert result.level == "nominal"
    assert round(result.krippendorff_alpha or 0, 3) == 0.743
    assert result.n_annotators == 4
    assert result.n_items == 11  # unit 12 has a single value: nothing to agree on
    assert result.fleiss_kappa is None
    assert result.note is not None and "unequal numbers of ratings" in result.note
    assert set(result.cohen_kappa) == {
        ("A", "B"),
        ("A", "C"),
        ("A", "D"),
        ("B", "C"),
        ("B", "D"),
        ("C", "D"),
    }


def test_two_coder_example_by_hand() -> None:
    # A: a a b b, B: a b b b.  Coincidences o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5.
    # alpha = 1 - (n-1) * (o_ab+o_ba) / (n_a n_b + n_b n_a) = 1 - 7*2/30.
    # Cohen: p_o = 3/4, p_e = 2/4*1/4 + 2/4*3/4 = 1/2, kappa = 1/2.
    # Fleiss: mean P_i = 3/4, P_e = (3/8)^2 + (5/8)^2 = 34/64.
    rows = [
        ("1", "A", "a"),
        ("1", "B", "a"),
        ("2", "A", "a"),
        ("2", "B", "b"),
        ("3", "A", "b"),
        ("3", "B", "b"),
        ("4", "A", "b"),
        ("4", "B", "b"),
    ]
    result = agreement({"name": "q", "kind": "label", "labels": ["a", "b"]}, answers(rows))
    assert result.krippendorff_alpha == pytest.approx(1 - 14 / 30)
    assert result.cohen_kappa == {("A", "B"): pytest.approx(0.5)}
    assert result.fleiss_kappa == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64))


def test_fleiss_kappa_matches_the_wikipedia_worked_example() -> None:
    # Ten subjects, fourteen raters, five categories: kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    rows = []
    for subject, counts in enumerate(table):
        rater = 0
        for category, count in enumerate(counts):
            for _ in range(count):
                rows.append((subject, f"r{rater}", category))
                rater += 1
    kappa, note = fleiss_kappa(pd.DataFrame(rows, columns=["unit", "annotator", "value"]))
    assert note is None
    assert round(kappa or 0, 3) == 0.210


def test_cohen_kappa_agrees_with_scikit_learn() -> None:
    rng = random.Random(7)
    a = [rng.randint(1, 5) for _ in range(200)]
    b = [x if rng.random() < 0.6 else rng.randint(1, 5) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # every value 1..5 occurs, so distances between values equal distances of indices
    assert cohen_kappa(a, b, "ordinal") == pytest.approx(
        cohen_kappa_score(a, b, weights="quadratic")
    )


def test_alpha_agrees_with_nltk_on_real_crowd_labels(samples: Path) -> None:
    from nltk.metrics.agreement import AnnotationTask

    raw = pd.read_csv(samples / "truth_infer_crowd" / "duck" / "answer.csv").head(600)
    frame = raw.rename(columns={"question": "unit", "worker": "annotator", "answer": "value"})
    ours = krippendorff_alpha(frame[["unit", "annotator", "value"]], "nominal")
    task = AnnotationTask(
        data=[(str(w), str(q), str(a)) for q, w, a in raw.itertuples(index=False)]
    )
    assert ours == pytest.approx(task.alpha(), abs=1e-9)


def test_perfect_and_undefined_agreement() -> None:
    same = answers([(r, a, "x") for r in "123" for a in "AB"])
    q = {"name": "q", "kind": "label", "labels": ["x", "y"]}
    result = agreement(q, same)
    assert result.krippendorff_alpha is None  # no variation at all
    assert result.note is not None
    varied = answers([(r, a, v) for r, v in zip("123", "xyx", strict=True) for a in "AB"])
    assert agreement(q, varied).krippendorff_alpha == pytest.approx(1.0)
    assert agreement(q, varied).fleiss_kappa == pytest.approx(1.0)


def test_multi_label_is_one_binary_task_per_label() -> None:
    q = {"name": "topics", "kind": "multi_label", "labels": ["sport", "news", "art"]}
    rows = [
        ("1", "A", ["sport"]),
        ("1", "B", ["sport", "news"]),
        ("2", "A", []),
        ("2", "B", []),
        ("3", "A", ["art"]),
        ("3", "B", ["art"]),
    ]
    result = agreement(q, answers(rows))
    assert set(result.dimensions) == {"sport", "news", "art"}
    assert result.dimensions["sport"].krippendorff_alpha == pytest.approx(1.0)
    assert result.dimensions["art"].krippendorff_alpha == pytest.approx(1.0)
    # news: A says no everywhere, B says yes once: 1 - (n-1)*2/(2*n_yes*n_no), n=6
    assert result.dimensions["news"].krippendorff_alpha == pytest.approx(1 - 5 * 2 / (2 * 1 * 5))
    # pooled over the nine (record, label) units: one disagreement among 18 values
    assert result.krippendorff_alpha == pytest.approx(1 - 17 * 2 / (2 * 5 * 13))


def test_rating_per_dimension_ordinal_and_interval() -> None:
    q = {
        "name": "quality",
        "kind": "rating",
        "target": "each_response",
        "dimensions": [{"name": "helpful", "min": 1, "max": 5}, {"name": "safe"}],
    }
    rows = [
        ("1", "A", [{"helpful": 5, "safe": 7}, {"helpful": 1, "safe": 7}]),
        ("1", "B", [{"helpful": 4, "safe": 7}, {"helpful": 2, "safe": 6}]),
        ("2", "A", [{"helpful": 3, "safe": 1}, {"helpful": 3, "safe": 2}]),
        ("2", "B", [{"helpful": 3, "safe": 1}, {"helpful": 2, "safe": 2}]),
    ]
    result = agreement(q, answers(rows))
    assert result.level == "ordinal"
    helpful = result.dimensions["helpful"]
    frame = pd.DataFrame(
        [
            (("1", 0), "A", 5),
            (("1", 0), "B", 4),
            (("1", 1), "A", 1),
            (("1", 1), "B", 2),
            (("2", 0), "A", 3),
            (("2", 0), "B", 3),
            (("2", 1), "A", 3),
            (("2", 1), "B", 2),
        ],
        columns=["unit", "annotator", "value"],
    )
    assert helpful.krippendorff_alpha == pytest.approx(krippendorff_alpha(frame, "ordinal"))
    assert helpful.details["interval_alpha"] == pytest.approx(krippendorff_alpha(frame, "interval"))
    assert result.krippendorff_alpha == pytest.approx(
        (helpful.krippendorff_alpha + result.dimensions["safe"].krippendorff_alpha) / 2
    )
    assert helpful.krippendorff_alpha is not None and helpful.krippendorff_alpha > 0.5


def test_ranking_and_preference_levels() -> None:
    ranking = agreement(
        {"name": "rank", "kind": "ranking"},
        answers(
            [("1", "A", [1, 2, 3]), ("1", "B", [1, 2, 3]), ("2", "A", [2, 1]), ("2", "B", [2, 1])]
        ),
    )
    assert ranking.level == "ordinal" and ranking.krippendorff_alpha == pytest.approx(1.0)
    assert ranking.n_items == 2
    pref = agreement(
        {"name": "pref", "kind": "preference"},
        answers(
            [
                ("1", "A", {"choice": "a", "strength": 3}),
                ("1", "B", {"choice": "a", "strength": 1}),
                ("2", "A", {"choice": "b", "strength": 2}),
                ("2", "B", {"choice": "tie"}),
            ]
        ),
    )
    # choices (a,a), (b,tie): o_aa=2, o_b,tie=o_tie,b=1; n_a=2, n_b=1, n_tie=1, n=4
    expected = 1 - 3 * 2 / (2 * (2 * 1 + 2 * 1 + 1 * 1))
    assert pref.krippendorff_alpha == pytest.approx(expected)
    assert pref.details["signed_strength_alpha"] is not None


def test_spans_character_alpha_and_span_f1() -> None:
    q = {"name": "ner", "kind": "spans", "labels": ["PER", "LOC"]}
    rows = [
        ("1", "A", [{"start": 0, "end": 5, "label": "PER"}]),
        (
            "1",
            "B",
            [{"start": 0, "end": 5, "label": "PER"}, {"start": 9, "end": 11, "label": "LOC"}],
        ),
    ]
    result = agreement(q, answers(rows))
    # units: characters 0-4 (both PER) and 9-10 (B LOC, A none): 7 units, 14 values.
    # o_PER,PER = 10, o_LOC,none = o_none,LOC = 2; n_PER=10, n_LOC=2, n_none=2
    expected = 1 - 13 * 4 / (2 * (10 * 2 + 10 * 2 + 2 * 2))
    assert result.krippendorff_alpha == pytest.approx(expected)
    assert result.details["span_f1"] == pytest.approx(2 * 1 / (1 + 2))


def test_text_agreement_ignores_case_and_spacing() -> None:
    q = {"name": "fix", "kind": "text", "mode": "correct"}
    rows = [("1", "A", "Hello  world"), ("1", "B", "hello world"), ("2", "A", "x"), ("2", "B", "y")]
    result = agreement(q, answers(rows))
    assert result.krippendorff_alpha == pytest.approx(1 - 3 * 2 / (2 * (2 * 1 + 2 * 1 + 1 * 1)))


def test_bad_answers_name_the_record_and_annotator() -> None:
    q = {"name": "q", "kind": "label", "labels": ["a", "b"]}
    with pytest.raises(QCError, match=r"record '2', annotator 'B'.*'c' is not one of"):
        agreement(q, answers([("1", "A", "a"), ("2", "B", "c")]))
    with pytest.raises(QCError, match="more than once"):
        agreement(q, answers([("1", "A", "a"), ("1", "A", "b")]))
    with pytest.raises(QCError, match="missing annotator"):
        agreement(q, pd.DataFrame({"record_id": ["1"], "value": ["a"]}))
    with pytest.raises(QCError, match="kind must be one of"):
        agreement({"name": "q", "kind": "boxes"}, answers([]))


def test_unanswered_values_are_not_counted() -> None:
    q = {"name": "q", "kind": "label", "labels": ["a", "b"]}
    rows = [("1", "A", "a"), ("1", "B", None), ("2", "A", "b"), ("2", "B", "b")]
    assert agreement(q, answers(rows)).n_items == 1


def test_suggestion_agreement_rate_and_kappa() -> None:
    q = {"name": "q", "kind": "label", "labels": ["a", "b"]}
    rows = [("1", "A", "a"), ("1", "B", "a"), ("2", "A", "b"), ("2", "B", "a"), ("3", "A", "b")]
    suggestions = pd.DataFrame({"record_id": ["1", "2", "4"], "value": ["a", "b", "a"]})
    out = suggestion_agreement(q, answers(rows), suggestions)
    assert out["n"] == 4  # record 3 had no suggestion, record 4 no answer
    assert out["rate"] == pytest.approx(3 / 4)
    # pairs (s, a): (a,a) (a,a) (b,b) (b,a): p_o=3/4, p_e = 2/4*3/4 + 2/4*1/4 = 1/2
    assert out["kappa"] == pytest.approx(0.5)
    rating = {"name": "r", "kind": "rating", "dimensions": [{"name": "d"}]}
    out = suggestion_agreement(
        rating,
        answers([("1", "A", {"d": 3}), ("1", "B", {"d": 4})]),
        pd.DataFrame({"record_id": ["1"], "value": [{"d": 3}]}),
    )
    assert out == {"rate": 0.5, "n": 2, "kappa": None}
    assert math.isfinite(out["rate"])
