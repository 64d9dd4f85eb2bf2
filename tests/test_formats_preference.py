"""Preference import formats on real samples (HH-RLHF, LLaMA-Factory DPO/KTO) and on
the TRL / OpenAI shapes written out by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from gristmill.io.formats import RowContext, RowError, detect_format, get_format
from gristmill.io.formats.base import Converted
from gristmill.records import Preference, from_row, rows_to_table

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
HH = SAMPLES / "hh_rlhf" / "harmless-base-test.jsonl.gz"
DPO = SAMPLES / "llamafactory_demos" / "dpo_en_demo.json"
V1_DPO = SAMPLES / "llamafactory_demos" / "v1_dpo_demo.jsonl"
KTO = SAMPLES / "llamafactory_demos" / "kto_en_demo.json"


def load(path: Path) -> list[dict[str, Any]]:
    """JSON array or JSONL, gzipped or not (the engine's readers are tested elsewhere)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def convert(name: str, row: dict[str, Any], file: Path = Path("x.jsonl")) -> dict[str, Any]:
    out = get_format(name).convert(row, RowContext(file=file, row_number=1))
    return out.row if isinstance(out, Converted) else out


def validate(row: dict[str, Any]) -> Preference:
    record = from_row("preference", {**row, "id": "x", "origin": "import:test", "meta": None})
    assert isinstance(record, Preference)
    return record


def convert_all(name: str, path: Path) -> tuple[list[Preference], list[RowError]]:
    records: list[Preference] = []
    errors: list[RowError] = []
    rows: list[dict[str, Any]] = []
    for raw in load(path):
        try:
            row = convert(name, dict(raw), path)
        except RowError as exc:
            errors.append(exc)
            continue
        rows.append(row)
        records.append(validate(row))
    storage = [
        {**r, "id": str(i), "origin": "import:test", "meta": None} for i, r in enumerate(rows)
    ]
    assert rows_to_table("preference", storage).num_rows == len(rows)  # storage form fits Arrow
    return records, errors


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (HH, "hh-rlhf"),
        (DPO, "sharegpt-preference"),
        (V1_DPO, "messages-preference"),
        (KTO, "kto"),
    ],
)
def test_real_files_detect(path: Path, expected: str) -> None:
    sample = load(path)[:50]
    best, scores = detect_format(sample, path)
    assert best is not None and best.name == expected, scores
    assert dict(scores)[expected] >= 0.9


def test_hh_rlhf_pairs() -> None:
    records, errors = convert_all("hh-rlhf", HH)
    # four real rows end the chosen transcript with an empty "Assistant:" turn
    assert len(errors) == 4
    assert all(e.field == "chosen" and "(Assistant) is empty" in e.reason for e in errors)
    assert len(records) == 2312 - 4
    for rec in records:
        assert rec.prompt[-1].role == "user"
        chosen, rejected = rec.candidates
        assert (chosen.rank, rejected.rank) == (1, 2)
        assert chosen.messages != rejected.messages
        assert all(m.role == "assistant" for m in chosen.messages + rejected.messages)
    first = records[0]
    assert first.prompt[0].content == "what are some pranks with a pen i can do?"
    assert first.candidates[0].messages[0].content.startswith("No, sorry!")
    assert first.candidates[1].messages[0].content.startswith("There are lots of funny things")


def test_sharegpt_preference_dpo_demo() -> None:
    records, errors = convert_all("sharegpt-preference", DPO)
    assert not errors and len(records) == 300
    with_system = [r for r in records if r.system]
    assert len(with_system) == 80  # a leading "system" turn is lifted
    assert all(r.prompt[0].role == "user" and r.prompt[-1].role == "user" for r in records)
    assert all([c.rank for c in r.candidates] == [1, 2] for r in records)


def test_messages_preference_keeps_loss_weight() -> None:
    records, errors = convert_all("messages-preference", V1_DPO)
    assert not errors and len(records) == 10
    rec = records[0]
    assert rec.system is not None and rec.system.startswith("You are an AI assistant")
    assert [m.role for m in rec.prompt] == ["user"]
    assert rec.prompt[0].weight == 0.0
    assert rec.candidates[0].messages[0].weight == 1.0
    assert rec.candidates[0].messages[0].content != rec.candidates[1].messages[0].content


