"""Preference formats: paired (DPO), unpaired (KTO), stepwise and rated rows, all
becoming ``preference`` records (a prompt plus ranked candidates).

Ranks follow :class:`~gristmill.records.Candidate`: chosen is rank 1, rejected rank 2,
equal ranks are ties. Implicit-prompt pairs (HH-RLHF transcripts, TRL implicit prompt,
LLaMA-Factory ``chosen_messages``) are split at the last user turn the two sides share,
so the prompt is stored once and the candidates hold only the responses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gristmill.io.formats.base import (
    Format,
    Row,
    RowContext,
    RowError,
    as_number,
    is_list_of,
    is_object_list,
    pop_path,
    require_bool,
    require_list,
    share_where,
)
from gristmill.io.formats.messages import (
    Message,
    message_row,
    normalise_role,
    parse_one,
    parse_openai_messages,
    parse_sharegpt,
    require_nonempty,
    split_system,
)
from gristmill.records.kinds import Kind

# -- building preference rows ----------------------------------------------------------


def candidate_row(
    messages: list[Message],
    *,
    rank: int | None = None,
    label: bool | None = None,
    step_labels: list[bool] | None = None,
    ratings: list[Row] | None = None,
    model: str | None = None,
) -> Row:
    """A candidate in storage form (every field present)."""
    return {
        "messages": messages,
        "model": model,
        "origin": None,
        "rank": rank,
        "ratings": ratings or [],
        "label": label,
        "step_labels": step_labels,
    }


def preference_row(
    prompt: list[Message], candidates: list[Row], field: str, system: str | None = None
) -> Row:
    """Lift a leading system message into ``system`` and insist a prompt is left.

    An explicit ``system`` wins; a leading system message is then kept in the prompt,
    so neither is lost."""
    lifted, rest = split_system(prompt)
    if system is None:
        system, prompt = lifted, rest
    if not prompt:
        raise RowError("no prompt before the responses", field)
    return {"system": system, "prompt": prompt, "candidates": candidates}


def messages_or_text(row: Row, key: str, role: str, field: str | None = None) -> list[Message]:
    """TRL's two forms of one field: a string (standard) is one ``role`` message, a
    message list (conversational) is parsed as OpenAI messages. Errors name ``field``
    (default: ``key``)."""
    field = field or key
    if key not in row:
        raise RowError("missing required field", field)
    value = row.pop(key)
    if isinstance(value, str):
        if not value.strip():
            raise RowError("empty text", field)
        return [message_row(role, value)]
    if isinstance(value, list):
        if not value:
            raise RowError("empty list", field)
        return require_nonempty(parse_openai_messages(value, field), field)
    raise RowError(f"expected a string or a list of messages, got {type(value).__name__}", field)


def split_shared_prefix(
    chosen: list[Message], rejected: list[Message], fields: tuple[str, str]
) -> tuple[list[Message], list[Message], list[Message]]:
    """Implicit-prompt pairs → (prompt, chosen response, rejected response).

    The prompt is every turn both sides share, backed off to before the assistant
    turns where they diverge, so each candidate starts with the assistant's answer."""
    if chosen == rejected:
        raise RowError("chosen and rejected are identical", fields[1])
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    while k > 0 and chosen[k - 1]["role"] == "assistant":
        k -= 1
    if k == 0:
        raise RowError("chosen and rejected share no prompt turns", fields[0])
    for side, field in ((chosen, fields[0]), (rejected, fields[1])):
        if k == len(side):
            raise RowError("no response after the shared prompt", field)
    return chosen[:k], chosen[k:], rejected[k:]


def pair_row(
    prompt: list[Message],
    chosen: list[Message],
    rejected: list[Message],
    field: str,
    system: str | None = None,
) -> Row:
    """A chosen/rejected pair: rank 1 and rank 2."""
    candidates = [candidate_row(chosen, rank=1), candidate_row(rejected, rank=2)]
    return preference_row(prompt, candidates, field, system)


# -- HH-RLHF transcripts -------------------------------------------------------------------

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant): ?")


