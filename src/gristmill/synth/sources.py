"""Prompts from records of any kind: what a teacher answers and a judge reads.

- conversation: the messages up to the last user turn (a trailing answer is dropped);
- preference: its prompt; eval_item: its input; document: its text as a user turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gristmill.models.protocols import ChatMessage
from gristmill.records.kinds import (
    Conversation,
    Document,
    EvalItem,
    Message,
    Preference,
    RecordBase,
    TaskCategory,
)
from gristmill.store import Version
from gristmill.synth.runner import SynthError


@dataclass
class PromptItem:
    id: str
    messages: list[Message]  # ends with a user turn
    system: str | None = None
    task_category: TaskCategory | None = None
    domain: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def instruction(self) -> str:
        """The last user turn: what self-instruct and evol-instruct work on."""
        return self.messages[-1].content


def prompt_of(record: RecordBase) -> PromptItem | None:
    """The record's prompt, or None when it has no user turn to answer."""
    cat, dom = record.task_category, record.domain
    if isinstance(record, Conversation):
        last_user = max((i for i, m in enumerate(record.messages) if m.role == "user"), default=-1)
        if last_user < 0:
            return None
        return PromptItem(record.id, record.messages[: last_user + 1], record.system, cat, dom)
    if isinstance(record, Preference):
        if record.prompt[-1].role != "user":
            return None
        return PromptItem(record.id, list(record.prompt), record.system, cat, dom)
    if isinstance(record, EvalItem):
        return PromptItem(record.id, [Message(role="user", content=record.input)], None, cat, dom)
    if isinstance(record, Document):
        return PromptItem(record.id, [Message(role="user", content=record.text)], None, cat, dom)
    return None


def iter_prompts(version: Version, limit: int | None = None) -> Iterator[PromptItem | str]:
    """Each record's prompt, or its id when it has none (the caller counts those)."""
    for n, record in enumerate(version.iter_records()):
        if limit is not None and n >= limit:
            return
        item = prompt_of(record)
        yield item if item is not None else record.id


def load_prompts(version: Version, limit: int | None = None) -> tuple[list[PromptItem], list[str]]:
    items: list[PromptItem] = []
    skipped: list[str] = []
    for x in iter_prompts(version, limit):
        if isinstance(x, str):
            skipped.append(x)
        else:
            items.append(x)
    if not items:
        raise SynthError(f"{version.ref} has no record with a user turn to use as a prompt")
    return items, skipped


def chat(messages: list[Message], system: str | None = None) -> list[ChatMessage]:
    """Messages as the backends take them (role and content only)."""
    out: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    out.extend({"role": m.role, "content": m.content} for m in messages)
    return out


def render_prompt(messages: list[Message]) -> str:
    """A prompt as plain text for a judge: a single turn is itself, more are labelled."""
    if len(messages) == 1:
        return messages[0].content
    return "\n\n".join(f"{m.role.upper()}: {m.content}" for m in messages)
