"""Judges, feedback → training data, human verification and agreement, against a real
HTTP server on loopback that answers with fixed bodies (fault injection: a judge that
writes prose, numbers out of range, a fenced block, a position-biased verdict), so the
strict parsing, the repair retry, the failure bookkeeping and the export of margins and
KTO labels are checked exactly. The same code against a real model is in
``test_synth_server.py``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import Result

from gristmill.records.arrow import to_row
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Kind,
    Message,
    Preference,
    Rating,
)
from gristmill.store import VersionWriter, Workspace
from gristmill.synth import (
    JudgeConfig,
    RunOptions,
    SynthError,
    agreement,
    categorize,
    coverage,
    judge,
    read_failures,
    verify_sample,
)
from gristmill.synth.output import FAILURES_ATTRIBUTE

RATING = {
    "GOOD": {"helpfulness": 4, "correctness": 3, "rationale": "clear and right"},
    "OK": {"helpfulness": 2, "correctness": 2, "rationale": "fine"},
    "BAD": {"helpfulness": 0, "correctness": 0, "rationale": "wrong"},
}


def _answer(messages: list[dict[str, Any]]) -> str:
    """What the scripted judge says to a conversation."""
    last = messages[-1]["content"]
    if last.startswith("Your previous answer could not be read"):
        previous = messages[0]["content"]
        if "[Response]\nPROSE" in previous:
            return json.dumps({"helpfulness": 3, "correctness": 3, "rationale": "repaired"})
        return '{"helpfulness": 9, "correctness": 9, "rationale": "still out of range"}'
    if "[Response A]" in last:
        a = last.split("[Response A]\n", 1)[1].split("\n\n[Response B]", 1)[0]
        b = last.split("[Response B]\n", 1)[1]
        if a.startswith("GOOD") != b.startswith("GOOD"):
            winner = "A" if a.startswith("GOOD") else "B"
        else:
            winner = "A"  # position bias: always the first
        return json.dumps({"winner": winner, "rationale": "because"})
    if "[Response]\n" in last:
        resp = last.split("[Response]\n", 1)[1]
        for key, value in RATING.items():
            if resp.startswith(key):
                return json.dumps(value)
        if resp.startswith("PROSE"):
            return "This answer is quite helpful; I would give it a 3."
        if resp.startswith("RANGE"):
            return '{"helpfulness": 9, "correctness": 1, "rationale": "too high"}'
        if resp.startswith("FENCE"):
            return '```json\n{"helpfulness": 1, "correctness": 1, "rationale": "thin"}\n```'
        return "?"
    if last.startswith("Classify the task"):
        task = last.split("Task: ", 1)[1].split("\n", 1)[0].lower()
        if "summar" in task:
            return "summarization"
        if "poem" in task:
            return "Generation."
        if "list" in task:
            return "brainstorming"
        return "I think this is an open question, maybe."
    return "?"


def _continue(prompt: str) -> tuple[str, str]:
    """A self-instruct continuation: two new tasks, an unsuitable one, a copy of the
    first example, and a last task cut by max_tokens."""
    first = prompt.split("Task 1: ", 1)[1].split("\n", 1)[0]
    text = (
        " Name three rivers in Asia and their lengths.\n"
        "Task 8: Describe the image below in two sentences.\n"
        f"Task 9: {first}\n"
        "Task 10: Give a synonym for the word happy.\n"
        "Task 11: Explain the rules of chess in det"
    )
    return text, "length"


class ScriptedJudge:
    """An OpenAI-compatible server on loopback with scripted answers."""

    def __init__(self) -> None:
        self.requests = 0
        self.prompts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send({"data": [{"id": "judge"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests += 1
                if self.path.endswith("/completions") and "prompt" in body:
                    outer.prompts.append(body["prompt"])
                    text, reason = _continue(body["prompt"])
                    self._send(
                        {
                            "choices": [{"text": text, "finish_reason": reason}],
                            "usage": {"prompt_tokens": 300, "completion_tokens": 48},
                        }
                    )
                    return
                if "[Response]\nREFUSED" in body["messages"][-1]["content"]:
                    data = b'{"error": {"message": "content policy"}}'
                    self.send_response(400)  # a client error: not retried
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                text = _answer(body["messages"])
                self._send(
                    {
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
                    }
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        return f"openai:http://127.0.0.1:{self.server.server_port}/v1/judge?concurrency=4"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedJudge]:
    server = ScriptedJudge()
    yield server
    server.close()


def _pref(rid: str, *responses: str) -> Preference:
    return Preference(
        id=rid,
        origin="model:teacher",
        prompt=[Message(role="user", content=f"Question {rid}?")],
        candidates=[
            Candidate(messages=[Message(role="assistant", content=r)], origin="model:teacher")
            for r in responses
        ],
    )


@pytest.fixture
def prefs(workspace: Workspace) -> str:
    records = [
        _pref("r1", "GOOD answer one", "BAD answer one"),
        _pref("r2", "OK answer x", "OK answer y"),
        _pref("r3", "PROSE answer", "RANGE answer"),
        _pref("r4", "FENCE answer", "GOOD answer two"),
    ]
    with VersionWriter(workspace, "answers", Kind.PREFERENCE, operation="test") as w:
        w.write_rows([to_row(r) for r in records])
    return "answers@1"


def _options(server: ScriptedJudge) -> RunOptions:
    return RunOptions(model=server.spec, progress=False, price_in=1.0, price_out=2.0)


CONFIG = JudgeConfig(dimensions=("helpfulness", "correctness"))


def test_ratings_parsed_strictly_failures_kept_and_counted(
    workspace: Workspace, prefs: str, scripted: ScriptedJudge
) -> None:
    before = scripted.requests
    result = judge(workspace, prefs, CONFIG, _options(scripted))
    out = {r.id: r for r in result.version.iter_records()}
    assert set(out) == {"r1", "r2", "r3", "r4"}  # nothing dropped, failed or not
    assert isinstance(out["r1"], Preference)

    def scores(rid: str) -> list[dict[str, float]]:
        rec = out[rid]
        assert isinstance(rec, Preference)
        return [{x.dimension: x.value for x in c.ratings} for c in rec.candidates]

    assert scores("r1") == [
        {"helpfulness": 4.0, "correctness": 3.0},
        {"helpfulness": 0.0, "correctness": 0.0},
    ]
    assert scores("r3") == [{"helpfulness": 3.0, "correctness": 3.0}, {}]  # repaired, failed
    assert scores("r4")[0] == {"helpfulness": 1.0, "correctness": 1.0}  # fenced JSON is fine
    r1 = out["r1"]
    assert isinstance(r1, Preference)
    assert {x.rater for c in r1.candidates for x in c.ratings} == {"model:openai:judge"}
    assert [(s.dimension, s.min, s.max) for s in r1.scales] == [
        ("helpfulness", 0, 4),
        ("correctness", 0, 4),
    ]
    assert r1.meta["judge"]["rationales"] == ["clear and right", "wrong"]

    # one failure: RANGE, out of range twice; kept with both raw answers
    failures = result.failures
    assert len(failures) == 1
    f = failures[0]
    assert (f.id, f.candidate, f.reason, f.attempts) == ("r3", 1, "unparseable", 2)
    assert '"helpfulness": 9, "correctness": 1' in f.raw and "still out of range" in f.raw
    assert "helpfulness" in f.detail and "less than or equal to 4" in f.detail
    card = result.version.manifest.stats["run_card"]
    assert card["failures"] == {"total": 1, "by_reason": {"unparseable": 1}}
    assert card["counts"]["judgements"] == 8
    assert card["counts"]["parsed_first_try"] == 6
    assert card["counts"]["repairs_asked"] == 2 and card["counts"]["repaired"] == 1
    assert card["counts"]["candidates_unrated"] == 1
    assert card["calls"]["model_calls"] == 10 == scripted.requests - before
    assert card["cost_usd"] == pytest.approx((10 * 100 * 1.0 + 10 * 20 * 2.0) / 1e6)
    # the same rows in the attribute and the quarantine file
    assert read_failures(result.version)[0]["raw"] == f.raw
    assert FAILURES_ATTRIBUTE in result.version.attribute_names()
    assert result.failures_file is not None
    lines = result.failures_file.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r3"]

    # a rerun is answered by the cache: no request
    before = scripted.requests
    again = judge(workspace, prefs, CONFIG, _options(scripted), output="again")
    assert scripted.requests == before
    assert again.card["calls"]["model_calls"] == 0
    assert again.card["cost_usd"] == 0.0
    assert again.card["failures"]["total"] == 1


def test_without_repair_prose_is_a_failure(
    workspace: Workspace, prefs: str, scripted: ScriptedJudge
) -> None:
    config = JudgeConfig(dimensions=("helpfulness", "correctness"), repair=False)
    result = judge(workspace, prefs, config, _options(scripted))
    reasons = sorted((f.id, f.candidate, f.attempts) for f in result.failures)
    assert reasons == [("r3", 0, 1), ("r3", 1, 1)]
    prose = next(f for f in result.failures if f.candidate == 0)
    assert prose.raw == "This answer is quite helpful; I would give it a 3."
    assert "not a JSON object" in prose.detail


def test_ratings_to_dpo_pairs_and_kto_labels(
    workspace: Workspace,
    prefs: str,
    scripted: ScriptedJudge,
    run_cli: Callable[..., Result],
    tmp_path: Path,
) -> None:
    result = judge(workspace, prefs, CONFIG, _options(scripted))
    ref = result.version.ref
    dpo = tmp_path / "dpo.jsonl"
    res = run_cli(
        "export", ref, "--format", "trl-preference", "--out", str(dpo), "--pairs", "ratings"
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in dpo.read_text().splitlines()]
    by_chosen = {r["chosen"][0]["content"]: r for r in rows}
    assert set(by_chosen) == {"GOOD answer one", "GOOD answer two"}  # r2 tie, r3 one rated
    assert by_chosen["GOOD answer one"]["margin"] == pytest.approx(3.5)
    assert by_chosen["GOOD answer two"]["rejected"][0]["content"] == "FENCE answer"
    assert by_chosen["GOOD answer two"]["margin"] == pytest.approx(2.5)
    assert "tie" in res.output and "fewer than two rated" in res.output

    kto = tmp_path / "kto.jsonl"
    res = run_cli(
        "export", ref, "--format", "trl-unpaired", "--out", str(kto), "--label-threshold", "2"
    )
    assert res.exit_code == 0, res.output
    labels = {
        json.loads(x)["completion"][0]["content"]: json.loads(x)["label"]
        for x in kto.read_text().splitlines()
    }
    assert labels == {
        "GOOD answer one": True,
        "BAD answer one": False,
        "OK answer x": True,
        "OK answer y": True,
        "PROSE answer": True,
        "FENCE answer": False,
        "GOOD answer two": True,
    }  # RANGE answer: unrated, skipped and counted by the exporter


def test_pairwise_both_orders_cancel_position_bias(
    workspace: Workspace, prefs: str, scripted: ScriptedJudge
) -> None:
    result = judge(workspace, prefs, JudgeConfig(pairwise=True), _options(scripted))
    out = {r.id: r for r in result.version.iter_records()}
    r1, r2 = out["r1"], out["r2"]
    assert isinstance(r1, Preference) and isinstance(r2, Preference)
    assert [c.rank for c in r1.candidates] == [1, 2]
    pair = r1.meta["judge"]["pairs"][0]
    assert pair["orders"] == ["A", "B"] and pair["result"] == 0
    # the judge always said "A": the two orders disagree, so it is a tie, not a win
    assert r2.meta["judge"]["pairs"][0]["result"] == "inconsistent"
    assert [c.rank for c in r2.candidates] == [1, 1]
    r4 = out["r4"]
    assert isinstance(r4, Preference)
    assert [c.rank for c in r4.candidates] == [2, 1]
    card = result.card
    assert card["counts"]["comparisons"] == 8
    assert card["counts"]["pairs_won"] == 2 and card["counts"]["pairs_inconsistent"] == 2
    assert card["task"] == "judge-pairwise"


def test_conversations_are_judged_as_single_candidates(
    workspace: Workspace, scripted: ScriptedJudge
) -> None:
    convs = [
        Conversation(
            id="c1",
            messages=[
                Message(role="user", content="Hi?"),
                Message(role="assistant", content="GOOD hello"),
            ],
        ),
        Conversation(id="c2", messages=[Message(role="user", content="No answer yet")]),
    ]
    with VersionWriter(workspace, "chats", Kind.CONVERSATION, operation="test") as w:
        w.write_rows([to_row(c) for c in convs])
    result = judge(workspace, "chats", CONFIG, _options(scripted))
    (rec,) = list(result.version.iter_records())
    assert isinstance(rec, Preference) and rec.id == "c1"
    assert rec.candidates[0].ratings[0].value == 4.0
    assert [(f.id, f.reason) for f in result.failures] == [("c2", "nothing_to_judge")]


def test_verify_sample_and_human_agreement(
    workspace: Workspace, prefs: str, scripted: ScriptedJudge, run_cli: Callable[..., Result]
) -> None:
    result = judge(workspace, prefs, CONFIG, _options(scripted))
    ref = result.version.ref
    res = run_cli("synth", "verify-sample", ref, "--per-stratum", "1", "--questions-out",
                  str(workspace.root / "q.json"))  # fmt: skip
    assert res.exit_code == 0, res.output
    sample = workspace.version("answers-judged-verify")
    strata = sample.manifest.stats["strata"]
    # r1 mean helpfulness 2, r2 2, r3 3 (one rated), r4 2.5 -> 3 (round half up)
    assert strata["helpfulness=2"] == {"available": 2, "sampled": 1}
    assert strata["helpfulness=3"] == {"available": 2, "sampled": 1}
    recs = list(sample.iter_records())
    assert 2 <= len(recs) <= 4
    assert all(r.meta["verify"]["judge_run"] == ref for r in recs)
    question = json.loads((workspace.root / "q.json").read_text())[0]
    assert question["kind"] == "rating" and question["target"] == "each_response"
    assert [d["name"] for d in question["dimensions"]] == ["helpfulness", "correctness"]

    # people rate every response (what the app's write-back stores), then compare
    human_scores = {"GOOD": 4, "BAD": 1, "OK": 2, "PROSE": 1, "RANGE": 2, "FENCE": 1}
    humans = []
    for r in result.version.iter_records():
        assert isinstance(r, Preference)
        cands = []
        for c in r.candidates:
            v = float(human_scores[c.messages[0].content.split()[0]])
            extra = [
                Rating(dimension="helpfulness", value=v, rater="human:aggregate"),
                Rating(dimension="correctness", value=2.0, rater="human:aggregate"),
            ]
            cands.append(c.model_copy(update={"ratings": [*c.ratings, *extra]}))
        humans.append(r.model_copy(update={"candidates": cands}))
    with VersionWriter(workspace, "answers-judged-verify", Kind.PREFERENCE, "annotate") as w:
        w.write_rows([to_row(r) for r in humans])
    rows = {a.dimension: a for a in agreement(workspace, ref, "answers-judged-verify@2")}
    h = rows["helpfulness"]
    # judge vs human helpfulness on the 7 rated responses:
    # GOOD 4/4, BAD 0/1, OK 2/2 twice, PROSE 3/1, FENCE 1/1, GOOD 4/4
    assert h.n == 7
    assert h.exact == pytest.approx(5 / 7)
    assert h.within_one == pytest.approx(6 / 7)
    assert h.spearman is not None and h.spearman > 0.7
    assert h.weighted_kappa is not None and 0.5 < h.weighted_kappa < 1
    # humans gave one value on correctness: no better than chance, rank correlation undefined
    assert rows["correctness"].weighted_kappa == 0.0
    assert rows["correctness"].spearman is None
    # the same ratings as an annotations attribute of the run (answers as JSON)
    table = pa.table(
        {
            "id": [r.id for r in humans],
            "answers": [
                json.dumps(
                    {
                        "ratings": {
                            "value": [
                                {
                                    d.dimension: d.value
                                    for d in c.ratings
                                    if d.rater == "human:aggregate"
                                }
                                for c in r.candidates
                            ],
                            "confidence": None,
                        }
                    }
                )
                for r in humans
            ],
        }
    )
    result.version.write_attribute("annotations", table, operation="annotate")
    from_attr = {a.dimension: a for a in agreement(workspace, ref, "annotations")}
    assert from_attr["helpfulness"] == h
    res = run_cli("synth", "agreement", ref, "--human", "answers-judged-verify@2", "--json")
    assert res.exit_code == 0, res.output
    assert {d["dimension"] for d in json.loads(res.output)} == {"helpfulness", "correctness"}


def test_categorize_and_coverage(
    workspace: Workspace, scripted: ScriptedJudge, run_cli: Callable[..., Result]
) -> None:
    tasks = ["Summarize this text.", "Write a poem about rain.", "List ideas for a party.",
             "Why is the sky blue?"]  # fmt: skip
    convs = [
        Conversation(id=f"t{i}", messages=[Message(role="user", content=t)])
        for i, t in enumerate(tasks)
    ]
    with VersionWriter(workspace, "tasks", Kind.CONVERSATION, operation="test") as w:
        w.write_rows([to_row(c) for c in convs])
    result = categorize(workspace, "tasks", _options(scripted))
    cats = {r.id: r.task_category for r in result.version.iter_records()}
    assert cats == {"t0": "summarization", "t1": "generation", "t2": "brainstorming", "t3": None}
    (f,) = result.failures
    assert f.id == "t3" and f.raw.startswith("I think this is an open question")
    rows, untagged = coverage(result.version)
    assert untagged == 1
    assert {r.category: r.count for r in rows if r.count} == {
        "summarization": 1,
        "generation": 1,
        "brainstorming": 1,
    }
    res = run_cli("synth", "coverage", "tasks-tagged")
    assert res.exit_code == 0
    assert re.search(r"--category open_qa", res.output)


def test_model_errors_are_failures_and_a_dead_judge_stops_the_run(
    workspace: Workspace, scripted: ScriptedJudge
) -> None:
    records = [_pref("ok", "GOOD one", "REFUSED one")]
    with VersionWriter(workspace, "mixed", Kind.PREFERENCE, operation="test") as w:
        w.write_rows([to_row(r) for r in records])
    result = judge(workspace, "mixed", CONFIG, _options(scripted))
    (rec,) = list(result.version.iter_records())
    assert isinstance(rec, Preference)
    assert [len(c.ratings) for c in rec.candidates] == [2, 0]
    (f,) = result.failures
    assert (f.id, f.candidate, f.reason) == ("ok", 1, "model_error") and "HTTP 400" in f.detail

    # another model name: the scripted judge's cached answers do not apply
    dead = RunOptions(model=f"openai:{_dead()}/other?retries=0", progress=False)
    with pytest.raises(SynthError, match="every judge call failed"):
        judge(workspace, "mixed", CONFIG, dead)
    assert [v.number for v in workspace.versions("mixed-judged")] == [1]  # nothing written


def _dead() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_self_instruct_filters_and_counts(
    workspace: Workspace, scripted: ScriptedJudge, run_cli: Callable[..., Result]
) -> None:
    seeds = Path(__file__).resolve().parent.parent / "data/samples/alpaca_seed_tasks"
    assert run_cli("import", str(seeds / "seed_tasks.jsonl"), "--as", "seeds").exit_code == 0
    spec = scripted.spec.replace("/judge?", "/writer?")
    before = len(scripted.prompts)
    res = run_cli("synth", "self-instruct", "seeds", "--model", spec, "--target", "10",
                  "--prompts-per-round", "2", "--max-rounds", "1", "--category", "open_qa",
                  "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "kept 2 of 10 wanted" in res.output
    prompts = scripted.prompts[before:]
    assert len(prompts) == 2
    assert prompts[0].startswith("Come up with a series of open question answering tasks:")
    assert prompts[0].rstrip().endswith("Task 7:")  # 6 seeds shown, none made yet
    version = workspace.version("seeds-self-instruct")
    kept = [r.messages[0].content for r in version.iter_records()]  # type: ignore[attr-defined]
    assert kept == [
        "Name three rivers in Asia and their lengths.",
        "Give a synonym for the word happy.",
    ]
    card = version.manifest.stats["run_card"]
    # prompt 1: 2 kept, image, copy of an example; prompt 2: all four too similar
    assert card["failures"]["by_reason"] == {
        "truncated": 2,
        "unsuitable_keyword": 2,
        "too_similar": 4,
    }
    assert card["counts"]["candidates"] == 8 and card["counts"]["kept"] == 2
    assert card["params"]["category"] == "open_qa"
    failures = read_failures(version)
    copy = next(f for f in failures if f["reason"] == "too_similar" and "1.000" in f["detail"])
    assert copy["raw"] in prompts[0] or copy["raw"] in prompts[1]


def test_agreement_after_the_apps_write_back(
    workspace: Workspace, prefs: str, scripted: ScriptedJudge
) -> None:
    """The annotation app's own write-back (QC's module) on the verify sample, then
    agreement against the judge: the contract between the two, end to end."""
    writeback = pytest.importorskip("gristmill.annotate.writeback")
    import pandas as pd

    from gristmill.synth import rating_question

    result = judge(workspace, prefs, CONFIG, _options(scripted))
    sample, _ = verify_sample(workspace, result.version.ref, per_stratum=5)
    question = rating_question(result.version)
    people = {"r1": [4, 1], "r2": [2, 3], "r3": [3, 2], "r4": [1, 4]}
    frame = pd.DataFrame(
        [
            {
                "record_id": rid,
                "value": [{"helpfulness": h, "correctness": h} for h in people[rid]],
                "confidence": None,
                "method": "median",
            }
            for rid in [r.id for r in sample.iter_records()]
        ]
    )
    written = writeback.write_back(workspace, sample.ref, "verify", [question], {"ratings": frame})
    rows = {a.dimension: a for a in agreement(workspace, result.version.ref, written.ref)}
    # judge helpfulness: r1 4/0, r2 2/2, r3 3/-, r4 1/4 -> 7 pairs; people as above
    assert rows["helpfulness"].n == 7
    assert rows["helpfulness"].exact == pytest.approx(5 / 7)  # all but r1 #2 and r2 #2
    # the same answers read from the annotations attribute the write-back attached
    from_attr = {a.dimension: a for a in agreement(workspace, result.version.ref, sample.ref)}
    assert from_attr["helpfulness"] == rows["helpfulness"]


def test_generate_and_evol_commands(
    workspace: Workspace, scripted: ScriptedJudge, run_cli: Callable[..., Result]
) -> None:
    """The CLI paths: a scripted teacher that answers "?" to everything."""
    tasks = [
        Conversation(id=f"t{i}", messages=[Message(role="user", content=t)])
        for i, t in enumerate(["List three fruits.", "Explain rain."])
    ]
    with VersionWriter(workspace, "tasks", Kind.CONVERSATION, operation="test") as w:
        w.write_rows([to_row(c) for c in tasks])
    spec = scripted.spec.replace("/judge?", "/teacher?")
    res = run_cli("synth", "generate", "tasks", "--model", spec, "-n", "3", "--max-tokens", "8",
                  "--price-in", "0.5", "--price-out", "1.5", "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote tasks-gen@1 (2 preference records)" in res.output
    assert "model calls: 6 (of 6 requested; 0 from the cache)" in res.output
    assert "cost $0.0005" in res.output  # (600 x 0.5 + 120 x 1.5) / 1e6 = 0.00048
    res = run_cli("synth", "evol-instruct", "tasks", "--model", spec, "--rounds", "2", "-q")
    assert res.exit_code == 0, res.output
    # "?" as an instruction passes the rules before answering; its answer "?" is only
    # punctuation: eliminated by rule 3, twice per round (the pool keeps the originals)
    assert "wrote tasks-evol@1 (0 conversation records)" in res.output
    assert "failures: 4 (response_only_stopwords 4)" in res.output
    res = run_cli("synth", "card", "tasks-evol", "--failures", "1")
    card = json.loads(res.output.split("\n{", 1)[0])
    assert card["counts"]["survived"] == 0 and card["params"]["rounds"] == 2
    res = run_cli("synth", "card", "tasks")
    assert res.exit_code == 1 and "no run card" in res.output


def test_logprobs_verdict_on_a_server_without_logprobs_is_one_clear_line(
    scripted: ScriptedJudge, prefs: str, run_cli: Callable[..., Result]
) -> None:
    """A server that reports no log-probabilities stops ``--verdict logprobs`` with the
    backend's one-line reason, and writes nothing."""
    before = scripted.requests
    res = run_cli(
        "synth", "judge", prefs, "--verdict", "logprobs", "--model", scripted.spec, "-q",
    )  # fmt: skip
    assert res.exit_code != 0
    assert "returned no" in res.output and "logprobs" in res.output
    assert "Traceback" not in res.output
    assert scripted.requests > before  # it really asked
    listed = run_cli("ls")
    assert listed.exit_code == 0 and "answers" in listed.output
    assert "answers-judged" not in listed.output
