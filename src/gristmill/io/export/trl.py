"""TRL's dataset types, each in its standard and conversational form
(TRL ``docs/source/dataset_formats.md``): language modeling, prompt-only,
prompt-completion, preference, unpaired preference, stepwise supervision.

Conversational rows carry ``tools`` (a JSON string, which TRL's SFTTrainer decodes)
when the record offered tools. Standard rows are plain single-turn text: a record
with a system prompt, several turns, tool calls or reasoning cannot be written so
and is skipped with that reason.
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
    chat_messages,
    split_last_assistant,
    standard_completion,
    standard_prompt,
    with_system,
)
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Document,
    EvalItem,
    Kind,
    Message,
    Preference,
    RecordBase,
)
from gristmill.records.pairs import make_pair, unpaired_labels

CONV = Form.CONVERSATIONAL
STD = Form.STANDARD
BOTH = (CONV, STD)

Part = str | list[dict[str, Any]]  # a prompt or completion: text, or messages

NO_STEP_LABELS = "candidate has no step labels"
STEP_LABELS_MISMATCH = "candidate's step labels do not match its messages"


def _prompt(system: str | None, messages: list[Message], form: Form | None) -> Part | Skipped:
    """The prompt in ``form``: text, or the message list (system first)."""
    if form is STD:
        return standard_prompt(system, messages)
    return chat_messages(with_system(system, messages))


def _completion(messages: list[Message], form: Form | None) -> Part | Skipped:
    if form is STD:
        return standard_completion(messages)
    return chat_messages(messages)


def _with_tools(row: dict[str, Any], record: RecordBase) -> dict[str, Any]:
    tools = record.tools if isinstance(record, Conversation) else None
    if tools:
        row["tools"] = tools
    return row


def _prompt_of(record: RecordBase) -> tuple[str | None, list[Message]] | Skipped:
    """The prompt of a conversation (all before the last assistant turn, or all of it
    when it does not end with one), a preference record or an eval item."""
    if isinstance(record, Preference):
        return record.system, record.prompt
    if isinstance(record, EvalItem):
        return None, [Message(role="user", content=record.input)]
    assert isinstance(record, Conversation)
    messages = record.messages
    if messages[-1].role == "assistant":
        split = split_last_assistant(messages)
        if isinstance(split, Skipped):
            return split
        messages = split[0]
    return record.system, messages


class LanguageModeling(RecordExporter):
    name = "trl-lm"
    description = "TRL language modeling: documents as text, conversations as messages"
    example = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}'
    forms: ClassVar[FormsByKind] = {Kind.DOCUMENT: (STD,), Kind.CONVERSATION: (CONV,)}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        if isinstance(record, Document):
            yield {"text": record.text}
            return
        assert isinstance(record, Conversation)
        row = {"messages": chat_messages(with_system(record.system, record.messages))}
        yield _with_tools(row, record)


class PromptOnly(RecordExporter):
    name = "trl-prompt-only"
    description = "TRL prompt-only: the prompt a model should complete (GRPO, online DPO)"
    example = '{"prompt": [{"role": "user", "content": "What color is the sky?"}]}'
    forms: ClassVar[FormsByKind] = {
        Kind.CONVERSATION: BOTH,
        Kind.PREFERENCE: BOTH,
        Kind.EVAL_ITEM: BOTH,
    }

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        prompt_of = _prompt_of(record)
        if isinstance(prompt_of, Skipped):
            yield prompt_of
            return
        prompt = _prompt(*prompt_of, form)
        yield prompt if isinstance(prompt, Skipped) else _with_tools({"prompt": prompt}, record)


class PromptCompletion(RecordExporter):
    name = "trl-prompt-completion"
    description = "TRL prompt-completion: all before the last assistant turn, and that turn"
    example = '{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}'
    forms: ClassVar[FormsByKind] = {Kind.CONVERSATION: BOTH}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Conversation)
        split = split_last_assistant(record.messages)
        if isinstance(split, Skipped):
            yield split
            return
        before, last = split
        prompt = _prompt(record.system, before, form)
        if isinstance(prompt, Skipped):
            yield prompt
            return
        completion = _completion([last], form)
        if isinstance(completion, Skipped):
            yield completion
            return
        yield _with_tools({"prompt": prompt, "completion": completion}, record)


class PreferencePairs(RecordExporter):
    name = "trl-preference"
    description = "TRL preference with explicit prompt, pairs from ranks or ratings, + margin"
    example = '{"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}], "margin": 2.5}'
    forms: ClassVar[FormsByKind] = {Kind.PREFERENCE: BOTH}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Preference)
        pair = make_pair(record, options.pairs)
        if isinstance(pair, str):
            yield Skipped(pair)
            return
        prompt = _prompt(record.system, record.prompt, form)
        chosen = _completion(pair.chosen.messages, form)
        rejected = _completion(pair.rejected.messages, form)
        for part in (prompt, chosen, rejected):
            if isinstance(part, Skipped):
                yield part
                return
        yield {"prompt": prompt, "chosen": chosen, "rejected": rejected, "margin": pair.margin}


class UnpairedPreference(RecordExporter):
    name = "trl-unpaired"
    description = "TRL unpaired preference (KTO): one row per labelled candidate"
    example = '{"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "5"}], "label": false}'
    forms: ClassVar[FormsByKind] = {Kind.PREFERENCE: BOTH}

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Preference)
        labelled, unlabelled = unpaired_labels(
            record, options.label_threshold, options.pairs.dimension
        )
        for reason, count in unlabelled.items():
            yield Skipped(reason, count)
        if not labelled:
            return
        prompt = _prompt(record.system, record.prompt, form)
        if isinstance(prompt, Skipped):
            yield Skipped(prompt.reason, len(labelled))
            return
        for item in labelled:
            completion = _completion(item.candidate.messages, form)
            if isinstance(completion, Skipped):
                yield completion
            else:
                yield {"prompt": prompt, "completion": completion, "label": item.label}


class StepwiseSupervision(RecordExporter):
    name = "trl-stepwise"
    description = "TRL stepwise supervision (PRM): each candidate's messages as steps + labels"
    example = '{"prompt": "Which is larger, 9.8 or 9.11?", "completions": ["9.8 = 9.80.", "9.80 > 9.11."], "labels": [true, true]}'
    forms: ClassVar[FormsByKind] = {
        Kind.PREFERENCE: (STD,)
    }  # TRL defines stepwise supervision in standard form only

    def convert(
        self, record: RecordBase, form: Form | None, options: ExportOptions
    ) -> Iterator[Output]:
        assert isinstance(record, Preference)
        stepped: list[Candidate] = []
        for candidate in record.candidates:
            if candidate.step_labels is None:
                yield Skipped(NO_STEP_LABELS)
            elif len(candidate.step_labels) != len(candidate.messages):
                yield Skipped(STEP_LABELS_MISMATCH)
            else:
                stepped.append(candidate)
        if not stepped:
            return
        prompt = standard_prompt(record.system, record.prompt)
        if isinstance(prompt, Skipped):
            yield Skipped(prompt.reason, len(stepped))
            return
        for candidate in stepped:
            assert candidate.step_labels is not None
            yield {
                "prompt": prompt,
                "completions": [m.content for m in candidate.messages],
                "labels": list(candidate.step_labels),
            }


EXPORTERS: list[RecordExporter] = [
    LanguageModeling(),
    PromptOnly(),
    PromptCompletion(),
    PreferencePairs(),
    UnpairedPreference(),
    StepwiseSupervision(),
]
