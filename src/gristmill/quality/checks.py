"""Per-kind rules: what a record's main text is, which fields are required or
expected, which checks make it an error, and which consistency problems it has.

Everything works on storage rows (plain dicts), so records that fail validation are
still measured; validation itself is ``gristmill.records.from_row``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from gristmill.quality.text import (
    MISMATCH_CHARS,
    MISMATCH_MIN_CONFIDENCE,
    MISMATCH_MIN_LETTERS,
    detect_language,
    dicts_of,
    digest,
    letters,
    normalize,
    str_of,
    strs_of,
)
from gristmill.records.arrow import from_row
from gristmill.records.kinds import Kind

Row = dict[str, Any]

# -- reasons (the exact strings appear in reports and docs/quality.md) ---------------------

NO_ASSISTANT = "no assistant turn"
NO_USER = "no user turn"
EMPTY_ASSISTANT = "empty assistant reply"
BLANK_TEXT = "blank text"
CANDIDATES_IDENTICAL = "candidates all identical"
SINGLE_UNLABELLED = "single candidate without a label or rating"
ANSWER_OUT_OF_RANGE = "answer_index out of range"
CHOICES_NO_ANSWER = "choices but no answer"
NO_REFERENCE = "no reference answer"
BAD_GRADER = "grader is not valid JSON"
NO_STEPS = "no steps"
BAD_BOX = "box with non-positive size"
BAD_SEGMENT = "segment ends before it starts"

ASSISTANT_FIRST = "assistant turn first"
SAME_ROLE_TWICE = "two consecutive same-role turns"
TOOL_WITHOUT_CALL = "tool result without a preceding tool call"
SYSTEM_NOT_FIRST = "system message not first"
LANGUAGE_MISMATCH = "language mismatch between user and assistant turns"

CONFLICT_REASONS: dict[Kind, str] = {
    Kind.EVAL_ITEM: "same input, different references",
    Kind.PREFERENCE: "same prompt and candidates, different rankings",
    Kind.MEDIA: "same uri, different labels",
}
"""Kinds where records sharing a key but differing in answer are a consistency problem.
For conversations the same grouping is only reported ("prompts with several answers"):
several answers to one prompt are normal in SFT data."""

# graders that compare against a reference, so an item without one cannot be scored
REFERENCE_GRADERS = frozenset({"exact_match", "f1", "bleu", "rouge", "includes", "regex"})


# -- small accessors -------------------------------------------------------------------


def filled(value: Any) -> bool:
    """Present and non-empty: not None, not blank text, not an empty list or dict."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict | tuple):
        return bool(value)
    return True


def _join(texts: list[str]) -> str:
    return "\n\n".join(t for t in texts if t)


def _message_filled(message: Row) -> bool:
    return filled(message.get("content")) or filled(message.get("tool_calls"))


def _candidate_text(candidate: Row) -> str:
    return _join([str_of(m.get("content")) for m in dicts_of(candidate.get("messages"))])


# -- completeness ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """A field counted by completeness; ``present`` decides presence for one row."""

    name: str
    required: bool
    description: str
    present: Callable[[Row], bool]


def _has(name: str) -> Callable[[Row], bool]:
    return lambda row: filled(row.get(name))


COMMON_FIELDS = [
    FieldSpec("id", True, "record id", _has("id")),
    FieldSpec("origin", True, "lineage: import:, human:, model:, synthetic:", _has("origin")),
    FieldSpec("source", False, "file or system the record came from", _has("source")),
    FieldSpec(
        "created_at", False, "timestamp (source's when the import found one)", _has("created_at")
    ),
]

