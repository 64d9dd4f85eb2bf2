"""Shared builders for the export tests: real versions in a temporary workspace.

Imported by test_export*.py and test_train_trl.py (pytest puts tests/ on sys.path);
it holds no tests itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gristmill.records.arrow import to_row
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Document,
    EvalItem,
    Kind,
    Message,
    Preference,
    Rating,
    RecordBase,
    ToolCall,
)
from gristmill.store import Version, VersionWriter, Workspace

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def make_version(
    tmp_path: Path, name: str, kind: Kind, records: Sequence[RecordBase], shard_rows: int = 250_000
) -> Version:
    ws_root = tmp_path / "ws"
    ws = Workspace(ws_root) if (ws_root / "gristmill.json").exists() else Workspace.init(ws_root)
    with VersionWriter(ws, name, kind, operation="test", shard_rows=shard_rows) as writer:
        writer.write_rows([to_row(r) for r in records])
    assert writer.version is not None
    return writer.version


def user(text: str) -> Message:
    return Message(role="user", content=text)


def assistant(text: str, **extra: Any) -> Message:
    return Message(role="assistant", content=text, **extra)


def lima_conversations(n: int = 20) -> list[Conversation]:
    """The first ``n`` LIMA rows (LLaMA-Factory's Alpaca layout) as conversations,
    plus the multi-turn ones from further down so history is exercised."""
    rows = json.loads((SAMPLES / "lima" / "lima.json").read_text())
    picked = rows[:n] + [r for r in rows if r["history"]][:3]
    out = []
    for i, row in enumerate(picked):
        messages: list[Message] = []
        for question, answer in row["history"]:
            messages += [user(question), assistant(answer)]
        messages += [user(row["instruction"]), assistant(row["output"])]
        out.append(
            Conversation(
                id=f"lima-{i}", source="lima.json", origin="import:lima", messages=messages
            )
        )
    return out


def tricky_conversations() -> list[Conversation]:
    """Conversations that test what each format can and cannot express."""
    weather_call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    tools = json.dumps(
        [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ]
    )
    return [
        Conversation(id="plain", messages=[user("Name a colour."), assistant("Blue.")]),
        Conversation(
            id="system",
            system="Answer in one word.",
            messages=[user("Name a fruit."), assistant("Apple.", weight=1.0)],
        ),
        Conversation(
            id="multi",
            messages=[user("Hi"), assistant("Hello!"), user("2+2?"), assistant("4", weight=0.0)],
        ),
        Conversation(
            id="tools",
            tools=tools,
            messages=[
                user("Weather in Paris?"),
                assistant("", tool_calls=[weather_call]),
                Message(role="tool", content='{"temp": 21}', tool_call_id="call_1"),
                assistant("21 degrees."),
            ],
        ),
        Conversation(
            id="reasoning",
            messages=[user("3*3?"), assistant("9", reasoning="three threes are nine")],
        ),
        Conversation(id="open", messages=[user("Tell me a story.")]),
        Conversation(
            id="alpaca-input",
            meta={"alpaca_input": "The cat sat on the mat."},
            messages=[
                user("Translate to French.\n\nThe cat sat on the mat."),
                assistant("Le chat était assis sur le tapis."),
            ],
        ),
    ]


def rated(text: str, **ratings: float | list[float]) -> Candidate:
    values: list[Rating] = []
    for dimension, value in ratings.items():
        for v in value if isinstance(value, list) else [value]:
            values.append(Rating(dimension=dimension, value=v))
    return Candidate(messages=[assistant(text)], ratings=values)


def preference_records() -> list[Preference]:
    """Ratings (several dimensions, several raters), ranks, a tie, labels, steps."""
    return [
        # mean over dimensions: a = (4+2)/2 = 3, b = (5+5)/2 = 5, c = (1+2)/2 = 1.5
        Preference(
            id="ratings",
            prompt=[user("What is 2+2?")],
            candidates=[
                rated("3 or 5", helpful=4, honest=2),
                rated("4", helpful=5, honest=[4, 6]),
                rated("22", helpful=1, honest=2),
            ],
        ),
        Preference(
            id="tie",
            prompt=[user("Pick a number.")],
            candidates=[rated("7", helpful=3), rated("8", helpful=3)],
        ),
        Preference(
            id="ranks",
            system="Be kind.",
            prompt=[user("Say hello.")],
            candidates=[
                Candidate(messages=[assistant("Go away.")], rank=3),
                Candidate(messages=[assistant("Hello!")], rank=1),
                Candidate(messages=[assistant("Hi.")], rank=2),
            ],
        ),
        Preference(
            id="labels",
            prompt=[user("Is the sky blue?")],
            candidates=[
                Candidate(messages=[assistant("Yes.")], label=True),
                Candidate(messages=[assistant("No.")], label=False),
                Candidate(messages=[assistant("Maybe.")]),
            ],
        ),
        Preference(
            id="steps",
            prompt=[user("Which is larger, 9.8 or 9.11?")],
            candidates=[
                Candidate(
                    messages=[assistant("9.8 = 9.80."), assistant("9.80 > 9.11, so 9.8.")],
                    step_labels=[True, True],
                    ratings=[Rating(dimension="correct", value=1)],
                ),
                Candidate(
                    messages=[assistant("11 > 8."), assistant("So 9.11 is larger.")],
                    step_labels=[True, False],
                    ratings=[Rating(dimension="correct", value=0)],
                ),
            ],
        ),
    ]


def documents() -> list[Document]:
    return [
        Document(id=f"doc-{i}", text=text, source="web", meta={"topic": topic})
        for i, (text, topic) in enumerate(
            [
                ("The sky is blue.", "nature"),
                ("Water boils at 100 degrees Celsius at sea level.", "science"),
                ("Paris is the capital of France.", "geography"),
            ]
        )
    ]


def eval_items() -> list[EvalItem]:
    return [EvalItem(id="q1", input="What is the capital of France?", references=["Paris"])]
