"""Chat and instruction formats that become ``conversation`` records.

OpenAI ``messages`` (and TRL conversational language modeling), ShareGPT (with
glaive-style tool calls), Alpaca (with LLaMA-Factory ``history``), LIMA turn lists,
and TRL prompt-completion / prompt-only. Message parsing lives in ``messages.py``;
this module decides which rows belong to which family and what counts as a bad row.

Detection keeps clear of the preference family: rows carrying any of
:data:`PREFERENCE_KEYS` (KTO ``label``, DPO ``chosen``/``rejected``, stepwise
``completions``/``labels``) score 0 here, so the preference formats take them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from gristmill.io.formats.base import (
    Format,
    RowContext,
    RowError,
    is_object_list,
    require_list,
    require_str,
)
from gristmill.io.formats.messages import (
    Message,
    assistant,
    parse_openai_messages,
    parse_sharegpt,
    split_system,
    tool_call_row,
    user,
)
from gristmill.records.kinds import Kind

PREFERENCE_KEYS = frozenset({"label", "labels", "chosen", "rejected", "completions", "kto_tag"})
"""Keys that mark a row as preference data (TRL preference / unpaired / stepwise, KTO)."""

RowScore = Callable[[dict[str, Any]], float]


# -- detection helpers --------------------------------------------------------------------


def _mean_score(sample: list[dict[str, Any]], score_row: RowScore) -> float:
    """Average per-row score; 0 when any row carries a preference key."""
    if not sample or any(not PREFERENCE_KEYS.isdisjoint(row) for row in sample):
        return 0.0
    return sum(score_row(row) for row in sample) / len(sample)


def _signature(row: dict[str, Any], exact: Iterable[str], score: float, loose: float) -> float:
    """``score`` when the row's keys are within the format's own signature, else ``loose``
    (the extra keys will land in ``meta``, but another format may fit better)."""
    return score if set(row) <= set(exact) else loose


# -- conversion helpers -------------------------------------------------------------------


def _check_text(messages: list[Message], field: str, text_key: str) -> None:
    """Reject messages with nothing in them: no text, no tool call, no reasoning.

    Tool results may be empty (a tool can return nothing) and so may a leading system
    prompt (it is dropped by :func:`_finish`).
    """
    for i, msg in enumerate(messages):
        if msg["role"] == "tool" or (i == 0 and msg["role"] == "system"):
            continue
        if not msg["content"].strip() and not msg["tool_calls"] and not msg["reasoning"]:
            raise RowError("empty text", f"{field}[{i}].{text_key}")


def _finish(
    messages: list[Message], field: str, system: str | None = None
) -> tuple[str | None, list[Message]]:
    """Lift a leading system turn into the record's ``system`` (an empty one is
    dropped) and make sure a turn is left. A row-level ``system`` wins; a system turn
    that also leads the conversation then stays a message, so nothing is lost."""
    lifted, rest = split_system(messages)
    if lifted is not None and not lifted.strip():
        lifted = None
    if system and system.strip():
        if lifted is not None:
            rest = messages
        lifted = system
    if not rest:
        raise RowError("no messages besides the system prompt", field)
    return lifted, rest


def _pop_system(row: dict[str, Any]) -> str | None:
    """Optional row-level ``system`` string."""
    value = row.pop("system", None)
    if value is None or isinstance(value, str):
        return value
    raise RowError(f"expected a string, got {type(value).__name__}", "system")


def _pop_tools(row: dict[str, Any]) -> str | None:
    """Optional ``tools`` (a list, or a JSON string of one) → JSON text; empty → None."""
    if "tools" not in row:
        return None
    value = row.pop("tools")
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"tools is not JSON: {exc}", "tools") from exc
    if value is None:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowError(f"tools must be a list, got {type(value).__name__}", "tools")
    return orjson.dumps(value).decode() if value else None


def _split_tool_call_parts(raw: list[Any], field: str) -> tuple[list[Any], dict[int, list[Any]]]:
    """Take LLaMA-Factory ``{"type": "tool_call", "value": "<json>"}`` content parts out
    of each message, so they become tool calls instead of text.

    Returns the messages without those parts and, per message index, the parsed calls.
    Messages without such parts are passed through untouched.
    """
    cleaned: list[Any] = []
    calls: dict[int, list[Any]] = {}
    for i, msg in enumerate(raw):
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, list) or not any(
            isinstance(p, dict) and p.get("type") == "tool_call" for p in content
        ):
            cleaned.append(msg)
            continue
        parts: list[Any] = []
        for j, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "tool_call"):
                parts.append(part)
                continue
            where = f"{field}[{i}].content[{j}]"
            value = part.get("value", part.get("text"))
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise RowError(f"tool call is not JSON: {exc}", where) from exc
            calls.setdefault(i, []).append(tool_call_row(value, where))
        cleaned.append({**msg, "content": parts})
    return cleaned, calls


def _openai_messages(value: Any, field: str) -> list[Message]:
    """OpenAI-style messages, with tool-call content parts and ShareGPT-shaped turns
    (``from``/``value`` under a ``messages`` key) accepted too."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and "from" in m and "role" not in m for m in value)
    ):
        messages = parse_sharegpt(value, field)
        _check_text(messages, field, "value")
        return messages
    if not isinstance(value, list):
        raise RowError(f"expected a list of messages, got {type(value).__name__}", field)
    cleaned, calls = _split_tool_call_parts(value, field)
    messages = parse_openai_messages(cleaned, field)
    for i, extra in calls.items():
        messages[i]["tool_calls"] = [*(messages[i]["tool_calls"] or []), *extra]
    _check_text(messages, field, "content")
    return messages