KIND_FIELDS: dict[Kind, list[FieldSpec]] = {
    Kind.DOCUMENT: [
        FieldSpec("text", True, "non-blank text", _has("text")),
        FieldSpec("title", False, "title", _has("title")),
        FieldSpec("url", False, "URL", _has("url")),
    ],
    Kind.CONVERSATION: [
        FieldSpec("messages", True, "at least one message", _has("messages")),
        FieldSpec(
            "messages[].content",
            True,
            "every message has content or tool calls",
            lambda r: (
                bool(dicts_of(r.get("messages")))
                and all(_message_filled(m) for m in dicts_of(r.get("messages")))
            ),
        ),
        FieldSpec("task_category", False, "InstructGPT task category", _has("task_category")),
    ],
    Kind.PREFERENCE: [
        FieldSpec("prompt", True, "at least one prompt message", _has("prompt")),
        FieldSpec("candidates", True, "at least one candidate", _has("candidates")),
        FieldSpec(
            "candidates[].messages",
            True,
            "every candidate has non-empty messages",
            lambda r: (
                bool(dicts_of(r.get("candidates")))
                and all(filled(_candidate_text(c)) for c in dicts_of(r.get("candidates")))
            ),
        ),
        FieldSpec(
            "candidates[].rank|ratings|label",
            False,
            "every candidate carries a preference signal",
            lambda r: (
                bool(dicts_of(r.get("candidates")))
                and all(
                    c.get("rank") is not None
                    or filled(c.get("ratings"))
                    or c.get("label") is not None
                    for c in dicts_of(r.get("candidates"))
                )
            ),
        ),
        FieldSpec("task_category", False, "InstructGPT task category", _has("task_category")),
    ],
    Kind.EVAL_ITEM: [
        FieldSpec("input", True, "non-blank input", _has("input")),
        FieldSpec(
            "references|answer_index",
            False,
            "a reference answer or a chosen choice",
            lambda r: (
                bool(strs_of(r.get("references")))
                or (filled(r.get("choices")) and r.get("answer_index") is not None)
            ),
        ),
        FieldSpec("tags", False, "tags (subject, split...)", _has("tags")),
    ],
    Kind.AGENT_TRACE: [
        FieldSpec("task", True, "non-blank task", _has("task")),
        FieldSpec("steps", True, "at least one step", _has("steps")),
        FieldSpec("outcome", False, "outcome (success, failure...)", _has("outcome")),
        FieldSpec("reward", False, "reward", _has("reward")),
    ],
    Kind.MEDIA: [
        FieldSpec("uri", True, "non-blank URI", _has("uri")),
        FieldSpec(
            "media_type",
            False,
            "image, audio or video (not other)",
            lambda r: filled(r.get("media_type")) and r.get("media_type") != "other",
        ),
        FieldSpec(
            "annotations",
            False,
            "labels, captions, boxes, polygons, segments or transcripts",
            lambda r: any(
                filled(r.get(k))
                for k in ("labels", "captions", "boxes", "polygons", "segments", "transcripts")
            ),
        ),
    ],
}


def field_specs(kind: Kind) -> list[FieldSpec]:
    return COMMON_FIELDS + KIND_FIELDS[kind]


# -- per-record facts ------------------------------------------------------------------


@dataclass
class Facts:
    """What one record contributes to the report."""

    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # consistency problems of this record
    main_text: str = ""
    parts: list[tuple[str, str]] = field(default_factory=list)  # (part, text) for lengths
    structure: dict[str, int] = field(default_factory=dict)
    group_key: int | None = None  # same prompt / input / uri
    group_answer: int | None = None  # its answer / references / labels
    language_pair: str | None = None  # "en→fr" when the turns disagree


def validation_reason(kind: Kind, row: Row) -> str | None:
    """The first validation error as ``invalid <field>: <message>``, or None."""
    try:
        from_row(kind, row)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ""
        for part in first["loc"]:
            loc += "[]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        return f"invalid {loc or 'record'}: {first['msg']}"
    except (ValueError, TypeError) as exc:  # e.g. meta that is not JSON
        return f"invalid record: {type(exc).__name__}"
    return None


def role_order_problems(messages: list[Row]) -> list[str]:
    """Broken turn order: assistant first, same role twice, orphan tool result,
    system message after the start."""
    out: list[str] = []
    roles = [m.get("role") for m in messages]
    first = next((r for r in roles if r != "system"), None)
    if first == "assistant":
        out.append(ASSISTANT_FIRST)
    call_ids: set[str] = set()
    any_call = False
    previous: Any = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "system" and i > 0 and SYSTEM_NOT_FIRST not in out:
            out.append(SYSTEM_NOT_FIRST)
        if role in ("user", "assistant") and role == previous and SAME_ROLE_TWICE not in out:
            out.append(SAME_ROLE_TWICE)
        if role == "assistant":
            for call in dicts_of(message.get("tool_calls")):
                any_call = True
                if call.get("id"):
                    call_ids.add(str(call["id"]))
        if role == "tool" and TOOL_WITHOUT_CALL not in out:
            call_id = message.get("tool_call_id")
            if not any_call or (call_id and call_ids and call_id not in call_ids):
                out.append(TOOL_WITHOUT_CALL)
        previous = role
    return out


