"""Preference pairs and unpaired labels from Preference records (records/pairs.py)."""

from __future__ import annotations

import pytest
from test_export_fixtures import assistant, preference_records, rated, user

from gristmill.records.kinds import Candidate, Preference, Rating
from gristmill.records.pairs import (
    NO_LABEL,
    NO_LABEL_UNRATED,
    TIE,
    TOO_FEW_RANKED,
    TOO_FEW_RATED,
    Pair,
    PairOptions,
    PairStrategy,
    RejectedChoice,
    candidate_score,
    make_pair,
    make_pairs,
    too_few_on,
    unpaired_labels,
)


def _record(*candidates: Candidate, rid: str = "r") -> Preference:
    return Preference(id=rid, prompt=[user("Q?")], candidates=list(candidates))


def _pair(record: Preference, **options: object) -> Pair:
    pair = make_pair(record, PairOptions(**options))  # type: ignore[arg-type]
    assert isinstance(pair, Pair), pair
    return pair


def test_score_is_mean_over_dimensions_of_mean_per_dimension() -> None:
    candidate = rated("x", helpful=5, honest=[4, 6, 8])
    assert candidate_score(candidate) == pytest.approx((5 + 6) / 2)
    assert candidate_score(candidate, "honest") == pytest.approx(6)
    assert candidate_score(candidate, "missing") is None
    assert candidate_score(Candidate(messages=[assistant("y")])) is None


def test_ratings_pick_best_and_worst_mean_and_margin_is_the_gap() -> None:
    record = preference_records()[0]  # means 3, 5, 1.5
    pair = _pair(record)
    assert pair.strategy is PairStrategy.RATINGS
    assert (pair.chosen_index, pair.rejected_index) == (1, 2)
    assert pair.chosen.messages[0].content == "4"
    assert pair.margin == pytest.approx(5 - 1.5)


def test_one_named_dimension_decides() -> None:
    record = _record(
        rated("a", helpful=5, honest=1),
        rated("b", helpful=1, honest=5),
        rated("c", helpful=3, honest=3),
    )
    assert make_pair(record) == TIE  # every mean is 3
    pair = _pair(record, dimension="honest")
    assert (pair.chosen_index, pair.rejected_index, pair.margin) == (1, 0, 4)
    pair = _pair(record, dimension="helpful")
    assert (pair.chosen_index, pair.rejected_index, pair.margin) == (0, 1, 4)


def test_ties_are_dropped_and_counted() -> None:
    records = preference_records()
    result = make_pairs(records)
    # ratings, ranks, steps pair; tie ties; labels has no ratings
    assert len(result.pairs) == 3
    assert result.dropped == {TIE: 1, TOO_FEW_RATED: 1}


def test_tied_best_takes_the_first_and_still_pairs() -> None:
    record = _record(rated("a", q=2), rated("b", q=5), rated("c", q=5))
    pair = _pair(record)
    assert (pair.chosen_index, pair.rejected_index, pair.margin) == (1, 0, 3)


def test_too_few_rated_and_missing_dimension() -> None:
    record = _record(rated("a", q=2), Candidate(messages=[assistant("b")]))
    assert make_pair(record) == TOO_FEW_RATED
    assert make_pair(record, PairOptions(dimension="other")) == too_few_on("other")


def test_ranks_pair_best_with_worst_and_margin_is_rank_gap() -> None:
    record = preference_records()[2]  # ranks 3, 1, 2
    pair = _pair(record)
    assert pair.strategy is PairStrategy.RANKS
    assert (pair.chosen_index, pair.rejected_index, pair.margin) == (1, 0, 2)
    assert (
        make_pair(
            _record(rated("a", q=1), rated("b", q=2)), PairOptions(strategy=PairStrategy.RANKS)
        )
        == TOO_FEW_RANKED
    )


def test_ranks_win_by_default_but_a_dimension_asks_for_ratings() -> None:
    record = _record(
        Candidate(messages=[assistant("a")], rank=1, ratings=[Rating(dimension="q", value=1)]),
        Candidate(messages=[assistant("b")], rank=2, ratings=[Rating(dimension="q", value=5)]),
    )
    assert _pair(record).chosen_index == 0
    assert _pair(record, strategy=PairStrategy.RATINGS).chosen_index == 1
    assert _pair(record, dimension="q").chosen_index == 1


def test_equal_ranks_are_a_tie() -> None:
    record = _record(
        Candidate(messages=[assistant("a")], rank=1), Candidate(messages=[assistant("b")], rank=1)
    )
    assert make_pair(record) == TIE


def test_random_rejected_is_seeded_and_strictly_lower() -> None:
    # best = 5 (index 0) with a second 5 that must never be drawn as rejected
    candidates = [rated("best", q=5), rated("also best", q=5)] + [
        rated(f"low {i}", q=float(i % 4)) for i in range(12)
    ]
    records = [_record(*candidates, rid=f"r{i}") for i in range(40)]
    first = [_pair(r, rejected=RejectedChoice.RANDOM, seed=7) for r in records]
    again = [_pair(r, rejected=RejectedChoice.RANDOM, seed=7) for r in reversed(records)][::-1]
    assert [p.rejected_index for p in first] == [p.rejected_index for p in again]
    assert all(p.chosen_index == 0 for p in first)
    for pair in first:
        assert pair.rejected_index >= 2  # strictly below the chosen: never the other 5
        score = candidate_score(pair.rejected)
        assert score is not None and score < 5
        assert pair.margin == pytest.approx(5 - score)
    drawn = {p.rejected_index for p in first}
    assert len(drawn) > 3  # really random, not always the worst
    other_seed = [
        make_pair(r, PairOptions(rejected=RejectedChoice.RANDOM, seed=8)) for r in records
    ]
    assert [p.rejected_index for p in first] != [
        p.rejected_index for p in other_seed if isinstance(p, Pair)
    ]


def test_unpaired_labels_from_label_or_threshold() -> None:
    record = _record(
        Candidate(messages=[assistant("a")], label=True),
        Candidate(messages=[assistant("b")], label=False, ratings=[Rating(dimension="q", value=9)]),
        rated("c", q=4),
        rated("d", q=2),
        Candidate(messages=[assistant("e")]),
    )
    labelled, skipped = unpaired_labels(record)
    assert [(c.index, c.label) for c in labelled] == [(0, True), (1, False)]
    assert skipped == {NO_LABEL: 3}
    labelled, skipped = unpaired_labels(record, threshold=3)
    assert [(c.index, c.label) for c in labelled] == [(0, True), (1, False), (2, True), (3, False)]
    assert skipped == {NO_LABEL_UNRATED: 1}
