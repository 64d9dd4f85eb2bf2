"""Metrics, bootstrap intervals, paired comparison, classification tables and
Bradley-Terry ratings, each checked against a hand computation or the reference
implementation (sacrebleu, rouge-score, scikit-learn, crowd-kit)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gristmill.evals import metrics as M
from gristmill.evals.rank import elo, fit, rank_systems
from gristmill.evals.stats import classification, estimate, paired_difference
from gristmill.evals.tasks import MetricSpec, TaskError, load_task, parse_task, ready_tasks


def spec(**kw: object) -> MetricSpec:
    return MetricSpec(name=str(kw.pop("name", "exact_match")), **kw)  # type: ignore[arg-type]


def test_numeric_extraction_reads_the_last_number_of_a_worked_answer() -> None:
    text = "She sells 16 - 3 - 4 = 9 eggs, so she makes 9 * $2 = $18.\nThe answer is $1,018."
    assert M.extract_number(text) == "1018"
    assert M.exact_match(spec(extract="numeric"), text, ["1018"]) == 1.0
    assert M.exact_match(spec(extract="numeric"), text, ["1,018"]) == 1.0  # reference commas
    assert M.exact_match(spec(extract="numeric"), "about 18.0", ["18"]) == 1.0
    assert M.exact_match(spec(extract="numeric"), "no number here", ["18"]) == 0.0
    assert M.exact_match(spec(extract="numeric"), "18 then 19", ["18"]) == 0.0


def test_exact_match_normalisation_is_opt_in() -> None:
    assert M.exact_match(spec(), "  Paris ", ["Paris"]) == 1.0  # strip always
    assert M.exact_match(spec(), "paris", ["Paris"]) == 0.0
    assert M.exact_match(spec(normalize=["lower"]), "paris", ["Paris"]) == 1.0
    opts = ["lower", "punct", "articles", "space"]
    assert M.exact_match(spec(normalize=opts), "The  Eiffel tower!", ["eiffel tower"]) == 1.0
    assert M.exact_match(spec(extract="letter"), "(B) because", ["B"]) == 1.0
    regex = spec(extract="regex", pattern=r"ANSWER:\s*(\w+)")
    assert M.exact_match(regex, "blah ANSWER: yes", ["yes"]) == 1.0


def test_token_f1_by_hand() -> None:
    # pred {the cat sat} vs gold {the cat is here}: after removing articles
    # pred = [cat, sat], gold = [cat, is, here]; common 1 → P=1/2, R=1/3, F1=0.4
    assert M.token_f1("The cat sat.", "the cat is here") == pytest.approx(0.4)
    assert M.token_f1("", "") == 1.0
    assert M.token_f1("x", "") == 0.0


def test_corpus_bleu_and_chrf_come_from_summed_sentence_statistics() -> None:
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    hyps = ["the cat sat on the mat", "a dog ran in the park today", "hello there friend"]
    refs = ["the cat is on the mat", "the dog ran in a park", "hello there my friend"]
    for kind, ref_metric in (("bleu", BLEU()), ("chrf", CHRF())):
        stats = np.asarray([M.corpus_stats(kind, h, [r]) for h, r in zip(hyps, refs, strict=True)])
        est = estimate(stats, M.aggregate_of(kind), resamples=200)
        assert est.value == pytest.approx(ref_metric.corpus_score(hyps, [refs]).score)
        assert est.low <= est.value <= est.high


def test_rouge_matches_rouge_score() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pred, ref = "the quick brown foxes jumped", "a quick brown fox jumps over"
    assert M.rouge("rougeL", pred, [ref]) == pytest.approx(
        scorer.score(ref, pred)["rougeL"].fmeasure
    )
    assert M.rouge("rouge2", pred, ["nothing alike here", ref]) > 0


def test_perplexity_aggregates_over_tokens_not_items() -> None:
    a = M.score_perplexity([-1.0, -1.0, -1.0])
    b = M.score_perplexity([-3.0])
    stats = np.asarray([a.stats["perplexity"], b.stats["perplexity"]])
    est = estimate(stats, M.aggregate_of("perplexity"), resamples=0)
    assert est.value == pytest.approx(math.exp(6 / 4))  # not the mean of e and e^3
    assert a.values["perplexity"] == pytest.approx(math.e)


def test_multiple_choice_acc_and_length_normalised_acc() -> None:
    item = {"choices": ["a", "a much longer answer"], "answer_index": 1}
    score, pick, pick_norm = M.score_choices(
        [spec(name="acc"), spec(name="acc_norm")], [-2.0, -10.0], item
    )
    assert (pick, pick_norm) == (0, 1)  # -2/1 < -10/20
    assert score.values == {"acc": 0.0, "acc_norm": 1.0}


def test_bootstrap_interval_of_a_mean_covers_the_normal_approximation() -> None:
    rng = np.random.default_rng(3)
    values = (rng.random(400) < 0.3).astype(float)
    stats = np.stack([values, np.ones_like(values)], axis=1)
    est = estimate(stats, M.MEAN, resamples=2000, seed=1)
    p = values.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / len(values))
    assert est.value == pytest.approx(p)
    assert est.low == pytest.approx(p - half, abs=0.012)
    assert est.high == pytest.approx(p + half, abs=0.012)
    assert estimate(stats, M.MEAN, resamples=2000, seed=1) == est  # seeded


def test_paired_difference_detects_a_real_gain_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random(300) < 0.4).astype(float)
    better = np.where(rng.random(300) < 0.3, 1.0, a)  # B fixes 30 % of items
    ones = np.ones(300)
    d = paired_difference(np.stack([a, ones], 1), np.stack([better, ones], 1), M.MEAN)
    assert d.diff == pytest.approx(better.mean() - a.mean())
    assert d.low > 0 and d.p_value < 0.01
    same = paired_difference(np.stack([a, ones], 1), np.stack([a, ones], 1), M.MEAN)
    assert same.diff == 0 and same.p_value == 1.0


def test_classification_report_matches_scikit_learn() -> None:
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    gold = list("AABBBCCCCD")
    pred = list("ABBBCCCCAA")
    labels = ["A", "B", "C", "D"]
    report = classification(gold, pred, labels, resamples=300)
    assert report.matrix == confusion_matrix(gold, pred, labels=labels).tolist()
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        assert report.per_class[label]["precision"].value == pytest.approx(p[i])
        assert report.per_class[label]["recall"].value == pytest.approx(r[i])
        assert report.per_class[label]["f1"].value == pytest.approx(f[i])
        assert report.per_class[label]["support"].value == s[i]
    assert report.accuracy.value == pytest.approx(0.6)
    assert report.macro_f1.value == pytest.approx(f1_score(gold, pred, average="macro"))
    assert report.accuracy.low < 0.6 < report.accuracy.high


def test_bradley_terry_by_hand() -> None:
    # Two systems, A beats B 3 times out of 4: p_A / p_B = 3, Elo gap 400·log10(3).
    records = [[("A", "B", 1.0)]] * 3 + [[("A", "B", 0.0)]]
    ratings = {r.system: r for r in rank_systems(records, prior=0.0, resamples=0)}
    assert ratings["A"].rating - ratings["B"].rating == pytest.approx(400 * math.log10(3))
    assert (ratings["A"].wins, ratings["A"].losses) == (3, 1)
    # Ties count half: A–B 1 win + 2 ties each way is 2:1 → log-odds log 2.
    ties = [[("A", "B", 1.0)], [("A", "B", 0.5)], [("A", "B", 0.5)]]
    r2 = {r.system: r.rating for r in rank_systems(ties, prior=0.0, resamples=0)}
    assert r2["A"] - r2["B"] == pytest.approx(400 * math.log10(2))


def test_bradley_terry_agrees_with_crowd_kit_and_orders_a_ladder() -> None:
    pd = pytest.importorskip("pandas")
    BradleyTerry = pytest.importorskip("crowdkit.aggregation").BradleyTerry  # the app extra

    rng = np.random.default_rng(7)
    strength = {"good": 2.0, "fair": 1.0, "poor": 0.0}
    records = []
    rows = []
    names = list(strength)
    for _ in range(600):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + math.exp(strength[b] - strength[a]))
        win = rng.random() < p
        records.append([(str(a), str(b), 1.0 if win else 0.0)])
        rows.append({"worker": "w", "left": a, "right": b, "label": a if win else b})
    ladder = rank_systems(records, prior=0.0, resamples=200)
    assert [r.system for r in ladder] == ["good", "fair", "poor"]
    ours = {r.system: r.rating for r in ladder}
    # tol=-1: crowd-kit 1.4.2 compares p_new with itself (p_old aliases it), so any tol
    # >= 0 stops after two iterations; a negative one runs all n_iter.
    theirs = BradleyTerry(n_iter=500, tol=-1).fit(pd.DataFrame(rows)).scores_
    theirs_log = np.log(theirs / theirs.sum())
    gap = (theirs_log["good"] - theirs_log["poor"]) * 400 / math.log(10)
    assert ours["good"] - ours["poor"] == pytest.approx(gap, rel=1e-4)
    for r in ladder:
        assert r.low <= r.rating <= r.high
    # the true log-odds gap (2.0) is inside the bootstrap intervals' reach
    assert (
        ladder[0].low - ladder[-1].high < 2.0 * 400 / math.log(10) < ladder[0].high - ladder[-1].low
    )


def test_fit_is_finite_with_the_prior_when_a_system_never_loses() -> None:
    wins = np.array([[0.0, 5.0], [0.0, 0.0]])
    games = np.array([[0.0, 5.0], [5.0, 0.0]])
    ratings = elo(fit(wins, games, prior=0.1))
    assert np.all(np.isfinite(ratings)) and ratings[0] > ratings[1] + 400


def test_ready_tasks_load_and_bad_task_files_name_the_field(tmp_path: Path) -> None:
    assert {"gsm8k", "mmlu", "openbookqa", "mt_bench"} <= set(ready_tasks())
    for name in ready_tasks():
        task = load_task(name)
        assert task.data_path() is not None, f"{name}: data file missing"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: d\noutput_type: loglikelihood\nmetrics: [bleu]\n")
    with pytest.raises(TaskError, match=r"bad.yaml: metrics\[0\] \(bleu\): not a metric"):
        load_task(str(bad))
    bad.write_text("name: x\ndataset: d\noutput_type: guess\n")
    with pytest.raises(TaskError, match=r"bad\.yaml: output_type"):
        load_task(str(bad))
    with pytest.raises(TaskError, match="prompt line 1"):
        parse_task("dataset: d\nprompt: '{{ input '\n", "t.yaml")
    with pytest.raises(TaskError, match="no task 'nope'"):
        load_task("nope")


def test_rating_parser_refuses_what_it_cannot_read() -> None:
    assert M.parse_rating("Good answer. Rating: [[7]]") == 7.0
    assert M.parse_rating("rating: 4") == 4.0
    assert M.parse_rating("I liked it") is None
    assert M.parse_rating("[[42]]") is None  # out of the 1-10 scale
