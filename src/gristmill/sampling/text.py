"""The text a scorer reads from a record, whatever its kind.

Scorers judge what a model would be trained on: a document's text, a
conversation's turns, an eval item's input, a preference record's prompt and its
first (best-ranked) candidate. One function, so Ask-LLM, perplexity and the
embedders all see the same string for the same record.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from gristmill.records.kinds import Kind

TEXT_KINDS = (Kind.DOCUMENT, Kind.CONVERSATION, Kind.EVAL_ITEM, Kind.PREFERENCE)


def _turns(messages: list[dict[str, Any]] | None) -> list[str]:
    return [f"{m.get('role', '')}: {m.get('content') or ''}" for m in messages or []]


def record_texts(table: pa.Table, kind: Kind) -> list[str]:
    """One string per row of ``table`` (storage rows of ``kind``)."""
    if kind == Kind.DOCUMENT:
        return [t or "" for t in table.column("text").to_pylist()]
    if kind == Kind.EVAL_ITEM:
        return [t or "" for t in table.column("input").to_pylist()]
    if kind == Kind.CONVERSATION:
        systems = table.column("system").to_pylist()
        convs = table.column("messages").to_pylist()
        return [
            "\n".join(([f"system: {s}"] if s else []) + _turns(m))
            for s, m in zip(systems, convs, strict=True)
        ]
    if kind == Kind.PREFERENCE:
        prompts = table.column("prompt").to_pylist()
        candidates = table.column("candidates").to_pylist()
        out = []
        for prompt, cands in zip(prompts, candidates, strict=True):
            ranked = sorted(cands or [], key=lambda c: (c.get("rank") is None, c.get("rank") or 0))
            best = _turns(ranked[0].get("messages")) if ranked else []
            out.append("\n".join(_turns(prompt) + best))
        return out
    raise ValueError(
        f"scorers read documents, conversations, eval items and preferences, not {kind}"
    )


def truncate_chars(text: str, max_chars: int) -> tuple[str, int]:
    """Cut ``text`` to ``max_chars`` (0: no limit) at a word boundary when one is near;
    returns the text and how many characters were dropped."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text, 0
    cut = text[:max_chars]
    space = cut.rfind(" ", max(0, max_chars - 200))
    if space > 0:
        cut = cut[:space]
    return cut, len(text) - len(cut)
