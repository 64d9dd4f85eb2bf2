"""The rules of the synthetic stages that need no model: Self-Instruct's task splitting
and filters, Evol-Instruct's elimination rules, strict judge parsing, category answers,
and the prompts drawn from each record kind."""

from __future__ import annotations

import pytest

from gristmill.records.kinds import Conversation, Document, EvalItem, Message, Preference
from gristmill.synth.categories import parse_category
from gristmill.synth.evol import elimination
from gristmill.synth.parse import (
    PairwiseVerdict,
    ParseFailure,
    parse_as,
    rating_schema,
)
from gristmill.synth.runner import RunOptions
from gristmill.synth.self_instruct import reject_reason, split_tasks
from gristmill.synth.similarity import InstructionPool
from gristmill.synth.sources import prompt_of
from gristmill.synth.templates import render, template_hash


def test_split_tasks_drops_a_truncated_last_task() -> None:
    text = " Name three rivers in Asia.\nTask 10: Write a haiku about snow.\nTask 11: Explain wh"
    assert split_tasks(text, truncated=True) == (
        ["Name three rivers in Asia.", "Write a haiku about snow."],
        "Explain wh",
    )
    assert split_tasks(text, truncated=False)[0][-1] == "Explain wh"
    assert split_tasks(" Sum 2 and 3\n10. Multiply 4 by 5", False)[0] == [
        "Sum 2 and 3",
        "Multiply 4 by 5",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Tell me", "too_short"),
        (" ".join(["word"] * 151), "too_long"),
        ("Describe the image below in two sentences.", "unsuitable_keyword"),
        ("Plot the function y = x^2 for x from 0 to 5.", "unsuitable_keyword"),
        ("Write a program that sorts a list.", "write_a_program"),
        ("«Translate this sentence into French please»", "non_ascii_start"),
        ("- Translate this sentence into French please", "starts_with_punctuation"),
        ("Translate this sentence into French, please.", None),
        ("Give two synonyms of mapping and filing.", None),  # whole words only
    ],
)
def test_self_instruct_filters(text: str, reason: str | None) -> None:
    assert reject_reason(text) == reason


def test_rouge_pool_finds_the_nearest_instruction() -> None:
    pool = InstructionPool()
    pool.add("Write a poem about the sea.")
    pool.add("Summarize the article in one sentence.")
    score, nearest = pool.nearest("Write a short poem about the sea.")
    assert nearest == "Write a poem about the sea." and score > 0.7
    assert pool.nearest("List prime numbers below twenty.")[0] < 0.3


@pytest.mark.parametrize(
    ("evolved", "response", "rule"),
    [
        ("", None, "empty"),
        ("#Rewritten Prompt#: list three fruits", None, "copies_prompt_words"),
        ("Rewrite the given prompt with more detail", None, "copies_prompt_words"),
        ("List three fruits!", None, "no_information_gain"),
        ("List three red fruits that grow on trees in cold climates.", None, None),
        (
            "List three red fruits that grow on trees in cold climates.",
            "Sorry, I can't.",
            "response_sorry",
        ),
        (
            "List three red fruits that grow on trees in cold climates.",
            "It is the... of a",
            "response_only_stopwords",
        ),
        (
            "List three red fruits that grow on trees in cold climates.",
            "Apples, cherries, plums.",
            None,
        ),
    ],
)
def test_evol_elimination_rules(evolved: str, response: str | None, rule: str | None) -> None:
    assert elimination("List three fruits.", evolved, response, 0.9) == rule


def test_strict_judge_parsing() -> None:
    schema = rating_schema(["helpfulness", "coherence"], 0, 4)
    ok = parse_as(schema, '{"helpfulness": 3, "coherence": 4, "rationale": "ok"}')
    assert ok.model_dump() == {"helpfulness": 3, "coherence": 4, "rationale": "ok"}
    fenced = '```json\n{"helpfulness": 0, "coherence": 1, "rationale": "r"}\n```'
    assert parse_as(schema, fenced).model_dump()["coherence"] == 1
    bad = {
        'Sure! {"helpfulness": 3, "coherence": 4, "rationale": "ok"}': "not a JSON object",
        '{"helpfulness": 3, "rationale": "ok"}': "coherence: Field required",
        '{"helpfulness": 5, "coherence": 4, "rationale": "ok"}': "less than or equal to 4",
        '{"helpfulness": "3", "coherence": 4, "rationale": "ok"}': "valid integer",
        '{"helpfulness": 3.5, "coherence": 4, "rationale": "ok"}': "valid integer",
        '{"helpfulness": 3, "coherence": 4, "rationale": "ok", "x": 1}': "Extra inputs",
        '{"helpfulness": 3, "coherence": 4, "rationale": ""}': "at least 1 character",
        "[3, 4]": "not an object",
        "   ": "empty answer",
    }
    for text, message in bad.items():
        with pytest.raises(ParseFailure, match=message):
            parse_as(schema, text)
    assert parse_as(PairwiseVerdict, '{"winner": "B", "rationale": "r"}').model_dump() == {
        "winner": "B",
        "rationale": "r",
    }
    with pytest.raises(ParseFailure, match="winner"):
        parse_as(PairwiseVerdict, '{"winner": "both", "rationale": "r"}')
    with pytest.raises(ValueError, match="reserved"):
        rating_schema(["rationale"], 0, 4)


@pytest.mark.parametrize(
    ("answer", "category"),
    [
        ("summarization", "summarization"),
        ("Open QA.", "open_qa"),
        ("`closed-qa`", "closed_qa"),
        ("Generation\nbecause it asks for a poem", "generation"),
        ("The category is generation", None),
        ("poetry", None),
        ("", None),
    ],
)
def test_category_answers_must_be_a_category(answer: str, category: str | None) -> None:
    assert parse_category(answer) == category


def test_prompts_from_every_kind() -> None:
    conv = Conversation(
        id="c",
        system="be brief",
        messages=[
            Message(role="user", content="hi"),
            Message(role="assistant", content="hello"),
            Message(role="user", content="what is 2+2?"),
            Message(role="assistant", content="4"),
        ],
    )
    item = prompt_of(conv)
    assert item is not None and item.system == "be brief"
    assert [m.content for m in item.messages] == ["hi", "hello", "what is 2+2?"]
    assert item.instruction == "what is 2+2?"
    pref = Preference(
        id="p",
        prompt=[Message(role="user", content="q")],
        candidates=[{"messages": [{"role": "assistant", "content": "a"}]}],  # type: ignore[list-item]
    )
    assert prompt_of(pref) is not None
    ev = prompt_of(EvalItem(id="e", input="2+2?"))
    assert ev is not None and ev.instruction == "2+2?"
    doc = prompt_of(Document(id="d", text="Some text"))
    assert doc is not None and doc.instruction == "Some text"
    no_user = Conversation(id="n", messages=[Message(role="assistant", content="x")])
    assert prompt_of(no_user) is None


def test_templates_and_run_defaults() -> None:
    text = render("judge_pairwise", prompt="P", response_a="A1", response_b="B1")
    assert "[Response A]\nA1" in text and '"winner"' in text
    with pytest.raises(KeyError):
        render("judge_pairwise", prompt="P")
    assert len(template_hash("self_instruct")) == 12
    remote = RunOptions(model="openai:http://h:1/v1/m?concurrency=16")
    assert remote.resolved_workers() == 16 and remote.resolved_chunk() == 1
    assert RunOptions(model="openai:http://h:1/v1/m").resolved_workers() == 8
    local = RunOptions(model="smollm2")
    assert local.resolved_workers() == 1 and local.resolved_chunk() == 4
