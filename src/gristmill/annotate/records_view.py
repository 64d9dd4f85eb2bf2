"""The record view: one JSON shape (the app contract's ``RecordView``) that the
annotation pages render, built from any record kind so the UI needs no per-kind code."""

from __future__ import annotations

from typing import Any

import orjson

from gristmill.annotate.questions import Question, validate_answer
from gristmill.records.kinds import (
    AgentTrace,
    Conversation,
    Document,
    EvalItem,
    Media,
    Message,
    Preference,
    RecordBase,
)


def _message(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "name": m.name,
        "tool_calls": (
            [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
            if m.tool_calls
            else None
        ),
        "tool_call_id": m.tool_call_id,
    }


def _plain(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "name": None,
        "tool_calls": None,
        "tool_call_id": None,
        **extra,
    }


def _looks_markdown(text: str) -> bool:
    return any(tok in text for tok in ("\n#", "```", "\n- ", "\n* ", "**", "\n1. ")) or (
        text.startswith("#")
    )


def _trace_messages(trace: AgentTrace) -> list[dict[str, Any]]:
    """Agent steps as chat messages: plans and messages as turns, tool calls as an
    assistant turn carrying ``tool_calls``, tool results as ``tool`` turns."""
    out: list[dict[str, Any]] = [_plain("user", trace.task)]
    for step in trace.steps:
        if step.type == "tool_call":
            call = {"id": step.call_id, "name": step.tool_name or "?", "arguments": step.arguments}
            out.append(_plain("assistant", step.content or "", tool_calls=[call]))
        elif step.type == "tool_result":
            out.append(
                {
                    **_plain("tool", step.content or "", tool_call_id=step.call_id),
                    "name": step.tool_name,
                }
            )
        else:
            role = (
                step.role if step.role in ("system", "user", "assistant", "tool") else "assistant"
            )
            prefix = "(plan) " if step.type == "plan" else ""
            out.append(_plain(role, prefix + (step.content or "")))
    return out


def _empty(record: RecordBase, kind: str) -> dict[str, Any]:
    meta = dict(record.meta)
    if record.domain:
        meta.setdefault("domain", record.domain)
    if record.task_category:
        meta.setdefault("task_category", str(record.task_category))
    return {
        "id": record.id,
        "kind": kind,
        "text": None,
        "format": "text",
        "system": None,
        "messages": None,
        "prompt": None,
        "responses": None,
        "meta": meta,
    }


def record_view(record: RecordBase) -> dict[str, Any]:
    """Build the RecordView JSON for ``record`` (any kind)."""
    if isinstance(record, Document):
        view = _empty(record, "document")
        view["text"] = record.text
        view["format"] = "markdown" if _looks_markdown(record.text) else "text"
        for key in ("title", "url", "language"):
            if getattr(record, key):
                view["meta"].setdefault(key, getattr(record, key))
        return view
    if isinstance(record, Conversation):
        view = _empty(record, "conversation")
        view["system"] = record.system
        view["messages"] = [_message(m) for m in record.messages]
        view["format"] = "markdown"
        if record.tools:
            view["meta"].setdefault("tools", orjson.loads(record.tools))
        return view
    if isinstance(record, Preference):
        view = _empty(record, "preference")
        view["system"] = record.system
        view["prompt"] = [_message(m) for m in record.prompt]
        view["format"] = "markdown"
        view["responses"] = [
            {
                "content": "\n\n".join(m.content for m in c.messages if m.role == "assistant")
                or c.messages[-1].content,
                "messages": [_message(m) for m in c.messages],
                "origin": c.origin or (f"model:{c.model}" if c.model else None),
            }
            for c in record.candidates
        ]
        return view
    if isinstance(record, EvalItem):
        view = _empty(record, "eval_item")
        view["text"] = record.input
        view["format"] = "markdown" if _looks_markdown(record.input) else "text"
        if record.choices:
            view["meta"]["choices"] = record.choices
        if record.references:
            view["meta"]["references"] = record.references
        if record.answer_index is not None:
            view["meta"]["answer_index"] = record.answer_index
        return view
    if isinstance(record, AgentTrace):
        view = _empty(record, "agent_trace")
        view["messages"] = _trace_messages(record)
        view["format"] = "markdown"
        for key in ("outcome", "reward"):
            if getattr(record, key) is not None:
                view["meta"][key] = getattr(record, key)
        if record.failure_labels:
            view["meta"]["failure_labels"] = record.failure_labels
        return view
    if isinstance(record, Media):
        view = _empty(record, "media")
        view["text"] = "\n".join(t.text for t in record.transcripts) or None
        view["meta"].update({"uri": record.uri, "media_type": record.media_type})
        if record.captions:
            view["meta"]["captions"] = record.captions
        return view
    raise TypeError(f"no record view for {type(record).__name__}")


def annotated_text(view: dict[str, Any], field: str = "text") -> str:
    """The text a spans question marks up: a view field, or the last message's."""
    if field == "text" and view.get("text"):
        return str(view["text"])
    value = view.get(field)
    if isinstance(value, str):
        return value
    messages = view.get("messages") or []
    if messages:
        return str(messages[-1]["content"])
    return ""


def response_count(view: dict[str, Any]) -> int | None:
    responses = view.get("responses")
    return len(responses) if responses is not None else None


def validate_in_view(q: Question, value: Any, view: dict[str, Any]) -> Any:
    """``validate_answer`` against the record ``view`` shows: its response count and
    the text the question marks up; raises AnswerError."""
    return validate_answer(
        q, value, response_count(view), annotated_text(view, getattr(q, "field", "text"))
    )


def prompt_text(view: dict[str, Any], limit: int = 4000) -> str:
    """Plain text of what the record shows, for a model suggestion prompt."""
    parts: list[str] = []
    if view.get("system"):
        parts.append(f"System: {view['system']}")
    if view.get("text"):
        parts.append(str(view["text"]))
    for m in view.get("messages") or view.get("prompt") or []:
        parts.append(f"{m['role'].capitalize()}: {m['content']}")
    for i, r in enumerate(view.get("responses") or []):
        parts.append(f"Response {chr(65 + i)}: {r['content']}")
    text = "\n\n".join(parts)
    return text if len(text) <= limit else text[: limit // 2] + "\n…\n" + text[-limit // 2 :]