def _language_pair(user: str, assistant: str) -> str | None:
    """The pair ("en→fr") when the user and assistant texts are both clearly in
    different languages, judged on the first ``MISMATCH_CHARS`` characters of each."""
    user, assistant = user[:MISMATCH_CHARS], assistant[:MISMATCH_CHARS]
    if letters(user) < MISMATCH_MIN_LETTERS or letters(assistant) < MISMATCH_MIN_LETTERS:
        return None
    user_lang, user_conf = detect_language(user, MISMATCH_CHARS)
    asst_lang, asst_conf = detect_language(assistant, MISMATCH_CHARS)
    if min(user_conf, asst_conf) < MISMATCH_MIN_CONFIDENCE or user_lang == asst_lang:
        return None
    return f"{user_lang}→{asst_lang}"


def _conversation(row: Row, facts: Facts, valid: bool) -> None:
    messages = dicts_of(row.get("messages"))
    roles = [m.get("role") for m in messages]
    contents = [str_of(m.get("content")) for m in messages]
    facts.main_text = _join([c for r, c in zip(roles, contents, strict=True) if r != "system"])
    system = str_of(row.get("system"))
    if system:
        facts.parts.append(("system", system))
    facts.parts.extend((str(r), c) for r, c in zip(roles, contents, strict=True))
    facts.structure["turns"] = len(messages)
    if valid:
        if "assistant" not in roles:
            facts.errors.append(NO_ASSISTANT)
        if "user" not in roles:
            facts.errors.append(NO_USER)
        if any(m.get("role") == "assistant" and not _message_filled(m) for m in messages):
            facts.errors.append(EMPTY_ASSISTANT)
    facts.problems.extend(role_order_problems(messages))
    user = _join([c for r, c in zip(roles, contents, strict=True) if r == "user"])
    assistant = _join([c for r, c in zip(roles, contents, strict=True) if r == "assistant"])
    facts.language_pair = _language_pair(user, assistant)
    if facts.language_pair:
        facts.problems.append(LANGUAGE_MISMATCH)
    # prompts with several answers: first user turn → the assistant turn after it
    first_user = next((i for i, r in enumerate(roles) if r == "user"), None)
    if first_user is not None and filled(contents[first_user]):
        reply = next(
            (i for i in range(first_user + 1, len(roles)) if roles[i] == "assistant"), None
        )
        if reply is not None and filled(contents[reply]):
            facts.group_key = digest(normalize(contents[first_user]))
            facts.group_answer = digest(normalize(contents[reply]))


def _preference(row: Row, facts: Facts, valid: bool) -> None:
    prompt = dicts_of(row.get("prompt"))
    candidates = dicts_of(row.get("candidates"))
    prompt_text = _join([str_of(m.get("content")) for m in prompt])
    texts = [_candidate_text(c) for c in candidates]
    facts.main_text = _join([prompt_text, *texts])
    facts.parts.append(("prompt", prompt_text))
    facts.parts.extend(("candidate", t) for t in texts)
    facts.structure["candidates"] = len(candidates)
    if valid:
        if len(candidates) >= 2 and len({normalize(t) for t in texts}) == 1:
            facts.errors.append(CANDIDATES_IDENTICAL)
        if len(candidates) == 1 and not (
            candidates[0].get("label") is not None or filled(candidates[0].get("ratings"))
        ):
            facts.errors.append(SINGLE_UNLABELLED)
    problems: list[str] = []
    for candidate in candidates or [{}]:
        for p in role_order_problems(prompt + dicts_of(candidate.get("messages"))):
            if p not in problems:
                problems.append(p)
    facts.problems.extend(problems)
    signals = [
        (normalize(t), c.get("rank"), c.get("label"))
        for t, c in zip(texts, candidates, strict=True)
    ]
    if prompt_text and any(rank is not None or label is not None for _, rank, label in signals):
        facts.group_key = digest([normalize(prompt_text), sorted(t for t, _, _ in signals)])
        facts.group_answer = digest(sorted(signals, key=lambda s: (s[0], str(s[1]), str(s[2]))))