def _trl_side(row: dict[str, Any], key: str) -> str | list[Any]:
    """Pop a TRL ``prompt``/``completion`` value: a string or a list of messages."""
    if key not in row:
        raise RowError("missing required field", key)
    value = row.pop(key)
    if isinstance(value, str):
        if not value.strip():
            raise RowError("empty text", key)
        return value
    if isinstance(value, list):
        if not value:
            raise RowError("empty list", key)
        return value
    raise RowError(f"expected a string or a list of messages, got {type(value).__name__}", key)


# -- formats ------------------------------------------------------------------------------


class OpenAIChat(Format):
    """``{"messages": [{role, content, ...}], "tools"?}``: OpenAI chat fine-tuning, TRL
    conversational language modeling, LLaMA-Factory content-part messages (``reasoning``
    parts become the message's reasoning, ``tool_call`` parts its tool calls)."""

    name = "openai"
    kind = Kind.CONVERSATION
    description = "OpenAI chat messages (also TRL conversational language modeling)"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            msgs = row.get("messages")
            if is_object_list(msgs, "role"):
                base = 1.0
            elif is_object_list(msgs, "from"):
                base = 0.7  # ShareGPT turns under a `messages` key
            else:
                return 0.0
            return _signature(row, ("messages", "tools"), base, 0.8 * base)

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        messages = _openai_messages(require_list(row, "messages"), "messages")
        system, rest = _finish(messages, "messages")
        return {"system": system, "messages": rest, "tools": _pop_tools(row)}


class ShareGPT(Format):
    """``{"conversations": [{"from", "value"}], "system"?, "tools"?}``; glaive/LLaMA-Factory
    ``function_call`` turns become assistant tool calls, ``observation`` turns tool
    results. A source ``id`` (and ``model``) is left in the row for the engine."""

    name = "sharegpt"
    kind = Kind.CONVERSATION
    description = "ShareGPT conversations (from/value turns), incl. glaive tool calls"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            turns = row.get("conversations")
            if not (is_object_list(turns, "from") or is_object_list(turns, "role")):
                return 0.0
            return _signature(row, ("conversations", "system", "tools", "id", "model"), 1.0, 0.8)

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        messages = parse_sharegpt(require_list(row, "conversations"), "conversations")
        _check_text(messages, "conversations", "value")
        system, rest = _finish(messages, "conversations", _pop_system(row))
        return {"system": system, "messages": rest, "tools": _pop_tools(row)}


class Alpaca(Format):
    """``{"instruction", "input"?, "output", "system"?, "history"?}``.

    The user turn is ``instruction + "\\n\\n" + input`` when ``input`` is non-empty;
    the raw input is also kept as ``meta["alpaca_input"]`` so an exporter can split it
    back out. ``history`` is a list of earlier ``[user, assistant]`` pairs
    (LLaMA-Factory), which become turns before the final one.
    """

    name = "alpaca"
    kind = Kind.CONVERSATION
    description = "Alpaca instruction/input/output (with LLaMA-Factory history)"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            if not (isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str)):
                return 0.0
            return _signature(
                row, ("instruction", "input", "output", "system", "history"), 1.0, 0.7
            )

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        instruction = require_str(row, "instruction")
        extra = row.pop("input", None)
        if extra is None:
            extra = ""
        if not isinstance(extra, str):
            raise RowError(f"expected a string, got {type(extra).__name__}", "input")
        output = require_str(row, "output")
        system = _pop_system(row)
        messages = _history(row.pop("history", None))
        prompt = f"{instruction}\n\n{extra}" if extra else instruction
        messages += [user(prompt), assistant(output)]
        out: dict[str, Any] = {
            "system": system if system and system.strip() else None,
            "messages": messages,
        }
        if extra:
            out["meta"] = {"alpaca_input": extra}
        return out