def test_kto_demo_labels() -> None:
    records, errors = convert_all("kto", KTO)
    assert not errors and len(records) == 300
    labels = [r.candidates[0].label for r in records]
    assert labels.count(True) == 150 and labels.count(False) == 150
    for rec in records:
        assert len(rec.candidates) == 1
        assert rec.candidates[0].messages[0].role == "assistant"
        assert rec.prompt[-1].role == "user"


# -- TRL and OpenAI shapes (no real files in the sample set) --------------------------------

U = {"role": "user", "content": "What color is the sky?"}
A1 = {"role": "assistant", "content": "It is blue."}
A2 = {"role": "assistant", "content": "It is green."}
SYS = {"role": "system", "content": "Be brief."}

SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("trl-preference", {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}),
    ("trl-preference", {"prompt": [SYS, U], "chosen": [A1], "rejected": [A2]}),
    ("trl-preference", {"chosen": [U, A1], "rejected": [U, A2]}),
    ("trl-unpaired-preference", {"prompt": "Sky?", "completion": "Blue.", "label": True}),
    ("trl-unpaired-preference", {"prompt": [U], "completion": [A2], "label": False}),
    (
        "trl-stepwise",
        {"prompt": "2+2*2?", "completions": ["2*2=4", "4+2=6"], "labels": [True, True]},
    ),
    (
        "openai-preference",
        {
            "input": {"messages": [SYS, U], "tools": []},
            "preferred_output": [A1],
            "non_preferred_output": [A2],
        },
    ),
    (
        "rated-responses",
        {
            "instruction": "Sky?",
            "completions": [
                {"response": "Blue.", "model": "m1", "ratings": {"helpfulness": 5, "honesty": 5}},
                {
                    "response": "Green.",
                    "model": "m2",
                    "annotations": {"helpfulness": {"Rating": "2"}, "honesty": {"Rating": "N/A"}},
                },
                {"response": "Azure.", "ratings": {"helpfulness": 5, "honesty": 5}},
            ],
        },
    ),
    (
        "kto",
        {
            "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}],
            "kto_tag": True,
        },
    ),
]


@pytest.mark.parametrize(("name", "row"), SHAPES)
def test_shapes_detect_and_convert(name: str, row: dict[str, Any]) -> None:
    best, scores = detect_format([row], Path("x.jsonl"))
    assert best is not None and best.name == name, scores
    rec = validate(convert(name, json.loads(json.dumps(row))))
    assert rec.prompt and rec.candidates


def test_trl_conversational_lifts_system_and_ranks() -> None:
    rec = validate(
        convert("trl-preference", {"prompt": [SYS, U], "chosen": [A1], "rejected": [A2]})
    )
    assert rec.system == "Be brief." and [m.role for m in rec.prompt] == ["user"]
    assert [(c.rank, c.messages[0].content) for c in rec.candidates] == [
        (1, "It is blue."),
        (2, "It is green."),
    ]


def test_trl_implicit_prompt_splits_shared_prefix() -> None:
    rec = validate(convert("trl-preference", {"chosen": [SYS, U, A1], "rejected": [SYS, U, A2]}))
    assert rec.system == "Be brief."
    assert [m.content for m in rec.prompt] == [U["content"]]


def test_trl_hh_style_prompt_is_split_into_turns() -> None:
    row = {
        "prompt": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Sky?\n\nAssistant:",
        "chosen": " Blue.",
        "rejected": " Green.",
    }
    rec = validate(convert("trl-preference", row))
    assert [m.role for m in rec.prompt] == ["user", "assistant", "user"]


def test_stepwise_and_ratings_content() -> None:
    step = validate(convert("trl-stepwise", dict(SHAPES[5][1])))
    assert step.candidates[0].step_labels == [True, True]
    assert [m.content for m in step.candidates[0].messages] == ["2*2=4", "4+2=6"]
    rated = validate(convert("rated-responses", json.loads(json.dumps(SHAPES[7][1]))))
    assert [c.rank for c in rated.candidates] == [1, 3, 1]  # tie at the top
    assert [r.dimension for r in rated.candidates[1].ratings] == ["helpfulness"]  # N/A skipped
    assert rated.candidates[0].model == "m1"


