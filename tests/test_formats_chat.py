"""Chat formats (and gristmill's native rows) on real sample files: detection picks
the right family, every row converts, the result is a valid record, bad rows name
their field."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.io.formats import chat, native, text
from gristmill.io.formats.base import Format, RowContext, RowError
from gristmill.records import (
    Candidate,
    Conversation,
    Document,
    Kind,
    Message,
    Preference,
    from_row,
    to_row,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
OURS: list[Format] = [*native.FORMATS, *chat.FORMATS, *text.FORMATS]
CTX = RowContext(file=Path("test.jsonl"), row_number=1)


def convert(f: Format, row: dict[str, Any]) -> dict[str, Any]:
    """``f.convert`` for formats that return a plain row (all of these do)."""
    out = f.convert(row, CTX)
    assert isinstance(out, dict)
    return out


def load(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        body = fh.read()
    if body.lstrip().startswith("["):
        rows: list[dict[str, Any]] = json.loads(body)
        return rows
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def detect(rows: list[dict[str, Any]]) -> tuple[Format | None, float]:
    scored = sorted(((f.detect(rows[:50], Path("x")), f) for f in OURS), key=lambda s: -s[0])
    best_score, best = scored[0]
    return (best if best_score > 0 else None), best_score


def fmt(name: str) -> Format:
    return next(f for f in OURS if f.name == name)


def validate(kind: Kind, converted: dict[str, Any]) -> Any:
    meta = converted.get("meta")
    row = {**converted, "id": "x", "origin": "import:test"}
    row["meta"] = json.dumps(meta) if meta else None
    return from_row(kind, row)


def convert_all(name: str, rows: list[dict[str, Any]]) -> list[Conversation]:
    f = fmt(name)
    out = []
    for row in rows:
        record = validate(f.kind, convert(f, dict(row)))
        assert isinstance(record, Conversation)
        out.append(record)
    return out


CHAT_FILES = [
    ("lima/lima.json", "alpaca", 1029),
    ("llamafactory_demos/alpaca_en_demo.json", "alpaca", 999),
    ("llamafactory_demos/glaive_toolcall_en_demo.json", "sharegpt", 300),
    ("llamafactory_demos/reason_tool_use_demo_50.jsonl", "openai", 50),
    ("fastchat_mtbench/dummy_conversation_sharegpt.json", "sharegpt", 500),
    ("sharegpt_samples/dialogstudio_sharegpt_original_example.json", "sharegpt", 5),
]


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict[str, Any]]]:
    return {rel: load(SAMPLES / rel) for rel, _, _ in CHAT_FILES}


@pytest.mark.parametrize(("rel", "expected", "count"), CHAT_FILES)
def test_real_files_detect_and_convert(
    files: dict[str, list[dict[str, Any]]], rel: str, expected: str, count: int
) -> None:
    rows = files[rel]
    best, score = detect(rows)
    assert best is not None and best.name == expected
    assert score >= 0.9
    records = convert_all(expected, rows)
    assert len(records) == count
    for record in records:
        assert record.messages[0].role != "system"
        assert all(m.content or m.tool_calls or m.role == "tool" for m in record.messages)


@pytest.mark.parametrize(
    "rel", ["llamafactory_demos/kto_en_demo.json", "llamafactory_demos/dpo_en_demo.json"]
)
def test_preference_files_are_not_claimed(rel: str) -> None:
    best, _ = detect(load(SAMPLES / rel))
    assert best is None


def test_lima_history_becomes_alternating_turns(files: dict[str, list[dict[str, Any]]]) -> None:
    rows = files["lima/lima.json"]
    row = next(r for r in rows if len(r["history"]) == 9)
    [record] = convert_all("alpaca", [row])
    assert len(record.messages) == 2 * 9 + 2
    assert [m.role for m in record.messages] == ["user", "assistant"] * 10
    assert record.messages[0].content == row["history"][0][0]
    assert record.messages[-2].content == row["instruction"]
    assert record.messages[-1].content == row["output"]
    assert record.system is None


def test_alpaca_input_joined_and_kept_in_meta(files: dict[str, list[dict[str, Any]]]) -> None:
    rows = files["llamafactory_demos/alpaca_en_demo.json"]
    row = next(r for r in rows if r["input"])
    left = dict(row)
    converted = convert(fmt("alpaca"), left)
    assert left == {}
    assert converted["messages"][0]["content"] == f"{row['instruction']}\n\n{row['input']}"
    assert converted["meta"] == {"alpaca_input": row["input"]}
    plain = convert(fmt("alpaca"), dict(next(r for r in rows if not r["input"])))
    assert "meta" not in plain


def test_glaive_tool_calls(files: dict[str, list[dict[str, Any]]]) -> None:
    row = files["llamafactory_demos/glaive_toolcall_en_demo.json"][0]
    [record] = convert_all("sharegpt", [row])
    call_msg = next(m for m in record.messages if m.tool_calls)
    assert call_msg.role == "assistant"
    assert call_msg.tool_calls is not None
    assert call_msg.tool_calls[0].name == "search_recipes"
    assert json.loads(call_msg.tool_calls[0].arguments) == {
        "ingredients": ["chicken", "bell peppers", "rice"]
    }
    following = record.messages[record.messages.index(call_msg) + 1]
    assert following.role == "tool" and "Stir Fry" in following.content
    assert record.tools is not None
    assert json.loads(record.tools)[0]["name"] == "search_recipes"


def test_glaive_empty_tools_become_none(files: dict[str, list[dict[str, Any]]]) -> None:
    rows = files["llamafactory_demos/glaive_toolcall_en_demo.json"]
    rows = [r for r in rows if json.loads(r["tools"]) == []]
    assert len(rows) == 109
    assert all(r.tools is None for r in convert_all("sharegpt", rows))


def test_reasoning_tool_use_parts(files: dict[str, list[dict[str, Any]]]) -> None:
    rows = files["llamafactory_demos/reason_tool_use_demo_50.jsonl"]
    records = convert_all("openai", rows)
    assert all(r.system and r.system.startswith("You are") for r in records)
    calls = [m for r in records for m in r.messages if m.tool_calls]
    assert len(calls) == 41 + 9 + 3
    assert sum(len(m.tool_calls or []) for m in calls) == 41 + 2 * 9 + 3 * 3
    first = calls[0]
    assert first.content == "" and first.reasoning
    assert first.tool_calls is not None
    assert first.tool_calls[0].name == "get_movie_details"
    assert json.loads(first.tool_calls[0].arguments) == {"title": "Inception"}
    answers = [m for r in records for m in r.messages if m.role == "assistant" and not m.tool_calls]
    assert all(m.reasoning and m.content for m in answers)
    offered = [json.loads(r.tools) for r in records if r.tools is not None]
    assert len(offered) == 48  # two rows offer "[]", which is no tools
    assert all(tools[0]["type"] == "function" for tools in offered)


def test_sharegpt_identity_and_leftovers(files: dict[str, list[dict[str, Any]]]) -> None:
    row = dict(files["sharegpt_samples/dialogstudio_sharegpt_original_example.json"][0])
    converted = convert(fmt("sharegpt"), row)
    assert set(row) == {"id", "model"}  # left for the engine (record id, meta)
    roles = [m["role"] for m in converted["messages"]]
    assert roles[:2] == ["user", "assistant"]
    assert all(set(m) == set(Message.model_fields) for m in converted["messages"])


# -- smaller formats, on rows written the way their documentation shows -------------------


def test_sharegpt_row_system_is_lifted() -> None:
    row = {
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
        "system": "Be brief.",
    }
    converted = convert(fmt("sharegpt"), row)
    assert converted["system"] == "Be brief."
    assert [m["role"] for m in converted["messages"]] == ["user", "assistant"]


def test_openai_system_and_tools_list() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "content": "4C", "tool_call_id": "c1"},
            {"role": "assistant", "content": "4C in Oslo."},
        ],
        "tools": [{"type": "function", "function": {"name": "weather"}}],
    }
    converted = convert(fmt("openai"), row)
    assert row == {}
    record = validate(Kind.CONVERSATION, converted)
    assert isinstance(record, Conversation)
    assert record.system == "You are terse."
    assert record.messages[1].tool_calls is not None
    assert record.messages[1].tool_calls[0].id == "c1"
    assert record.messages[2].tool_call_id == "c1"
    assert record.tools is not None and json.loads(record.tools)[0]["function"]["name"] == "weather"


def test_lima_string_turns() -> None:
    row = {"conversations": ["Q1", "A1", "Q2", "A2"], "source": "stackexchange"}
    assert detect([row])[0] is fmt("lima")
    converted = convert(fmt("lima"), row)
    assert [m["role"] for m in converted["messages"]] == ["user", "assistant"] * 2
    assert row == {"source": "stackexchange"}


def test_trl_prompt_completion_standard_and_conversational() -> None:
    standard = {"prompt": "The sky is", "completion": " blue."}
    assert detect([standard])[0] is fmt("trl-prompt-completion")
    out = convert(fmt("trl-prompt-completion"), dict(standard))
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("user", "The sky is"),
        ("assistant", " blue."),
    ]
    conv = {
        "prompt": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "What color is the sky?"},
        ],
        "completion": [{"role": "assistant", "content": "It is blue."}],
    }
    assert detect([conv])[0] is fmt("trl-prompt-completion")
    out = convert(fmt("trl-prompt-completion"), copy.deepcopy(conv))
    assert out["system"] == "Be kind."
    assert [m["role"] for m in out["messages"]] == ["user", "assistant"]


def test_trl_prompt_only() -> None:
    for row in ({"prompt": "The sky is"}, {"prompt": [{"role": "user", "content": "Sky?"}]}):
        assert detect([row])[0] is fmt("trl-prompt-only")
        out = convert(fmt("trl-prompt-only"), copy.deepcopy(row))
        assert [m["role"] for m in out["messages"]] == ["user"]
        validate(Kind.CONVERSATION, out)


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "p", "completion": "c", "label": True},
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"prompt": "p", "completions": ["a", "b"], "labels": [True, False]},
        {"messages": [{"role": "user", "content": "x"}], "label": False},
        {"conversations": [{"from": "human", "value": "x"}], "chosen": {}, "rejected": {}},
    ],
)
def test_preference_rows_score_zero(row: dict[str, Any]) -> None:
    assert all(f.detect([row], Path("x")) == 0 for f in chat.FORMATS)


# -- bad rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "row", "field"),
    [
        ("openai", {}, "messages"),
        ("openai", {"messages": "hi"}, "messages"),
        ("openai", {"messages": [{"content": "hi"}]}, "messages[0].role"),
        ("openai", {"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        (
            "openai",
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": " "},
                ]
            },
            "messages[1].content",
        ),
        ("openai", {"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ("openai", {"messages": [{"role": "system", "content": "sys"}]}, "messages"),
        (
            "openai",
            {"messages": [{"role": "user", "content": "hi"}], "tools": "{not json"},
            "tools",
        ),
        (
            "openai",
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_call", "value": "{oops"}]},
                ]
            },
            "messages[1].content[0]",
        ),
        ("sharegpt", {"conversations": [{"from": "alien", "value": "x"}]}, "conversations[0].from"),
        ("sharegpt", {"conversations": [{"from": "human", "value": ""}]}, "conversations[0].value"),
        ("sharegpt", {"conversations": [{"from": "human", "value": 1}]}, "conversations[0].value"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "x"}], "system": 5},
            "system",
        ),
        ("alpaca", {"output": "o"}, "instruction"),
        ("alpaca", {"instruction": "i"}, "output"),
        ("alpaca", {"instruction": "  ", "output": "o"}, "instruction"),
        ("alpaca", {"instruction": "i", "input": 3, "output": "o"}, "input"),
        ("alpaca", {"instruction": "i", "output": "o", "history": [["q"]]}, "history[0]"),
        ("alpaca", {"instruction": "i", "output": "o", "history": [["q", ""]]}, "history[0][1]"),
        ("lima", {"conversations": ["q", 2]}, "conversations[1]"),
        ("lima", {"conversations": []}, "conversations"),
        ("trl-prompt-completion", {"prompt": "p"}, "completion"),
        ("trl-prompt-completion", {"prompt": "p", "completion": ""}, "completion"),
        (
            "trl-prompt-completion",
            {"prompt": "p", "completion": [{"role": "assistant", "content": "c"}]},
            "completion",
        ),
        (
            "trl-prompt-completion",
            {
                "prompt": [{"role": "user", "content": "p"}],
                "completion": [{"role": "robot", "content": "c"}],
            },
            "completion[0].role",
        ),
        ("trl-prompt-only", {"prompt": 7}, "prompt"),
    ],
)
def test_bad_rows_name_the_field(name: str, row: dict[str, Any], field: str) -> None:
    with pytest.raises(RowError) as info:
        fmt(name).convert(row, CTX)
    assert info.value.field == field


# -- gristmill's own export rows -----------------------------------------------------------


def exported(record: Any, kind: Kind) -> dict[str, Any]:
    """A row the way a JSONL export writes it: storage row + kind, times as text."""
    row = to_row(record)
    row["created_at"] = row["created_at"].isoformat()
    return {"kind": kind.value, **row}


def test_native_round_trip_conversation() -> None:
    record = Conversation(
        id="abc",
        origin="human:alice",
        source="old.jsonl",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        meta={"note": "x"},
        system="sys",
        messages=[Message(role="user", content="hi"), Message(role="assistant", content="yo")],
    )
    row = exported(record, Kind.CONVERSATION)
    rows = [row]
    assert detect(rows)[0] is fmt("gristmill-conversation")
    row.pop("id")  # the engine takes the id before convert
    out = convert(fmt("gristmill-conversation"), row)
    assert set(row) == set()  # lineage (source, source_row) is passed through too
    assert out["source"] == "old.jsonl"
    assert out["meta"] == {"note": "x"}
    assert out["origin"] == "human:alice"
    assert out["created_at"] == datetime(2024, 5, 1, tzinfo=UTC)
    back = validate(Kind.CONVERSATION, out)
    assert back.model_dump(exclude={"id", "origin", "source", "meta"}) == record.model_dump(
        exclude={"id", "origin", "source", "meta"}
    )


def test_native_one_format_per_kind() -> None:
    doc = exported(Document(id="d", text="hello"), Kind.DOCUMENT)
    pref = exported(
        Preference(
            id="p",
            prompt=[Message(role="user", content="q")],
            candidates=[Candidate(messages=[Message(role="assistant", content="a")], rank=1)],
        ),
        Kind.PREFERENCE,
    )
    assert detect([doc])[0] is fmt("gristmill-document")
    assert detect([pref])[0] is fmt("gristmill-preference")
    assert fmt("gristmill-document").detect([pref], Path("x")) == 0
    out = convert(fmt("gristmill-preference"), dict(pref))
    assert out["candidates"][0]["rank"] == 1
    assert {f.name for f in native.FORMATS} == {f"gristmill-{k.value}" for k in Kind}


def test_native_bad_rows() -> None:
    fmt_conv = fmt("gristmill-conversation")
    bad = {"kind": "conversation", "messages": [{"role": "user", "content": 5}]}
    with pytest.raises(RowError) as info:
        convert(fmt_conv, bad)
    assert info.value.field == "messages[0].content"
    with pytest.raises(RowError) as info:
        convert(fmt_conv, {"kind": "document", "text": "x"})
    assert info.value.field == "kind"
    with pytest.raises(RowError) as info:
        convert(fmt_conv, {"kind": "conversation", "messages": [], "meta": "{"})
    assert info.value.field == "meta"