def _history(value: Any) -> list[Message]:
    """LLaMA-Factory ``history``: ``[[user, assistant], ...]`` → messages."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(
            f"expected a list of [user, assistant] pairs, got {type(value).__name__}", "history"
        )
    out: list[Message] = []
    for i, pair in enumerate(value):
        where = f"history[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise RowError("expected a [user, assistant] pair", where)
        for j, text in enumerate(pair):
            if not isinstance(text, str):
                raise RowError(f"expected a string, got {type(text).__name__}", f"{where}[{j}]")
            if not text.strip():
                raise RowError("empty text", f"{where}[{j}]")
        out += [user(pair[0]), assistant(pair[1])]
    return out


class Lima(Format):
    """``{"conversations": ["user text", "assistant text", ...]}``: LIMA's plain string
    turns, alternating and user first."""

    name = "lima"
    kind = Kind.CONVERSATION
    description = "LIMA conversations: alternating user/assistant strings"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            turns = row.get("conversations")
            if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
                return 0.0
            return _signature(row, ("conversations", "source", "id"), 1.0, 0.8)

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        turns = require_list(row, "conversations")
        messages: list[Message] = []
        for i, text in enumerate(turns):
            where = f"conversations[{i}]"
            if not isinstance(text, str):
                raise RowError(f"expected a string, got {type(text).__name__}", where)
            if not text.strip():
                raise RowError("empty text", where)
            messages.append(user(text) if i % 2 == 0 else assistant(text))
        return {"system": None, "messages": messages}


class SelfInstructSeed(Format):
    """Self-Instruct seed tasks ``{"id", "name", "instruction", "instances": [{"input",
    "output"}], "is_classification"}``: the first instance becomes the conversation
    (instruction, a blank line and the input, then the output); further instances
    stay in ``meta``. ``is_classification`` sets the task category."""

    name = "self-instruct-seed"
    kind = Kind.CONVERSATION
    description = "Self-Instruct seed tasks: instruction + instances[input, output]"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            if not (
                isinstance(row.get("instruction"), str)
                and is_object_list(row.get("instances"), "output")
            ):
                return 0.0
            return _signature(
                row, ("id", "name", "instruction", "instances", "is_classification"), 1.0, 0.8
            )

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        instruction = require_str(row, "instruction")
        instances = require_list(row, "instances")
        first = instances[0]
        if not isinstance(first, dict):
            raise RowError("instance must be an object", "instances[0]")
        extra = first.get("input") or ""
        output = first.get("output")
        if not isinstance(extra, str):
            raise RowError(f"expected a string, got {type(extra).__name__}", "instances[0].input")
        if not isinstance(output, str) or not output.strip():
            raise RowError("empty text", "instances[0].output")
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        out: dict[str, Any] = {"system": None, "messages": [user(prompt), assistant(output)]}
        meta: dict[str, Any] = {}
        if extra.strip():
            meta["alpaca_input"] = extra
        if len(instances) > 1:
            meta["more_instances"] = instances[1:]
        if meta:
            out["meta"] = meta
        if row.pop("is_classification", None) is True:
            out["task_category"] = "classification"
        return out


class TRLPromptCompletion(Format):
    """TRL prompt-completion: ``{"prompt": str, "completion": str}`` (a user turn and an
    assistant turn) or conversational ``{"prompt": [messages], "completion": [messages]}``
    (prompt messages, then completion messages)."""

    name = "trl-prompt-completion"
    kind = Kind.CONVERSATION
    description = "TRL prompt-completion, standard or conversational"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            prompt, completion = row.get("prompt"), row.get("completion")
            if isinstance(prompt, str) and isinstance(completion, str):
                base = 0.95
            elif is_object_list(prompt, "role") and is_object_list(completion, "role"):
                base = 1.0
            else:
                return 0.0
            return _signature(row, ("prompt", "completion", "tools"), base, 0.6)

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        prompt = _trl_side(row, "prompt")
        completion = _trl_side(row, "completion")
        if isinstance(prompt, str) != isinstance(completion, str):
            want = "a string" if isinstance(prompt, str) else "a list of messages"
            raise RowError(f"expected {want}, like prompt", "completion")
        if isinstance(prompt, str) and isinstance(completion, str):
            messages = [user(prompt), assistant(completion)]
        else:
            messages = [
                *_openai_messages(prompt, "prompt"),
                *_openai_messages(completion, "completion"),
            ]
        system, rest = _finish(messages, "prompt")
        return {"system": system, "messages": rest, "tools": _pop_tools(row)}


class TRLPromptOnly(Format):
    """TRL prompt-only: ``{"prompt": str}`` (one user turn) or ``{"prompt": [messages]}``;
    a conversation awaiting its response (e.g. for generation or online RL)."""

    name = "trl-prompt-only"
    kind = Kind.CONVERSATION
    description = "TRL prompt-only, standard or conversational"

    def detect(self, sample: list[dict[str, Any]], file: Path) -> float:
        def score(row: dict[str, Any]) -> float:
            prompt = row.get("prompt")
            if "completion" in row or not (
                isinstance(prompt, str) or is_object_list(prompt, "role")
            ):
                return 0.0
            return _signature(row, ("prompt", "tools"), 0.9, 0.4)

        return _mean_score(sample, score)

    def convert(self, row: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
        prompt = _trl_side(row, "prompt")
        messages = [user(prompt)] if isinstance(prompt, str) else _openai_messages(prompt, "prompt")
        system, rest = _finish(messages, "prompt")
        return {"system": system, "messages": rest, "tools": _pop_tools(row)}


FORMATS: list[Format] = [
    OpenAIChat(),
    ShareGPT(),
    Alpaca(),
    Lima(),
    SelfInstructSeed(),
    TRLPromptCompletion(),
    TRLPromptOnly(),
]
