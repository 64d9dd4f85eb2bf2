"""The SDK end to end against a real server: a project from real HH-RLHF pairs,
suggestions, annotators' answers, answers pulled in long format, QC statistics,
adjudication, and export to a new dataset version that `gristmill export --format
trl-preference` turns into DPO pairs that follow the humans, not the source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_app_support import LiveServer, import_sample

from gristmill.client import ApiError, Client
from gristmill.records.kinds import Preference
from gristmill.store import Workspace

QUESTIONS = [
    {"name": "better", "kind": "preference", "strengths": [1, 2, 3], "title": "Which is better?"},
    {"name": "harmful", "kind": "label", "labels": ["neither", "a", "b", "both"]},
]


def test_sdk_end_to_end_to_dpo_pairs(
    workspace: Workspace, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    ref = import_sample(workspace, "hh_rlhf/harmless-base-test.jsonl.gz", "hh")
    with LiveServer(workspace) as srv:
        admin = Client(srv.url, srv.add_user("lead", "admin"))
        tokens = {n: srv.add_user(n) for n in ("ann1", "ann2", "rev")}
        project = admin.create_project(
            "hh prefs",
            QUESTIONS,
            ref,
            limit=4,
            overlap=2,
            guidelines="Prefer the **harmless** reply.",
        )
        pid = project["id"]
        assert project["dataset_ref"] == "hh@1" and project["records"] == 4
        assert "<strong>harmless</strong>" in project["guidelines_html"]
        for name in ("ann1", "ann2"):
            admin.add_member(pid, name, "annotator")
        admin.add_member(pid, "rev", "reviewer")
        assert {m["username"]: m["role"] for m in admin.members(pid)} == {
            "lead": "owner",
            "ann1": "annotator",
            "ann2": "annotator",
            "rev": "reviewer",
        }

        records = {r.id: r for r in workspace.version(ref).iter_records()}
        ids = list(records)[:4]
        # a model judge's suggestions: always the source's chosen reply (a)
        stored = admin.push_suggestions(
            pid,
            [
                {
                    "record_id": rid,
                    "question": "better",
                    "value": {"choice": "a", "strength": 1},
                    "score": 0.6,
                    "agent": "model:judge",
                }
                for rid in ids
            ],
        )
        assert stored == {"stored": 4}
        with pytest.raises(ApiError) as bad:
            admin.push_suggestions(
                pid,
                [
                    {
                        "record_id": ids[0],
                        "question": "better",
                        "value": {"choice": "c"},
                        "agent": "model:judge",
                    }
                ],
            )
        assert bad.value.status == 422 and "choice must be a, b or tie" in str(bad.value.detail)

        # ann1 prefers b everywhere; ann2 agrees except on the last record
        for name, pick in (("ann1", lambda i: "b"), ("ann2", lambda i: "b" if i < 3 else "a")):
            with Client(srv.url, tokens[name]) as c:
                while (task := c.next(pid)) is not None:
                    assert task["suggestions"][0]["agent"] == "model:judge"
                    assert len(task["record"]["responses"]) == 2
                    i = ids.index(task["record"]["id"])
                    c.answer(
                        pid,
                        task["record"]["id"],
                        {
                            "better": {"choice": pick(i), "strength": 2, "reason": "less harmful"},
                            "harmful": "neither",
                        },
                    )

        rows = admin.answers(pid)
        assert len(rows) == 16  # 4 records × 2 annotators × 2 questions
        better = [r for r in rows if r["question"] == "better"]
        assert sum(r["accepted_suggestion"] is True for r in better) == 1
        assert {r["accepted_suggestion"] for r in rows if r["question"] == "harmful"} == {None}
        frame = admin.answers_frame(pid, question="better")
        assert list(frame.columns[:4]) == ["record_id", "annotator", "question", "value"]

        reviewer = Client(srv.url, tokens["rev"])
        stats = reviewer.stats(pid)
        sugg = {s["question"]: s for s in stats["suggestion_agreement"]}
        assert sugg["better"]["n"] == 8 and sugg["better"]["rate"] == pytest.approx(1 / 8)
        assert [a["question"] for a in stats["agreement"]] == ["better", "harmful"]
        review = reviewer.review(pid, only_disagreements=True)
        assert [(i["record"]["id"], i["question"]["name"]) for i in review["items"]] == [
            (ids[3], "better")
        ]
        assert review["items"][0]["agreement"] == 0.5
        # the reviewer settles the split record in favour of b
        reviewer.resolve(pid, ids[3], "better", {"choice": "b", "strength": 3, "reason": "safer"})
        agg = reviewer.aggregate(pid)
        assert {r["record_id"]: r["value"]["choice"] for r in agg["better"]} == dict.fromkeys(
            ids, "b"
        )
        with pytest.raises(ApiError) as denied:
            reviewer.export(pid)
        assert denied.value.status == 403

        out = admin.export(pid)
        assert out["ref"] == "hh@2"

    new = workspace.version("hh@2")
    assert new.manifest.parent == "hh@1" and new.manifest.operation == "annotate"
    result = run_cli(
        "export", "hh@2", "--format", "trl-preference", "-o", str(tmp_path / "dpo.jsonl")
    )
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    by_prompt = {json.dumps(p["prompt"]): p for p in pairs}
    for rid in ids:
        rec = records[rid]
        assert isinstance(rec, Preference)
        prompt = json.dumps([{"role": m.role, "content": m.content} for m in rec.prompt])
        pair = by_prompt[prompt]
        # the humans preferred b: the source's rejected reply is now the chosen one
        assert pair["chosen"][-1]["content"] == rec.candidates[1].messages[-1].content
        assert pair["rejected"][-1]["content"] == rec.candidates[0].messages[-1].content


def test_sdk_pushes_records_directly_and_reports_errors(workspace: Workspace) -> None:
    with LiveServer(workspace) as srv:
        c = Client(srv.url, srv.add_user("lead", "admin"))
        records = [
            {"kind": "document", "id": "d1", "text": "Alice met Bob in Paris."},
            {
                "kind": "conversation",
                "id": "c1",
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                ],
            },
        ]
        p = c.create_project(
            "direct", [{"name": "ents", "kind": "spans", "labels": ["PER", "LOC"]}], records=records
        )
        assert p["records"] == 2 and p["dataset_ref"] is None
        assert c.push_records(p["id"], records=[records[0]]) == {"added": 0, "already_present": 1}
        with pytest.raises(ApiError) as bad:
            c.push_records(p["id"], records=[{"kind": "document", "id": "x"}])
        assert bad.value.status == 422 and "records[0]" in str(bad.value.detail)
        task = c.next(p["id"])
        assert task is not None and task["record"]["id"] == "d1"
        with pytest.raises(ApiError) as wrong:
            c.answer(
                p["id"], "d1", {"ents": [{"start": 0, "end": 5, "label": "PER", "text": "Alic"}]}
            )
        assert wrong.value.status == 422
        assert wrong.value.detail[0]["question"] == "ents"
        c.answer(
            p["id"],
            "d1",
            {
                "ents": [
                    {"start": 0, "end": 5, "label": "PER"},
                    {"start": 17, "end": 22, "label": "LOC"},
                ]
            },
        )
        [row] = c.answers(p["id"])
        assert [s["text"] for s in row["value"]] == ["Alice", "Paris"]
        with pytest.raises(ApiError) as no_version:
            c.export(p["id"])
        assert no_version.value.status == 422 and "dataset version" in str(no_version.value.detail)


@pytest.mark.slow
def test_model_suggestions_from_smollm2(workspace: Workspace) -> None:
    """The packaged SmolLM2 suggests a label (highest next-token log-prob) and drafts a
    text answer; annotators see both and their acceptance is recorded."""
    ref = import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    with LiveServer(workspace) as srv:
        c = Client(srv.url, srv.add_user("lead", "admin"))
        p = c.create_project(
            "model",
            [
                {"name": "sentiment", "kind": "label", "labels": ["positive", "negative"]},
                {"name": "summary", "kind": "text", "mode": "correct"},
            ],
            ref,
            limit=2,
        )
        out = c.generate_suggestions(p["id"], "smollm2", limit=2, max_tokens=12)
        assert out["stored"] == 4
        task = c.next(p["id"])
        assert task is not None
        by_q = {s["question"]: s for s in task["suggestions"]}
        assert (
            by_q["sentiment"]["agent"].startswith("model:")
            and "smollm2" in by_q["sentiment"]["agent"]
        )
        assert by_q["sentiment"]["value"] in ("positive", "negative")
        assert 0.5 <= by_q["sentiment"]["score"] <= 1.0
        assert by_q["summary"]["value"].strip() and by_q["summary"]["score"] is None
        c.answer(
            p["id"],
            task["record"]["id"],
            {"sentiment": by_q["sentiment"]["value"], "summary": "my own words"},
        )
        [lab, txt] = sorted(c.answers(p["id"]), key=lambda r: r["question"])
        assert lab["accepted_suggestion"] is True and txt["accepted_suggestion"] is False


DOC_QUESTIONS = [
    {"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]},
    {"name": "aspects", "kind": "multi_label", "labels": ["price", "battery", "sound"]},
    {"name": "mentions", "kind": "spans", "labels": ["PRODUCT"]},
    {"name": "rewrite", "kind": "text", "mode": "write"},
]
PAIR_QUESTIONS = [
    {
        "name": "quality",
        "kind": "rating",
        "target": "each_response",
        "dimensions": [
            {"name": "helpfulness", "min": 1, "max": 7},
            {"name": "harmlessness", "min": 1, "max": 7},
        ],
    },
    {"name": "order", "kind": "ranking", "allow_ties": True},
    {"name": "better", "kind": "preference", "require_reason": True},
    {"name": "fixed", "kind": "text", "mode": "correct", "required": False},
]


def _doc_answer(text: str, who: int) -> dict[str, Any]:
    word = text.split()[0]
    return {
        "sentiment": "pos" if who else "neg",
        "aspects": ["price", "sound"][: who + 1],
        "mentions": [{"start": 0, "end": len(word), "label": "PRODUCT"}],
        "rewrite": f"{text} ({who})",
    }


def _pair_answer(who: int) -> dict[str, Any]:
    return {
        "quality": [
            {"helpfulness": 3 + who, "harmlessness": 5},
            {"helpfulness": 6, "harmlessness": 2 + who},
        ],
        "order": [2, 1] if who else [1, 1],
        "better": {"choice": "b", "strength": 1 + who, "reason": "safer"},
        "fixed": "A gentler reply.",
    }


def test_quality_control_over_every_question_kind(workspace: Workspace) -> None:
    """Stats, review, aggregation and export run over answers to every question kind
    (QC's functions on what the queue stored), and the export lands in the records."""
    import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    import_sample(workspace, "hh_rlhf/harmless-base-test.jsonl.gz", "hh")
    with LiveServer(workspace) as srv:
        lead = Client(srv.url, srv.add_user("lead", "admin"))
        anns = [Client(srv.url, srv.add_user(f"ann{i}")) for i in range(2)]
        docs = lead.create_project("docs", DOC_QUESTIONS, "amazon@1", limit=3, overlap=2)["id"]
        pairs = lead.create_project("pairs", PAIR_QUESTIONS, "hh@1", limit=3, overlap=2)["id"]
        for pid in (docs, pairs):
            for i in range(2):
                lead.add_member(pid, f"ann{i}")
        for who, c in enumerate(anns):
            while (task := c.next(docs)) is not None:
                c.answer(docs, task["record"]["id"], _doc_answer(task["record"]["text"], who))
            while (task := c.next(pairs)) is not None:
                c.answer(pairs, task["record"]["id"], _pair_answer(who))
        for pid, questions in ((docs, DOC_QUESTIONS), (pairs, PAIR_QUESTIONS)):
            stats = lead.stats(pid)
            assert {a["question"] for a in stats["agreement"]} == {q["name"] for q in questions}
            assert all(a["n_items"] == 3 for a in stats["agreement"])
            agg = lead.aggregate(pid)
            assert all(len(agg[q["name"]]) == 3 for q in questions)
            review = lead.review(pid, only_disagreements=True)
            assert review["items"] and all(i["agreement"] == 0.5 for i in review["items"])
        labels = lead.aggregate(docs)["mentions"]
        assert all(r["value"][0]["label"] == "PRODUCT" for r in labels)
        assert lead.export(docs)["ref"] == "amazon@2"
        # two questions that would both set the candidates' ranks: refused, and said why
        with pytest.raises(ApiError) as both:
            lead.export(pairs)
        assert both.value.status == 422 and "order, better" in str(both.value.detail)
    done = [r for r in workspace.version("amazon@2").iter_records() if r.meta.get("labels")]
    assert len(done) == 3
    for rec in done:
        assert set(rec.meta["labels"]) == {"sentiment", "aspects"}
        assert rec.meta["spans"]["mentions"][0]["label"] == "PRODUCT"
        assert rec.meta["texts"]["rewrite"].startswith(rec.text[:10])  # type: ignore[attr-defined]