def _eval_item(row: Row, facts: Facts, valid: bool) -> None:
    text = str_of(row.get("input"))
    references = strs_of(row.get("references"))
    choices = strs_of(row.get("choices"))
    answer = row.get("answer_index")
    facts.main_text = text
    facts.parts.append(("input", text))
    facts.parts.extend(("reference", r) for r in references)
    facts.parts.extend(("choice", c) for c in choices)
    in_range = isinstance(answer, int) and 0 <= answer < len(choices)
    if valid:
        if answer is not None and not in_range:
            facts.errors.append(ANSWER_OUT_OF_RANGE)
        if choices and answer is None and not references:
            facts.errors.append(CHOICES_NO_ANSWER)
        grader_type: Any = None
        try:
            grader = orjson.loads(str_of(row.get("grader")) or '{"type": "exact_match"}')
            grader_type = grader.get("type") if isinstance(grader, dict) else None
        except orjson.JSONDecodeError:
            facts.errors.append(BAD_GRADER)
        if not references and not choices and grader_type in REFERENCE_GRADERS:
            facts.errors.append(NO_REFERENCE)
    chosen = normalize(choices[answer]) if in_range and isinstance(answer, int) else None
    if filled(text) and (references or chosen is not None):
        facts.group_key = digest(normalize(text))
        facts.group_answer = digest([sorted({normalize(r) for r in references}), chosen])


def _agent_trace(row: Row, facts: Facts, valid: bool) -> None:
    task = str_of(row.get("task"))
    steps = dicts_of(row.get("steps"))
    contents = [str_of(s.get("content")) for s in steps]
    facts.main_text = _join([task, *contents])
    facts.parts.append(("task", task))
    facts.parts.extend(("step", c) for c in contents if c)
    facts.structure["steps"] = len(steps)
    if valid and not steps:
        facts.errors.append(NO_STEPS)
    call_ids: set[str] = set()
    any_call = False
    for step in steps:
        if step.get("type") == "tool_call":
            any_call = True
            if step.get("call_id"):
                call_ids.add(str(step["call_id"]))
        elif step.get("type") == "tool_result":
            call_id = step.get("call_id")
            if not any_call or (call_id and call_ids and call_id not in call_ids):
                facts.problems.append(TOOL_WITHOUT_CALL)
                break


def _media(row: Row, facts: Facts, valid: bool) -> None:
    captions = strs_of(row.get("captions"))
    transcript = " ".join(str_of(t.get("text")) for t in dicts_of(row.get("transcripts")))
    facts.main_text = _join([*captions, transcript])
    facts.parts.extend(("caption", c) for c in captions)
    if transcript:
        facts.parts.append(("transcript", transcript))
    if valid:
        boxes = dicts_of(row.get("boxes"))
        if any((b.get("width") or 0) <= 0 or (b.get("height") or 0) <= 0 for b in boxes):
            facts.errors.append(BAD_BOX)
        segments = dicts_of(row.get("segments"))
        if any((s.get("end") or 0) < (s.get("start") or 0) for s in segments):
            facts.errors.append(BAD_SEGMENT)
    labels = strs_of(row.get("labels"))
    uri = str_of(row.get("uri"))
    if uri and labels:
        facts.group_key = digest(uri)
        facts.group_answer = digest(sorted(set(labels)))


def inspect(kind: Kind, row: Row, max_chars: int = 2000) -> Facts:
    """All per-record facts of one storage row.

    A record's error reasons are its first validation error, or, when it validates,
    every kind check it fails.
    """
    facts = Facts()
    invalid = validation_reason(kind, row)
    if invalid:
        facts.errors.append(invalid)
    valid = invalid is None
    if kind is Kind.DOCUMENT:
        facts.main_text = str_of(row.get("text"))
        if valid and not facts.main_text.strip():
            facts.errors.append(BLANK_TEXT)
    elif kind is Kind.CONVERSATION:
        _conversation(row, facts, valid)
    elif kind is Kind.PREFERENCE:
        _preference(row, facts, valid)
    elif kind is Kind.EVAL_ITEM:
        _eval_item(row, facts, valid)
    elif kind is Kind.AGENT_TRACE:
        _agent_trace(row, facts, valid)
    elif kind is Kind.MEDIA:
        _media(row, facts, valid)
    return facts
