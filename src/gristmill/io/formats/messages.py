"""Messages in the shapes chat datasets use (OpenAI, ShareGPT, plain turn lists),
normalised to the storage form of :class:`gristmill.records.Message`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gristmill.io.formats.base import RowError

ROLE_ALIASES: dict[str, str] = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "function_call": "assistant",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
}

Message = dict[str, Any]


def message_row(
    role: str,
    content: str,
    *,
    name: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
    reasoning: str | None = None,
    weight: float | None = None,
) -> Message:
    """A message in storage form (every field present, absent ones None)."""
    return {
        "role": role,
        "content": content,
        "name": name,
        "tool_calls": tool_calls,
        "tool_call_id": tool_call_id,
        "reasoning": reasoning,
        "weight": weight,
    }


def normalise_role(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RowError(f"role must be a string, got {type(value).__name__}", field)
    role = ROLE_ALIASES.get(value.strip().lower())
    if role is None:
        raise RowError(f"unknown role {value!r}", field)
    return role


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def tool_call_row(call: Any, field: str) -> dict[str, Any]:
    """OpenAI ``{"id", "type": "function", "function": {"name", "arguments"}}`` or a
    flat ``{"name", "arguments"}`` → storage form."""
    if not isinstance(call, dict):
        raise RowError(f"tool call must be an object, got {type(call).__name__}", field)
    fn = call.get("function", call)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise RowError("tool call has no function name", field)
    return {
        "id": call.get("id") if isinstance(call.get("id"), str) else None,
        "name": fn["name"],
        "arguments": _json_text(fn.get("arguments", {})),
    }


def content_text(value: Any, field: str) -> tuple[str, str | None]:
    """Message content → (text, reasoning). Accepts a string or a list of parts
    (``{"type": "text", "text"|"value": ...}``, ``{"type": "reasoning", ...}``)."""
    if isinstance(value, str):
        return value, None
    if value is None:
        return "", None
    if isinstance(value, list):
        texts: list[str] = []
        reasoning: list[str] = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise RowError("content part must be an object or string", f"{field}[{i}]")
            text = part.get("text", part.get("value"))
            if not isinstance(text, str):
                raise RowError("content part has no text", f"{field}[{i}]")
            (reasoning if part.get("type") in ("reasoning", "thinking") else texts).append(text)
        return "".join(texts), ("".join(reasoning) if reasoning else None)
    raise RowError(
        f"content must be a string or a list of parts, got {type(value).__name__}", field
    )


def split_system(messages: list[Message]) -> tuple[str | None, list[Message]]:
    """Lift a leading system message into the record's ``system`` field."""
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def parse_openai_messages(value: Any, field: str) -> list[Message]:
    """OpenAI chat ``messages`` (also TRL conversational and LLaMA-Factory's
    content-part lists) → storage messages."""
    if not isinstance(value, list):
        raise RowError(f"expected a list of messages, got {type(value).__name__}", field)
    out: list[Message] = []
    for i, msg in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict):
            raise RowError(f"message must be an object, got {type(msg).__name__}", where)
        if "role" not in msg:
            raise RowError("missing required field", f"{where}.role")
        role = normalise_role(msg["role"], f"{where}.role")
        text, reasoning = content_text(msg.get("content"), f"{where}.content")
        raw_calls = msg.get("tool_calls")
        calls = None
        if raw_calls:
            if not isinstance(raw_calls, list):
                raise RowError("tool_calls must be a list", f"{where}.tool_calls")
            calls = [tool_call_row(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(raw_calls)]
        weight = msg.get("weight", msg.get("loss_weight"))
        if weight is not None and not isinstance(weight, int | float):
            raise RowError("weight must be a number", f"{where}.weight")
        name = msg.get("name")
        call_id = msg.get("tool_call_id")
        out.append(
            message_row(
                role,
                text,
                name=name if isinstance(name, str) else None,
                tool_calls=calls,
                tool_call_id=call_id if isinstance(call_id, str) else None,
                reasoning=msg.get("reasoning_content")
                if isinstance(msg.get("reasoning_content"), str)
                else reasoning,
                weight=None if weight is None else float(weight),
            )
        )
    return out


def parse_sharegpt(value: Any, field: str) -> list[Message]:
    """ShareGPT ``conversations`` of ``{"from", "value"}``; ``function_call`` turns
    become assistant tool calls and ``observation`` turns tool results."""
    if not isinstance(value, list):
        raise RowError(f"expected a list of turns, got {type(value).__name__}", field)
    out: list[Message] = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RowError(f"turn must be an object, got {type(turn).__name__}", where)
        speaker = turn.get("from", turn.get("role"))
        if speaker is None:
            raise RowError("missing required field", f"{where}.from")
        role = normalise_role(speaker, f"{where}.from")
        text = turn.get("value", turn.get("content"))
        if not isinstance(text, str):
            raise RowError("turn text must be a string", f"{where}.value")
        if str(speaker).lower() == "function_call":
            try:
                call = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise RowError(f"function_call is not JSON: {exc}", f"{where}.value") from exc
            out.append(message_row("assistant", "", tool_calls=[tool_call_row(call, where)]))
        else:
            out.append(message_row(role, text))
    return out


def user(content: str) -> Message:
    return message_row("user", content)


def assistant(content: str) -> Message:
    return message_row("assistant", content)


def require_nonempty(messages: list[Message], field: str) -> list[Message]:
    """Reject a message with neither text nor tool calls, naming ``field[i].content``."""
    for i, msg in enumerate(messages):
        if not msg["content"].strip() and not msg["tool_calls"]:
            raise RowError("empty text", f"{field}[{i}].content")
    return messages


def parse_one(parse: Callable[[Any, str], list[Message]], value: Any, field: str) -> Message:
    """Parse a single message with a list parser (``parse_openai_messages``,
    ``parse_sharegpt``), naming errors ``field`` rather than ``field[0]``."""
    try:
        return parse([value], field)[0]
    except RowError as exc:
        where, first = exc.field or field, f"{field}[0]"
        if where.startswith(first):
            where = field + where[len(first) :]
        raise RowError(exc.reason, where) from exc