def test_unknown_fields_are_left_for_meta() -> None:
    row = {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green.", "source": "x", "margin": 2}
    convert("trl-preference", row)
    assert row == {"source": "x", "margin": 2}
    nested = {
        "input": {"messages": [U], "tools": [{"type": "function"}]},
        "preferred_output": [A1],
        "non_preferred_output": [A2],
    }
    convert("openai-preference", nested)
    assert nested == {"input": {"tools": [{"type": "function"}]}}


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("trl-preference", {"prompt": "q", "chosen": "  ", "rejected": "b"}, "chosen", "empty text"),
    (
        "trl-preference",
        {"prompt": [U], "chosen": [A1, {"role": "assistant", "content": ""}], "rejected": [A2]},
        "chosen[1].content",
        "empty text",
    ),
    (
        "trl-preference",
        {"prompt": [U], "chosen": [{"content": "x"}], "rejected": [A2]},
        "chosen[0].role",
        "missing",
    ),
    (
        "trl-preference",
        {"prompt": "q", "chosen": 3, "rejected": "b"},
        "chosen",
        "expected a string or a list",
    ),
    ("trl-preference", {"chosen": [U, A1], "rejected": [U, A1]}, "rejected", "identical"),
    ("trl-preference", {"chosen": [A1], "rejected": [A2]}, "chosen", "share no prompt"),
    ("trl-preference", {"prompt": [SYS], "chosen": [A1], "rejected": [A2]}, "prompt", "no prompt"),
    (
        "trl-unpaired-preference",
        {"prompt": "q", "completion": "a", "label": "yes"},
        "label",
        "boolean",
    ),
    (
        "trl-stepwise",
        {"prompt": "q", "completions": ["a", "b"], "labels": [True]},
        "labels",
        "1 labels for 2",
    ),
    (
        "trl-stepwise",
        {"prompt": "q", "completions": ["a", ""], "labels": [True, False]},
        "completions[1]",
        "empty text",
    ),
    (
        "trl-stepwise",
        {"prompt": "q", "completions": ["a", "b"], "labels": [True, 1]},
        "labels[1]",
        "boolean",
    ),
    (
        "openai-preference",
        {"input": {}, "preferred_output": [A1], "non_preferred_output": [A2]},
        "input.messages",
        "missing",
    ),
    (
        "openai-preference",
        {"input": {"messages": [U]}, "preferred_output": [A1], "non_preferred_output": [A1]},
        "non_preferred_output",
        "identical",
    ),
    (
        "sharegpt-preference",
        {
            "conversations": [{"from": "human", "value": "q"}],
            "chosen": {"from": "gpt"},
            "rejected": {"from": "gpt", "value": "b"},
        },
        "chosen.value",
        "must be a string",
    ),
    (
        "sharegpt-preference",
        {
            "conversations": [{"from": "alien", "value": "q"}],
            "chosen": {"from": "gpt", "value": "a"},
            "rejected": {"from": "gpt", "value": "b"},
        },
        "conversations[0].from",
        "unknown role",
    ),
    (
        "messages-preference",
        {"chosen_messages": [U, A1], "rejected_messages": []},
        "rejected_messages",
        "empty list",
    ),
    ("kto", {"messages": [U, A1, U], "label": True}, "messages[-1].role", "last message"),
    ("kto", {"messages": [A1], "label": True}, "messages", "no prompt"),
    (
        "hh-rlhf",
        {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: a"},
        "rejected",
        "identical",
    ),
    (
        "hh-rlhf",
        {
            "chosen": "junk\n\nHuman: hi\n\nAssistant: a",
            "rejected": "\n\nHuman: hi\n\nAssistant: b",
        },
        "chosen",
        "before the first",
    ),
    (
        "hh-rlhf",
        {"chosen": "\n\nAssistant: a", "rejected": "\n\nAssistant: b"},
        "chosen",
        "share no prompt",
    ),
    (
        "rated-responses",
        {"prompt": "q", "completions": [{"response": ""}]},
        "completions[0].response",
        "empty text",
    ),
]


@pytest.mark.parametrize(("name", "row", "field", "reason"), BAD)
def test_bad_rows_name_the_field(name: str, row: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(RowError) as info:
        convert(name, json.loads(json.dumps(row)))
    assert info.value.field == field
    assert reason in info.value.reason
