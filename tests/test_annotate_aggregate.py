"""Aggregation on real crowdsourced answers with gold, and on small hand-made cases
whose answer is known; gold accuracy per annotator checked by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from gristmill.annotate.aggregate import (
    aggregate,
    bradley_terry,
    dense_ranks,
    global_bradley_terry,
    medoid,
    token_f1,
)
from gristmill.annotate.gold import gold_accuracy
from gristmill.annotate.qc_values import QCError


def answers(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "annotator", "value"])


def crowd(samples: Path, name: str) -> tuple[pd.DataFrame, dict[str, str], dict]:
    folder = samples / "truth_infer_crowd" / name
    raw = pd.read_csv(folder / "answer.csv", dtype=str)
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    frame = pd.DataFrame(
        {"record_id": raw["question"], "annotator": raw["worker"], "value": raw["answer"]}
    )
    question = {"name": name, "kind": "label", "labels": sorted(set(raw["answer"]))}
    return frame, dict(zip(truth["question"], truth["truth"], strict=True)), question


def accuracy(result: pd.DataFrame, gold: dict[str, str]) -> float:
    pairs = [(gold[r], v) for r, v in zip(result["record_id"], result["value"], strict=True)]
    return sum(g == v for g, v in pairs) / len(pairs)


# -- real data ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dog", "duck", "product"])
def test_dawid_skene_beats_majority_vote_on_real_crowd_labels(samples: Path, name: str) -> None:
    """Zheng et al. (PVLDB 2017) report Dawid-Skene above majority vote on the product
    (entity resolution) set, and the dog (Zhou et al. 2012) and duck (Welinder et al.
    2010) sets are where per-worker confusion matrices pay off; here it holds by 3 to
    13 points. On face the two are within a point (0.640 vs 0.634), as in the
    literature, so no order is asserted there (bench/aggregate.py prints it)."""
    frame, gold, question = crowd(samples, name)
    mv = aggregate(question, frame, "majority")
    ds = aggregate(question, frame)  # auto = Dawid-Skene
    assert set(ds["method"]) == {"dawid_skene"}
    assert len(ds) == frame["record_id"].nunique()
    mv_acc, ds_acc = accuracy(mv, gold), accuracy(ds, gold)
    print(f"{name}: majority {mv_acc:.4f}  dawid_skene {ds_acc:.4f}")
    assert ds_acc > mv_acc + 0.02
    assert ds["confidence"].between(0, 1).all()


@pytest.mark.slow  # MACE's ten restarts take ~10 s even on ten items
def test_glad_and_mace_follow_unanimous_items(samples: Path) -> None:
    """On ten items of the duck set: where every worker agrees, GLAD and MACE must pick
    that label, and their confidences are probabilities."""
    frame, _, question = crowd(samples, "duck")
    keep = list(pd.unique(frame["record_id"]))[:10]
    frame = frame[frame["record_id"].isin(keep)]
    unanimous = frame.groupby("record_id")["value"].nunique().eq(1)
    for method in ("glad", "mace"):
        result = aggregate(question, frame, method).set_index("record_id")
        assert len(result) == 10
        for rid in unanimous[unanimous].index:
            assert result.loc[rid, "value"] == frame[frame["record_id"] == rid]["value"].iloc[0]
        assert result["confidence"].between(0, 1).all()


def test_gold_accuracy_per_annotator_matches_a_hand_count(samples: Path) -> None:
    frame, gold, question = crowd(samples, "duck")
    table = gold_accuracy(question, frame, gold).set_index("annotator")
    # count by hand straight from the CSV files for three workers
    with open(samples / "truth_infer_crowd" / "duck" / "truth.csv") as f:
        truth = {row["question"]: row["truth"] for row in csv.DictReader(f)}
    with open(samples / "truth_infer_crowd" / "duck" / "answer.csv") as f:
        rows = list(csv.DictReader(f))
    for worker in [rows[0]["worker"], rows[len(rows) // 2]["worker"], rows[-1]["worker"]]:
        mine = [r for r in rows if r["worker"] == worker and r["question"] in truth]
        right = sum(r["answer"] == truth[r["question"]] for r in mine)
        assert table.loc[worker, "n"] == len(mine)
        assert table.loc[worker, "correct"] == right
        assert table.loc[worker, "accuracy"] == pytest.approx(right / len(mine))
    assert set(table.index) == set(frame["annotator"])


def test_gold_accuracy_small_example() -> None:
    q = {"name": "q", "kind": "multi_label", "labels": ["a", "b"]}
    rows = [("g1", "A", ["a", "b"]), ("g1", "B", ["b", "a"]), ("g2", "A", []), ("x", "B", ["a"])]
    rows.append(("g2", "B", ["a"]))
    table = gold_accuracy(q, answers(rows), {"g1": ["a", "b"], "g2": []}).set_index("annotator")
    assert table.loc["A"].tolist() == [2, 2, 1.0]
    assert table.loc["B"].tolist() == [2, 1, 0.5]  # record x is not gold


def test_text_medoid_beats_a_random_worker_on_real_translations(samples: Path) -> None:
    folder = samples / "crowdwsa2019"
    raw = pd.read_csv(folder / "CrowdWSA2019_T1_label_anonymous.tsv", sep="\t", dtype=str)
    raw = raw.dropna().drop_duplicates(["worker", "sentence"])
    truth = pd.read_csv(folder / "CrowdWSA2019_T1_gt.tsv", sep="\t", dtype=str)
    gold = dict(zip(truth["sentence"], truth["trueanswer"], strict=True))
    frame = pd.DataFrame(
        {"record_id": raw["sentence"], "annotator": raw["worker"], "value": raw["workeranswer"]}
    )
    result = aggregate({"name": "t", "kind": "text"}, frame)
    assert set(result["method"]) == {"medoid"}
    medoid_f1 = sum(
        token_f1(gold[r], v) for r, v in zip(result["record_id"], result["value"], strict=True)
    ) / len(result)
    every_f1 = sum(
        token_f1(gold[r], v) for r, v in zip(frame["record_id"], frame["value"], strict=True)
    ) / len(frame)
    print(f"medoid token F1 {medoid_f1:.3f}, a random worker's {every_f1:.3f}")
    assert medoid_f1 > every_f1 + 0.05


# -- small cases with known answers -----------------------------------------------------


def test_majority_vote_values_and_confidence() -> None:
    q = {"name": "q", "kind": "label", "labels": ["pos", "neg"]}
    rows = [("1", "A", "pos"), ("1", "B", "pos"), ("1", "C", "neg"), ("2", "A", "neg")]
    result = aggregate(q, answers(rows), "majority").set_index("record_id")
    assert result.loc["1", "value"] == "pos"
    assert result.loc["1", "confidence"] == pytest.approx(2 / 3)
    assert result.loc["2", "value"] == "neg" and result.loc["2", "confidence"] == 1.0


def test_single_label_everywhere_needs_no_model() -> None:
    q = {"name": "q", "kind": "label", "labels": ["yes", "no"]}
    rows = [("1", "A", "yes"), ("2", "B", "yes")]
    for method in ("dawid_skene", "glad", "mace", "majority"):
        result = aggregate(q, answers(rows), method)
        assert result["value"].tolist() == ["yes", "yes"]


def test_multi_label_is_decided_label_by_label() -> None:
    q = {"name": "q", "kind": "multi_label", "labels": ["a", "b", "c"]}
    rows = [("1", "A", ["a", "b"]), ("1", "B", ["a"]), ("1", "C", ["a", "b"]), ("2", "A", [])]
    result = aggregate(q, answers(rows), "majority").set_index("record_id")
    assert result.loc["1", "value"] == ["a", "b"]
    assert result.loc["1", "confidence"] == pytest.approx(2 / 3)  # b: 2 of 3
    assert result.loc["2", "value"] == []


def test_ratings_median_and_mean_per_response() -> None:
    q = {
        "name": "r",
        "kind": "rating",
        "target": "each_response",
        "dimensions": [{"name": "help"}, {"name": "safe"}],
    }
    rows = [
        ("1", "A", [{"help": 1, "safe": 7}, {"help": 5, "safe": 6}]),
        ("1", "B", [{"help": 2, "safe": 7}, {"help": 6, "safe": 6}]),
        ("1", "C", [{"help": 6, "safe": 7}, {"help": 7, "safe": 1}]),
    ]
    med = aggregate(q, answers(rows)).iloc[0]
    assert med["method"] == "median" and med["confidence"] is None
    assert med["value"] == [{"help": 2.0, "safe": 7.0}, {"help": 6.0, "safe": 6.0}]
    mean = aggregate(q, answers(rows), "mean").iloc[0]
    assert mean["value"][0]["help"] == pytest.approx(3.0)
    bad = [*rows, ("1", "D", [{"help": 1}])]
    with pytest.raises(QCError, match="same length"):
        aggregate(q, answers(bad))


def test_bradley_terry_ranking_per_record() -> None:
    q = {"name": "rank", "kind": "ranking", "allow_ties": True}
    rows = [
        ("1", "A", [1, 2, 3]),
        ("1", "B", [1, 3, 2]),
        ("1", "C", [2, 1, 3]),
        ("2", "A", [2, 1]),  # one annotator: the prior keeps scores finite and ordered
        ("3", "A", [1, 2]),
        ("3", "B", [2, 1]),  # exact disagreement: a tie
        ("4", "A", [1, 1, 2]),
        ("4", "B", [1, 1, 2]),
    ]
    result = aggregate(q, answers(rows)).set_index("record_id")
    assert result.loc["1", "value"] == [1, 2, 3]
    assert result.loc["2", "value"] == [2, 1]
    assert result.loc["3", "value"] == [1, 1]
    assert result.loc["3", "confidence"] == pytest.approx(0.5)
    assert result.loc["4", "value"] == [1, 1, 2]
    assert 0.5 < result.loc["1", "confidence"] < 1
    majority = aggregate(q, answers(rows), "majority").set_index("record_id")
    assert majority.loc["4", "value"] == [1, 1, 2]
    assert majority.loc["4", "confidence"] == 1.0


def test_bradley_terry_tie_is_half_a_win() -> None:
    # a beats b twice; a and b tie once. Wins: a = 2*2 + 1 + 1 (prior) = 6 rows, b = 2.
    scores = bradley_terry([("a", "b", "a"), ("a", "b", "a"), ("a", "b", None)])
    assert scores["a"] / (scores["a"] + scores["b"]) == pytest.approx(6 / 8, abs=1e-6)
    assert dense_ranks([0.5, 0.2, 0.5, 0.1]) == [1, 2, 1, 3]


def test_preference_choice_strength_and_reason() -> None:
    q = {"name": "pref", "kind": "preference", "strengths": [1, 2, 3]}
    rows = [
        ("1", "A", {"choice": "b", "strength": 1}),
        ("1", "B", {"choice": "b", "strength": 3, "reason": "cites a source"}),
        ("1", "C", {"choice": "a", "strength": 2}),
        ("2", "A", {"choice": "tie"}),
        ("2", "B", {"choice": "a", "strength": 1}),
        ("2", "C", {"choice": "b", "strength": 1}),
    ]
    result = aggregate(q, answers(rows)).set_index("record_id")
    assert result.loc["1", "value"] == {"choice": "b", "strength": 3, "reason": "cites a source"}
    # wins: b = 2 votes x 2 + 1 (prior tie) = 5, a = 1 x 2 + 1 = 3; P(b beats a) = 5/8
    assert result.loc["1", "confidence"] == pytest.approx(5 / 8, abs=1e-6)
    assert result.loc["2", "value"]["choice"] == "tie"
    majority = aggregate(q, answers(rows), "majority").set_index("record_id")
    assert majority.loc["1", "value"]["choice"] == "b"


def test_global_bradley_terry_rates_the_models_behind_responses() -> None:
    q = {"name": "pref", "kind": "preference"}
    rows = [("1", "A", {"choice": "a"}), ("2", "A", {"choice": "b"}), ("3", "B", {"choice": "a"})]
    items = {"1": ["big", "small"], "2": ["small", "big"], "3": ["small", "tiny"]}
    scores = global_bradley_terry(q, answers(rows), items)
    assert list(scores.index) == ["big", "small", "tiny"]
    with pytest.raises(QCError, match="no entry in items"):
        global_bradley_terry(q, answers(rows), {"1": ["x", "y"]})


def test_span_majority_by_character() -> None:
    q = {"name": "ner", "kind": "spans", "labels": ["PER", "LOC"]}
    text = "Alice met Bob in Paris"
    rows = [
        (
            "1",
            "A",
            [
                {"start": 0, "end": 5, "label": "PER", "text": "Alice"},
                {"start": 17, "end": 22, "label": "LOC", "text": "Paris"},
            ],
        ),
        (
            "1",
            "B",
            [
                {"start": 0, "end": 5, "label": "PER", "text": "Alice"},
                {"start": 10, "end": 13, "label": "PER", "text": "Bob"},
            ],
        ),
        (
            "1",
            "C",
            [
                {"start": 0, "end": 3, "label": "PER", "text": "Ali"},
                {"start": 17, "end": 22, "label": "LOC", "text": "Paris"},
            ],
        ),
    ]
    value = aggregate(q, answers(rows)).iloc[0]
    assert value["value"] == [
        {"start": 0, "end": 5, "label": "PER", "text": "Alice"},
        {"start": 17, "end": 22, "label": "LOC", "text": "Paris"},
    ]
    assert value["value"][1]["text"] == text[17:22]
    assert value["confidence"] == pytest.approx(1 / 3)  # only A's answer equals it


def test_text_medoid_and_majority() -> None:
    texts = ["the cat sat", "a cat sat down", "dogs bark loudly", "The cat  sat"]
    assert medoid(texts)[0] == 0
    q = {"name": "t", "kind": "text"}
    rows = [("1", a, t) for a, t in zip("ABCD", texts, strict=True)]
    result = aggregate(q, answers(rows), "majority").iloc[0]
    assert result["value"] == "the cat sat" and result["confidence"] == 0.5


def test_unknown_method_is_refused_with_the_choices() -> None:
    q = {"name": "q", "kind": "rating", "dimensions": [{"name": "d"}]}
    with pytest.raises(QCError, match="median, mean"):
        aggregate(q, answers([("1", "A", {"d": 1})]), "dawid_skene")
    assert aggregate(q, answers([])).empty
