"""Record views built from every record kind of real sample data, and the validation
of answers to every question kind (the messages annotators see)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_app_support import import_sample

from gristmill.annotate.projects import render_markdown
from gristmill.annotate.questions import AnswerError, parse_questions, same_value, validate_answer
from gristmill.annotate.records_view import record_view
from gristmill.store import Workspace

VIEW_KEYS = {"id", "kind", "text", "format", "system", "messages", "prompt", "responses", "meta"}


def _first(workspace: Workspace, sample: str, name: str, want: object = None) -> dict:  # type: ignore[type-arg]
    import_sample(workspace, sample, name)
    for record in workspace.version(name).iter_records():
        view = record_view(record)
        if want is None or want(view):  # type: ignore[operator]
            assert set(view) == VIEW_KEYS
            return view
    raise AssertionError(f"no record in {sample} fits")


def test_views_of_every_kind(workspace: Workspace) -> None:
    doc = _first(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    assert doc["kind"] == "document" and doc["text"] and doc["messages"] is None

    tools = _first(
        workspace,
        "llamafactory_demos/glaive_toolcall_en_demo.json",
        "tools",
        lambda v: any(m["tool_calls"] for m in v["messages"]),
    )
    call = next(m for m in tools["messages"] if m["tool_calls"])["tool_calls"][0]
    assert call["name"] == "search_recipes" and call["arguments"].startswith("{")
    assert any(m["role"] == "tool" for m in tools["messages"])

    sysconv = _first(workspace, "lima/lima.json", "lima", lambda v: len(v["messages"]) > 2)
    assert sysconv["kind"] == "conversation"
    assert [m["role"] for m in sysconv["messages"]][:2] == ["user", "assistant"]

    pref = _first(workspace, "hh_rlhf/harmless-base-test.jsonl.gz", "hh")
    assert pref["kind"] == "preference" and pref["prompt"][0]["role"] == "user"
    assert len(pref["responses"]) == 2
    assert all(r["content"] and r["messages"][-1]["role"] == "assistant" for r in pref["responses"])

    item = _first(workspace, "gsm8k/test.jsonl", "gsm")
    assert item["kind"] == "eval_item" and "ducks" in item["text"]
    assert item["meta"]["references"] == ["18"]
    mmlu = _first(workspace, "mmlu_subset/test/moral_scenarios_test.csv", "mmlu")
    assert len(mmlu["meta"]["choices"]) == 4 and "answer_index" in mmlu["meta"]

    trace = _first(workspace, "tau_bench_trajectories/gpt-4o-airline.json.gz", "tau")
    assert trace["kind"] == "agent_trace" and trace["messages"][0]["role"] == "user"
    assert any(m["tool_calls"] for m in trace["messages"])
    assert "reward" in trace["meta"]

    media = _first(workspace, "label_studio_exports/test_export_csv_csv_test.json", "ls")
    assert media["kind"] == "media" and media["meta"]["uri"]


QS = parse_questions(
    [
        {"name": "topic", "kind": "label", "labels": ["a", "b"]},
        {"name": "tags", "kind": "multi_label", "labels": ["x", "y", "z"]},
        {"name": "ents", "kind": "spans", "labels": ["PER"]},
        {"name": "fix", "kind": "text", "mode": "correct"},
        {
            "name": "quality",
            "kind": "rating",
            "dimensions": [{"name": "helpfulness", "min": 1, "max": 7}],
        },
        {
            "name": "each",
            "kind": "rating",
            "target": "each_response",
            "dimensions": [{"name": "style", "min": 1, "max": 5}],
        },
        {"name": "rank", "kind": "ranking", "allow_ties": False},
        {"name": "rank_t", "kind": "ranking", "allow_ties": True},
        {"name": "pref", "kind": "preference", "require_reason": True},
    ]
)
Q = {q.name: q for q in QS}


@pytest.mark.parametrize(
    ("name", "value", "n", "normal"),
    [
        ("topic", "a", None, "a"),
        ("tags", ["z", "x", "x"], None, ["x", "z"]),
        ("tags", [], None, []),
        (
            "ents",
            [{"start": 0, "end": 5, "label": "PER"}],
            None,
            [{"start": 0, "end": 5, "label": "PER", "text": "Alice"}],
        ),
        ("fix", "better text", None, "better text"),
        ("quality", {"helpfulness": 7.0}, None, {"helpfulness": 7}),
        ("each", [{"style": 1}, {"style": 5}], 2, [{"style": 1}, {"style": 5}]),
        ("rank", [2, 1, 3], 3, [2, 1, 3]),
        ("rank_t", [1, 1, 2], 3, [1, 1, 2]),
        (
            "pref",
            {"choice": "tie", "strength": 3, "reason": "same"},
            2,
            {"choice": "tie", "strength": None, "reason": "same"},
        ),
    ],
)
def test_valid_answers_normalise(name: str, value: object, n: int | None, normal: object) -> None:
    assert validate_answer(Q[name], value, n, "Alice and Bob") == normal


@pytest.mark.parametrize(
    ("name", "value", "n", "message"),
    [
        ("topic", "c", None, "'c' is not one of a, b"),
        ("tags", ["w"], None, "'w' not in x, y, z"),
        ("ents", [{"start": 3, "end": 99, "label": "PER"}], None, "offsets must satisfy"),
        ("ents", [{"start": 0, "end": 5, "label": "ORG"}], None, "label 'ORG' not in"),
        ("fix", "   ", None, "the text is empty"),
        ("quality", {"helpfulness": 8}, None, "expected a whole number 1-7, got 8"),
        ("quality", {"helpfulness": 3, "tone": 2}, None, "unknown dimension(s) tone"),
        ("each", [{"style": 1}], 2, "expected 2 ratings, got 1"),
        ("rank", [1, 1, 2], 3, "ties are not allowed"),
        ("rank", [1, 3, 2, 5], 4, "ranks must be dense"),
        ("rank", [1, 2], 3, "expected 3 ranks"),
        ("pref", {"choice": "a", "strength": 2, "reason": ""}, 2, "a reason is required"),
        ("pref", {"choice": "a", "strength": 9, "reason": "x"}, 2, "strength must be one of"),
        ("pref", {"choice": "a", "strength": 1, "reason": "x"}, 3, "exactly two responses"),
        ("topic", None, None, "an answer is required"),
    ],
)
def test_invalid_answers_say_why(name: str, value: object, n: int | None, message: str) -> None:
    with pytest.raises(AnswerError) as err:
        validate_answer(Q[name], value, n, "Alice and Bob")
    assert err.value.question == name and message in err.value.message


def test_bad_question_sets_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"questions\[0\] \('q'\): kind must be one of"):
        parse_questions([{"name": "q", "kind": "slider"}])
    with pytest.raises(ValueError, match="duplicate names q"):
        parse_questions([{"name": "q", "kind": "text"}, {"name": "q", "kind": "text"}])
    with pytest.raises(ValueError, match="labels must be unique"):
        parse_questions([{"name": "q", "kind": "label", "labels": ["a", "a"]}])
    with pytest.raises(ValueError, match="max must be above min"):
        parse_questions(
            [{"name": "q", "kind": "rating", "dimensions": [{"name": "d", "min": 3, "max": 3}]}]
        )
    with pytest.raises(ValueError, match="String should match pattern"):
        parse_questions([{"name": "Bad Name", "kind": "text"}])


def test_acceptance_of_suggestions() -> None:
    assert same_value({"choice": "a", "strength": 3, "reason": "x"}, {"choice": "a", "strength": 1})
    assert not same_value({"choice": "b", "strength": 1}, {"choice": "a", "strength": 1})
    assert same_value(["y", "x"], ["x", "y"]) and same_value(" draft\n", "draft")
    assert same_value(
        [{"start": 0, "end": 2, "label": "P", "text": "Al"}], [{"start": 0, "end": 2, "label": "P"}]
    )
    assert not same_value({"helpfulness": 5}, {"helpfulness": 6})


def test_guidelines_markdown_escapes_html() -> None:
    html = render_markdown(
        "# Rules\n\n<img src=x onerror=alert(1)> **bold**\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Rules</h1>" in html and "<strong>bold</strong>" in html
    assert "<img" not in html and "&lt;img" in html
    assert "<table>" in html


def test_migrations_match_the_tables_and_upgrade_data(tmp_path: Path) -> None:
    """The Alembic chain builds exactly the schema the code queries, and 0002 marks
    records that already had all their answers as complete."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from gristmill.annotate.tables import items, metadata, projects, slots, users
    from gristmill.server.db import current_revision, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'app.sqlite'}")
    migrate(engine, "0001")
    with engine.begin() as conn:
        for uid in (1, 2):
            conn.execute(
                users.insert().values(
                    id=uid,
                    username=f"u{uid}",
                    role="annotator",
                    active=True,
                    created_at=datetime(2026, 1, 1),
                )
            )
        conn.execute(
            projects.insert().values(
                id=1,
                name="p",
                questions=[],
                guidelines="",
                settings={"overlap": 2},
                created_at=datetime(2026, 1, 1),
            )
        )
        for rid, n_done in (("full", 2), ("half", 1)):
            conn.execute(
                sa.text(
                    "INSERT INTO items (project_id, record_id, position, is_gold, "
                    "view) VALUES (1, :r, 0, 0, '{}')"
                ),
                {"r": rid},
            )
            for slot in range(n_done):
                conn.execute(
                    sa.text(
                        "INSERT INTO slots (project_id, record_id, slot, user_id, "
                        "done) VALUES (1, :r, :s, :s + 1, 1)"
                    ),
                    {"r": rid, "s": slot},
                )
    migrate(engine)
    assert current_revision(engine) == "0003"
    with engine.connect() as conn:
        flags = dict(conn.execute(sa.select(items.c.record_id, items.c.complete)).all())
        assert flags == {"full": True, "half": False}
        assert conn.execute(sa.select(sa.func.count()).select_from(slots)).scalar_one() == 3
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    engine.dispose()
