"""Community SFT formats as LLaMA-Factory reads them: Alpaca and ShareGPT.

Alpaca holds user/assistant exchanges only (``history`` for the earlier ones), so
conversations with tool calls, reasoning, or turns that do not alternate are
skipped with that reason. ShareGPT carries tool use the LLaMA-Factory way:
``function_call`` turns (JSON ``{"name", "arguments"}``), ``observation`` turns for
results, and ``tools`` as JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import orjson

from gristmill.io.export.base import (
    NOT_ENDING_WITH_ASSISTANT,
    ExportOptions,
    Form,
    FormsByKind,
    Output,
    RecordExporter,
    Skipped,
    parse_json_text,
)
from gristmill.records.kinds import Conversation, Kind, Message, RecordBase

ALPACA_TOOLS = "has tool calls or tool results (Alpaca holds user/assistant turns only)"
ALPACA_SYSTEM_INSIDE = "has a system message inside the conversation"
NOT_ALTERNATING = "turns do not alternate user/assistant"
ALPACA_REASONING = "has reasoning (Alpaca has no field for it)"
SHAREGPT_REASONING = "has reasoning (ShareGPT has no field for it)"
TEXT_AND_CALLS = "assistant message has both text and tool calls (ShareGPT holds one per turn)"

SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}


def _alpaca_instruction(text: str, meta: dict[str, Any]) -> tuple[str, str]:
    """Split an Alpaca ``input`` that an import folded into the instruction back out."""
    extra = meta.get("alpaca_input")
    if isinstance(extra, str) and extra and text.endswith(extra) and len(text) > len(extra):
        return text[: -len(extra)].rstrip(), extra
    return text, ""


class Alpaca(RecordExporter):
    name = "alpaca"
    description = "Alpaca instruction/input/output (+ system, history for multi-turn)"
    example = (
        '{"instruction": "Name a color.", "input": "", "output": "Blue.", "system": "Be brief."}'
    )
    forms: ClassVar[FormsByKind] = {Kind.CONVERSATION: ()}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Conversation)
        messages = record.messages
        if any(m.role == "tool" or m.tool_calls for m in messages):
            yield Skipped(ALPACA_TOOLS)
            return
        if any(m.role == "system" for m in messages):
            yield Skipped(ALPACA_SYSTEM_INSIDE)
            return
        if any(m.reasoning is not None for m in messages):
            yield Skipped(ALPACA_REASONING)
            return
        if messages[-1].role != "assistant":
            yield Skipped(NOT_ENDING_WITH_ASSISTANT)
            return
        roles = [m.role for m in messages]
        if len(roles) % 2 or roles != ["user", "assistant"] * (len(roles) // 2):
            yield Skipped(NOT_ALTERNATING)
            return
        exchanges = [
            (messages[i].content, messages[i + 1].content) for i in range(0, len(roles), 2)
        ]
        *history, (last_user, output) = exchanges
        instruction, extra = _alpaca_instruction(last_user, record.meta)
        row: dict[str, Any] = {"instruction": instruction, "input": extra, "output": output}
        if record.system is not None:
            row["system"] = record.system
        if history:
            row["history"] = [list(pair) for pair in history]
        yield row


def _sharegpt_turns(messages: list[Message]) -> list[dict[str, str]] | Skipped:
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.reasoning is not None:
            return Skipped(SHAREGPT_REASONING)
        if message.tool_calls:
            if message.content:
                return Skipped(TEXT_AND_CALLS)
            calls = [
                {"name": c.name, "arguments": parse_json_text(c.arguments)}
                for c in message.tool_calls
            ]
            value = orjson.dumps(calls[0] if len(calls) == 1 else calls).decode()
            turns.append({"from": "function_call", "value": value})
        else:
            turns.append({"from": SHAREGPT_ROLES[message.role], "value": message.content})
    return turns


class ShareGPT(RecordExporter):
    name = "sharegpt"
    description = "ShareGPT conversations of {from, value} (+ system, tools)"
    example = '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}], "system": "Be brief."}'
    forms: ClassVar[FormsByKind] = {Kind.CONVERSATION: ()}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Conversation)
        turns = _sharegpt_turns(record.messages)
        if isinstance(turns, Skipped):
            yield turns
            return
        row: dict[str, Any] = {"conversations": turns}
        if record.system is not None:
            row["system"] = record.system
        if record.tools:
            row["tools"] = record.tools
        yield row


EXPORTERS: list[RecordExporter] = [Alpaca(), ShareGPT()]
