"""Helpers every backend shares: prompt rendering keys, stop strings, and the
probability of a word across its tokenisation variants (Ask-LLM's P("yes"))."""

from __future__ import annotations

import math
from collections.abc import Iterable

from gristmill.models.protocols import ChatMessage, NextTokens, Prompt

# Ask the backend for all of these and sum them: depending on the template the
# answer may start a line ("yes"), follow a space or a cue (" yes"), or be capitalised.
YES_VARIANTS: tuple[str, ...] = ("yes", " yes", "Yes", " Yes")
NO_VARIANTS: tuple[str, ...] = ("no", " no", "No", " No")


def is_chat(prompt: Prompt) -> bool:
    """Whether a prompt is a message list (the backend applies its chat template)."""
    return not isinstance(prompt, str)


def continues_last_message(messages: list[ChatMessage]) -> bool:
    """A trailing assistant message is a prefix to continue (e.g. an ``ANSWER:`` cue),
    not a finished turn."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def cut_at_stop(text: str, stop: Iterable[str]) -> tuple[str, bool]:
    """Text up to the first stop string (servers do this; local backends must too)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut < len(text)


def probability(tokens: NextTokens, variants: Iterable[str]) -> float:
    """Summed probability of the distinct variants present (absent ones count 0).

    Backends give each candidate the probability of its first token, so ask for the
    variants as ``candidates`` to get them even outside the top k."""
    seen: set[str] = set()
    total = 0.0
    for v in variants:
        if v in seen:
            continue
        seen.add(v)
        lp = tokens.logprobs.get(v)
        if lp is not None and lp > -math.inf:
            total += math.exp(lp)
    return total


def yes_probability(tokens: NextTokens) -> tuple[float, float]:
    """Ask-LLM's two views: (P(yes) summed over variants, P(yes) / (P(yes) + P(no)))."""
    yes = probability(tokens, YES_VARIANTS)
    no = probability(tokens, NO_VARIANTS)
    return yes, (yes / (yes + no) if yes + no > 0 else math.nan)
