"""OpenAI fine-tuning JSONL: chat (supervised) and preference (DPO).

Messages follow the Chat Completions shape: tool calls as
``{"id", "type": "function", "function": {"name", "arguments": <JSON text>}}``,
``tool_call_id`` on tool results, ``weight`` (0 or 1 in OpenAI's API) on assistant
messages when the record sets one. OpenAI's own fine-tuning rows define no field for
reasoning; a message's reasoning goes in ``reasoning_content``, the key
OpenAI-compatible servers (vLLM, DeepSeek) and chat templates use, rather than being
dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from gristmill.io.export.base import (
    ExportOptions,
    Form,
    FormsByKind,
    Output,
    RecordExporter,
    Skipped,
    parse_json_text,
    with_system,
)
from gristmill.records.kinds import Conversation, Kind, Message, Preference, RecordBase
from gristmill.records.pairs import make_pair

OUTPUT_NOT_ONE = "preferred/non-preferred output is not one assistant message"


def openai_message(message: Message) -> dict[str, Any]:
    """A message as OpenAI's chat fine-tuning JSONL writes it."""
    out: dict[str, Any] = {"role": message.role}
    if message.content or not message.tool_calls:
        out["content"] = message.content
    if message.reasoning is not None:
        out["reasoning_content"] = message.reasoning
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            shaped: dict[str, Any] = {}
            if call.id is not None:
                shaped["id"] = call.id
            shaped["type"] = "function"
            shaped["function"] = {"name": call.name, "arguments": call.arguments}
            calls.append(shaped)
        out["tool_calls"] = calls
    if message.role == "tool" and message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.role == "assistant" and message.weight is not None:
        weight = message.weight
        out["weight"] = int(weight) if weight.is_integer() else weight
    return out


def openai_messages(system: str | None, messages: list[Message]) -> list[dict[str, Any]]:
    return [openai_message(m) for m in with_system(system, messages)]


class OpenAIChat(RecordExporter):
    name = "openai-chat"
    description = "OpenAI chat fine-tuning JSONL (+ tools, tool_calls, weight)"
    example = '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "weight": 1}]}'
    forms: ClassVar[FormsByKind] = {Kind.CONVERSATION: ()}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Conversation)
        row: dict[str, Any] = {"messages": openai_messages(record.system, record.messages)}
        if record.tools:
            row["tools"] = parse_json_text(record.tools)
        yield row


class OpenAIPreference(RecordExporter):
    name = "openai-preference"
    description = "OpenAI preference (DPO) fine-tuning JSONL; pairs from ranks or ratings"
    example = '{"input": {"messages": [{"role": "user", "content": "2+2?"}]}, "preferred_output": [{"role": "assistant", "content": "4"}], "non_preferred_output": [{"role": "assistant", "content": "5"}]}'
    forms: ClassVar[FormsByKind] = {Kind.PREFERENCE: ()}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Preference)
        pair = make_pair(record, options.pairs)
        if isinstance(pair, str):
            yield Skipped(pair)
            return
        outputs = []
        for candidate in (pair.chosen, pair.rejected):
            if len(candidate.messages) != 1 or candidate.messages[0].role != "assistant":
                yield Skipped(OUTPUT_NOT_ONE)
                return
            message = openai_message(candidate.messages[0])
            message.pop("weight", None)  # loss weights are for supervised rows only
            outputs.append([message])
        yield {
            "input": {"messages": openai_messages(record.system, record.prompt)},
            "preferred_output": outputs[0],
            "non_preferred_output": outputs[1],
        }


EXPORTERS: list[RecordExporter] = [OpenAIChat(), OpenAIPreference()]
