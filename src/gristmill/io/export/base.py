"""The contract every exporter follows, the report they fill, and the message shapes
they share.

Two families: a :class:`RecordExporter` turns one typed record into zero or more
output rows (JSONL training shapes), a :class:`StorageExporter` writes the storage
rows themselves (native JSONL, Parquet, HF ``datasets``). A record an exporter cannot
express yields a :class:`Skipped` with a reason, so the report can count it: nothing
is ever dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pyarrow as pa

from gristmill.io.splits import SplitSpec
from gristmill.records.arrow import schema_for
from gristmill.records.kinds import Kind, Message, RecordBase, ToolCall
from gristmill.records.pairs import PairOptions


class Form(StrEnum):
    """TRL's two dataset formats: plain text, or lists of role/content messages."""

    STANDARD = "standard"
    CONVERSATIONAL = "conversational"


class Container(StrEnum):
    JSONL = "jsonl"
    PARQUET = "parquet"
    HF = "hf"  # datasets.Dataset / DatasetDict .save_to_disk folder


@dataclass(frozen=True)
class ExportOptions:
    """Everything an export can be asked for besides the version, format and path."""

    form: Form | None = None  # None: the format's default for the dataset's kind
    pairs: PairOptions = field(default_factory=PairOptions)
    label_threshold: float | None = None  # unpaired labels for candidates without one
    split: SplitSpec | None = None  # None: one output file
    overwrite: bool = False
    # record id → why it must not be written (e.g. "contaminated: gsm8k"); skipped, counted
    exclude: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ExportReport:
    """What an export did: rows written per split, skipped per reason, the files."""

    source: str
    kind: Kind
    format: str
    form: Form | None
    out: Path
    records_read: int = 0
    records_per_split: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)

    @property
    def total_written(self) -> int:
        return sum(self.rows_written.values())


@dataclass(frozen=True)
class Skipped:
    """One record (or candidate) an exporter could not express, and why."""

    reason: str
    count: int = 1


Output = dict[str, Any] | Skipped


FormsByKind = Mapping[Kind, tuple[Form, ...]]


class Exporter:
    """A format: its name, the kinds (and per kind the forms, default first) it takes."""

    name: ClassVar[str]
    description: ClassVar[str]
    example: ClassVar[str]  # one output row, for docs and --help
    forms: ClassVar[FormsByKind]  # () where form does not apply
    container: ClassVar[Container] = Container.JSONL

    @property
    def kinds(self) -> list[Kind]:
        return list(self.forms)

    def resolve_form(self, kind: Kind, requested: Form | None) -> Form | None:
        """The form to write ``kind`` (one of ``kinds``) in; ValueError if it cannot be
        written in the requested one."""
        forms = self.forms[kind]
        if not forms:
            return None  # standard/conversational does not apply to this format
        if requested is None:
            return forms[0]
        if requested not in forms:
            raise ValueError(
                f"{self.name} writes {kind} datasets in {' or '.join(forms)} form only, "
                f"not {requested}"
            )
        return requested


class RecordExporter(Exporter):
    """Typed records in, JSONL rows out."""

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        raise NotImplementedError


class StorageExporter(Exporter):
    """Storage rows out, with a ``kind`` column first so the files say what they hold
    and re-import as the same records."""

    def output_schema(self, kind: Kind) -> pa.Schema:
        """The kind's storage schema with ``kind`` first (its metadata kept)."""
        return schema_for(kind).insert(0, pa.field("kind", pa.string()))

    def batch(self, batch: pa.RecordBatch, kind: Kind) -> pa.RecordBatch | list[dict[str, Any]]:
        kinds = pa.array([str(kind)] * batch.num_rows, pa.string())
        return pa.RecordBatch.from_arrays([kinds, *batch.columns], schema=self.output_schema(kind))


ALL_KINDS: tuple[Kind, ...] = tuple(Kind)


# -- message shapes shared by the formats ------------------------------------------------

# Skip reasons shared by several formats (report keys: keep them stable).
HAS_SYSTEM = "has a system prompt (standard form is plain text)"
MULTI_TURN = "multi-turn prompt (standard form is single-turn text)"
PROMPT_NOT_USER = "prompt is not a user message (standard form is plain text)"
HAS_TOOL_CALLS = "has tool calls (standard form is plain text)"
HAS_REASONING = "has reasoning (standard form is plain text)"
COMPLETION_NOT_ONE = "completion is not one assistant message (standard form is plain text)"
NO_ASSISTANT = "no assistant turn"
NOT_ENDING_WITH_ASSISTANT = "does not end with an assistant turn"
NO_PROMPT = "nothing before the last assistant turn"


def parse_json_text(text: str) -> Any:
    """JSON text stored in a record (tool arguments, tool schemas) → a value; text that
    is not JSON stays text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def with_system(system: str | None, messages: list[Message]) -> list[Message]:
    if system is None:
        return messages
    return [Message(role="system", content=system), *messages]


def chat_tool_call(call: ToolCall) -> dict[str, Any]:
    """The tool-call shape chat templates read (TRL docs): arguments as an object."""
    out: dict[str, Any] = {
        "type": "function",
        "function": {"name": call.name, "arguments": parse_json_text(call.arguments)},
    }
    if call.id is not None:
        out["id"] = call.id
    return out


def chat_message(message: Message) -> dict[str, Any]:
    """A message in TRL's conversational shape (keys present only when set)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.reasoning is not None:
        out["reasoning_content"] = message.reasoning
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [chat_tool_call(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    return [chat_message(m) for m in messages]


def standard_prompt(system: str | None, messages: list[Message]) -> str | Skipped:
    """A prompt as plain text: one user message, no system prompt."""
    if system is not None or any(m.role == "system" for m in messages):
        return Skipped(HAS_SYSTEM)
    if len(messages) != 1:
        return Skipped(MULTI_TURN)
    if messages[0].role != "user":
        return Skipped(PROMPT_NOT_USER)
    return messages[0].content


def standard_completion(messages: list[Message]) -> str | Skipped:
    """A completion as plain text: one assistant message without tool calls or reasoning."""
    if len(messages) != 1 or messages[0].role != "assistant":
        return Skipped(COMPLETION_NOT_ONE)
    message = messages[0]
    if message.tool_calls:
        return Skipped(HAS_TOOL_CALLS)
    if message.reasoning is not None:
        return Skipped(HAS_REASONING)
    return message.content


def split_last_assistant(messages: list[Message]) -> tuple[list[Message], Message] | Skipped:
    """(everything before the last assistant turn, that turn); the conversation must
    end with it, or the turns after it would be lost."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None:
        return Skipped(NO_ASSISTANT)
    if last != len(messages) - 1:
        return Skipped(NOT_ENDING_WITH_ASSISTANT)
    if last == 0:
        return Skipped(NO_PROMPT)
    return messages[:last], messages[last]