def parse_hh_transcript(text: str, field: str, *, allow_open_end: bool = False) -> list[Message]:
    """``"\\n\\nHuman: …\\n\\nAssistant: …"`` → messages (turn text stripped).

    ``allow_open_end`` drops a trailing empty ``Assistant:`` cue, as TRL-style prompts
    end with one."""
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise RowError("text before the first 'Human:' turn", field)
    turns = list(zip(parts[1::2], parts[2::2], strict=True))
    if allow_open_end and turns and turns[-1] == ("Assistant", ""):
        turns.pop()
    if not turns:
        raise RowError("no 'Human:' / 'Assistant:' turns", field)
    out: list[Message] = []
    for n, (speaker, body) in enumerate(turns, start=1):
        if not body.strip():
            raise RowError(f"turn {n} ({speaker}) is empty", field)
        out.append(message_row(normalise_role(speaker, field), body.strip()))
    return out


def _is_hh_transcript(value: Any) -> bool:
    return isinstance(value, str) and "Human:" in value and "Assistant:" in value


class HHRLHF(Format):
    name = "hh-rlhf"
    kind = Kind.PREFERENCE
    description = (
        'Anthropic HH-RLHF: {"chosen", "rejected"} whole "Human:/Assistant:" transcripts '
        "that share a context and differ in the final Assistant turn."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                "prompt" not in r
                and _is_hh_transcript(r.get("chosen"))
                and _is_hh_transcript(r.get("rejected"))
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        sides: list[list[Message]] = []
        for key in ("chosen", "rejected"):
            if key not in row:
                raise RowError("missing required field", key)
            text = row.pop(key)
            if not isinstance(text, str):
                raise RowError(f"expected a string, got {type(text).__name__}", key)
            sides.append(parse_hh_transcript(text, key))
        prompt, chosen, rejected = split_shared_prefix(sides[0], sides[1], ("chosen", "rejected"))
        return pair_row(prompt, chosen, rejected, "chosen")


# -- TRL ------------------------------------------------------------------------------------


def _trl_pair_shape(row: Row) -> bool:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if "prompt" in row:  # explicit prompt: standard (strings) or conversational (lists)
        return (isinstance(chosen, str) and isinstance(rejected, str)) or (
            is_object_list(chosen) and is_object_list(rejected)
        )
    return is_object_list(chosen) and is_object_list(rejected)  # implicit prompt


class TRLPreference(Format):
    name = "trl-preference"
    kind = Kind.PREFERENCE
    description = (
        'TRL preference: {"prompt", "chosen", "rejected"} as strings or message lists, '
        'or implicit prompt {"chosen", "rejected"} message lists sharing a prefix.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(sample, _trl_pair_shape)

    def convert(self, row: Row, ctx: RowContext) -> Row:
        if "prompt" not in row:
            chosen_all = messages_or_text(row, "chosen", "assistant")
            rejected_all = messages_or_text(row, "rejected", "assistant")
            prompt, chosen, rejected = split_shared_prefix(
                chosen_all, rejected_all, ("chosen", "rejected")
            )
            return pair_row(prompt, chosen, rejected, "chosen")
        prompt = _trl_prompt(row)
        chosen = messages_or_text(row, "chosen", "assistant")
        rejected = messages_or_text(row, "rejected", "assistant")
        if chosen == rejected:
            raise RowError("chosen and rejected are identical", "rejected")
        return pair_row(prompt, chosen, rejected, "prompt")


def _trl_prompt(row: Row) -> list[Message]:
    """A TRL prompt; a standard prompt written as an HH transcript (ending in an open
    ``Assistant:`` cue, as TRL's Anthropic HH recipe makes) is split into its turns."""
    value = row.get("prompt")
    if isinstance(value, str) and value.lstrip().startswith("Human:") and "Assistant:" in value:
        row.pop("prompt")
        return parse_hh_transcript(value, "prompt", allow_open_end=True)
    return messages_or_text(row, "prompt", "user")


class TRLUnpairedPreference(Format):
    name = "trl-unpaired-preference"
    kind = Kind.PREFERENCE
    description = (
        'TRL unpaired preference (KTO): {"prompt", "completion", "label": bool}, '
        "standard or conversational."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("label"), bool)
                and isinstance(r.get("prompt"), str | list)
                and isinstance(r.get("completion"), str | list)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        prompt = _trl_prompt(row)
        completion = messages_or_text(row, "completion", "assistant")
        label = require_bool(row, "label")
        return preference_row(prompt, [candidate_row(completion, label=label)], "prompt")


class TRLStepwise(Format):
    name = "trl-stepwise"
    kind = Kind.PREFERENCE
    description = (
        'TRL stepwise supervision: {"prompt", "completions": [str], "labels": [bool]}; '
        "one candidate with one assistant message per step."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("prompt"), str | list)
                and is_list_of(r.get("completions"), str)
                and is_list_of(r.get("labels"), bool)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        prompt = _trl_prompt(row)
        steps = require_list(row, "completions")
        labels = require_list(row, "labels")
        messages: list[Message] = []
        for i, step in enumerate(steps):
            if not isinstance(step, str):
                raise RowError(f"expected a string, got {type(step).__name__}", f"completions[{i}]")
            if not step.strip():
                raise RowError("empty text", f"completions[{i}]")
            messages.append(message_row("assistant", step))
        for i, label in enumerate(labels):
            if not isinstance(label, bool):
                raise RowError(f"expected a boolean, got {type(label).__name__}", f"labels[{i}]")
        if len(labels) != len(steps):
            raise RowError(f"{len(labels)} labels for {len(steps)} completion steps", "labels")
        return preference_row(prompt, [candidate_row(messages, step_labels=labels)], "prompt")


# -- OpenAI, LLaMA-Factory ----------------------------------------------------------------


class OpenAIPreference(Format):
    name = "openai-preference"
    kind = Kind.PREFERENCE
    description = (
        'OpenAI preference fine-tuning: {"input": {"messages", "tools"?}, '
        '"preferred_output": [...], "non_preferred_output": [...]}.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("input"), dict)
                and "messages" in r["input"]
                and isinstance(r.get("preferred_output"), list)
                and isinstance(r.get("non_preferred_output"), list)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        raw_prompt = pop_path(row, "input.messages")
        prompt = require_nonempty(
            parse_openai_messages(raw_prompt, "input.messages"), "input.messages"
        )
        outputs: list[list[Message]] = []
        for key in ("preferred_output", "non_preferred_output"):
            raw = require_list(row, key)
            outputs.append(require_nonempty(parse_openai_messages(raw, key), key))
        if outputs[0] == outputs[1]:
            raise RowError(
                "preferred and non-preferred outputs are identical", "non_preferred_output"
            )
        return pair_row(prompt, outputs[0], outputs[1], "input.messages")


class ShareGPTPreference(Format):
    name = "sharegpt-preference"
    kind = Kind.PREFERENCE
    description = (
        'LLaMA-Factory ShareGPT preference: {"conversations": [{from, value}], '
        '"chosen": {from, value}, "rejected": {from, value}, "system"?}.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                is_object_list(r.get("conversations"), "from")
                and isinstance(r.get("chosen"), dict)
                and isinstance(r.get("rejected"), dict)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        turns = require_list(row, "conversations")
        prompt = require_nonempty(parse_sharegpt(turns, "conversations"), "conversations")
        sides: list[list[Message]] = []
        for key in ("chosen", "rejected"):
            if key not in row:
                raise RowError("missing required field", key)
            turn = row.pop(key)
            if not isinstance(turn, dict):
                raise RowError(f"expected a {{from, value}} object, got {type(turn).__name__}", key)
            message = parse_one(parse_sharegpt, turn, key)
            if not message["content"].strip() and not message["tool_calls"]:
                raise RowError("empty text", f"{key}.value")
            sides.append([message])
        if sides[0] == sides[1]:
            raise RowError("chosen and rejected are identical", "rejected")
        system = row.pop("system", None)
        if system is not None and not isinstance(system, str):
            raise RowError(f"expected a string, got {type(system).__name__}", "system")
        return pair_row(prompt, sides[0], sides[1], "conversations", system or None)


class MessagesPreference(Format):
    name = "messages-preference"
    kind = Kind.PREFERENCE
    description = (
        'LLaMA-Factory v1 preference: {"chosen_messages", "rejected_messages"} whole '
        "conversations sharing a prefix (content parts, per-message loss_weight)."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                is_object_list(r.get("chosen_messages"))
                and is_object_list(r.get("rejected_messages"))
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        fields = ("chosen_messages", "rejected_messages")
        sides = [
            require_nonempty(parse_openai_messages(require_list(row, key), key), key)
            for key in fields
        ]
        prompt, chosen, rejected = split_shared_prefix(sides[0], sides[1], fields)
        return pair_row(prompt, chosen, rejected, fields[0])


class KTO(Format):
    name = "kto"
    kind = Kind.PREFERENCE
    description = (
        'LLaMA-Factory KTO: {"messages": [...], "label": bool} (or ShareGPT '
        '"conversations" with "kto_tag"); the last assistant message is the judged response.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                (is_object_list(r.get("messages")) and isinstance(r.get("label"), bool))
                or (
                    is_object_list(r.get("conversations"), "from")
                    and isinstance(r.get("kto_tag"), bool)
                )
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        if "messages" in row or "conversations" not in row:
            field, label_key = "messages", "label"
            messages = parse_openai_messages(require_list(row, field), field)
        else:
            field, label_key = "conversations", "kto_tag"
            messages = parse_sharegpt(require_list(row, field), field)
        require_nonempty(messages, field)
        if messages[-1]["role"] != "assistant":
            raise RowError("the last message must be the assistant's response", f"{field}[-1].role")
        label = require_bool(row, label_key)
        return preference_row(messages[:-1], [candidate_row(messages[-1:], label=label)], field)


# -- rated responses (UltraFeedback-like) -----------------------------------------------------


def _ratings(value: Any) -> list[Row]:
    """``{dimension: number}`` or UltraFeedback's ``{dimension: {"Rating": "4", ...}}``;
    unrated dimensions (``"N/A"``) are skipped."""
    if not isinstance(value, dict):
        return []
    out: list[Row] = []
    for dimension, raw in value.items():
        if isinstance(raw, dict):
            raw = raw.get("Rating", raw.get("rating", raw.get("value")))
        number = as_number(raw)
        if number is not None:
            out.append({"dimension": str(dimension), "value": number, "rater": None})
    return out


def competition_ranks(scores: list[float | None]) -> list[int | None]:
    """1 = best; ties share a rank (1, 1, 3); unscored candidates get no rank."""
    return [
        None if s is None else 1 + sum(1 for o in scores if o is not None and o > s) for s in scores
    ]


class RatedResponses(Format):
    name = "rated-responses"
    kind = Kind.PREFERENCE
    description = (
        'Several rated responses per prompt (UltraFeedback-like): {"instruction"|"prompt", '
        '"completions": [{"response", "model"?, "ratings"|"annotations": {...}}]}; '
        "rank by mean rating."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return 0.95 * share_where(
            sample,
            lambda r: (
                ("prompt" in r or "instruction" in r)
                and is_object_list(r.get("completions"), "response")
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        prompt_key = "prompt" if "prompt" in row else "instruction"
        prompt = messages_or_text(row, prompt_key, "user")
        completions = require_list(row, "completions")
        candidates: list[Row] = []
        rest: list[Row] = []
        means: list[float | None] = []
        for i, item in enumerate(completions):
            where = f"completions[{i}]"
            if not isinstance(item, dict):
                raise RowError(f"expected an object, got {type(item).__name__}", where)
            item = dict(item)
            messages = messages_or_text(item, "response", "assistant", f"{where}.response")
            model = item.pop("model") if isinstance(item.get("model"), str) else None
            if "ratings" in item:
                ratings = _ratings(item.pop("ratings"))
            else:  # UltraFeedback: keep the rationales (in meta) beside the parsed ratings
                ratings = _ratings(item.get("annotations"))
            means.append(sum(r["value"] for r in ratings) / len(ratings) if ratings else None)
            candidates.append(candidate_row(messages, ratings=ratings, model=model))
            rest.append(item)
        for candidate, rank in zip(candidates, competition_ranks(means), strict=True):
            candidate["rank"] = rank
        out = preference_row(prompt, candidates, prompt_key)
        if any(rest):
            out["meta"] = {"completions": rest}
        return out


FORMATS: list[Format] = [
    HHRLHF(),
    TRLPreference(),
    TRLUnpairedPreference(),
    TRLStepwise(),
    OpenAIPreference(),
    ShareGPTPreference(),
    MessagesPreference(),
    KTO(),
    RatedResponses(),
]
