"""From an eval item to what the model sees: the task's Jinja2 template over the item's
fields (``input``, ``choices``, ``references``, ``tags``, ``meta``), few-shot examples
before it, as raw text or as chat messages."""

from __future__ import annotations

import functools
import random
from typing import Any

import jinja2

from gristmill.evals.tasks import Task
from gristmill.models.protocols import ChatMessage, Prompt

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


@functools.lru_cache(maxsize=64)
def template(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def render(task: Task, item: dict[str, Any]) -> str:
    """The task's prompt for one item (an eval_item row, meta parsed)."""
    try:
        return template(task.prompt).render(**item)
    except jinja2.UndefinedError as exc:
        raise ValueError(
            f"task {task.name}: prompt uses {exc.message} (item {item['id']})"
        ) from exc


def continuations(task: Task, item: dict[str, Any]) -> list[str]:
    """The texts scored after the prompt in log-likelihood multiple choice."""
    choices: list[str] = item.get("choices") or []
    if task.choices == "letters":
        return [task.target_delimiter + LETTERS[i] for i in range(len(choices))]
    return [task.target_delimiter + c for c in choices]


def target(task: Task, item: dict[str, Any]) -> str:
    """The answer a few-shot example shows (the gold choice, or the first reference)."""
    index = item.get("answer_index")
    if task.output_type == "loglikelihood" and index is not None:
        return str(continuations(task, item)[index]).removeprefix(task.target_delimiter)
    refs: list[str] = item.get("references") or []
    return str(refs[0]) if refs else ""


def pick_shots(
    task: Task, item: dict[str, Any], pool: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``few_shot.n`` examples from ``pool`` (never the item itself): those sharing the
    item's ``same_tag``-th tag first, in pool order, else a seeded sample."""
    n = task.few_shot.n
    if n == 0 or not pool:
        return []
    candidates = [p for p in pool if p["id"] != item["id"]]
    k = task.few_shot.same_tag
    if k is not None:
        tags = item.get("tags") or []
        tag = tags[k] if k < len(tags) else None
        same = [p for p in candidates if tag is not None and tag in (p.get("tags") or [])]
        if len(same) >= n:
            return same[:n]
    rng = random.Random(f"{task.few_shot.seed}:{item['id']}")
    return rng.sample(candidates, min(n, len(candidates)))


def build_prompt(task: Task, item: dict[str, Any], shots: list[dict[str, Any]]) -> Prompt:
    """Raw text (few-shot examples, separator, the item) or chat messages (each
    example a user/assistant exchange)."""
    if task.chat:
        messages: list[ChatMessage] = []
        if task.system:
            messages.append({"role": "system", "content": task.system})
        for shot in shots:
            messages.append({"role": "user", "content": render(task, shot)})
            messages.append({"role": "assistant", "content": target(task, shot)})
        messages.append({"role": "user", "content": render(task, item)})
        return messages
    parts = [render(task, s) + task.target_delimiter + target(task, s) for s in shots]
    text = task.few_shot_separator.join([*parts, render(task, item)])
    return f"{task.system}\n\n{text}" if task.system else text


def prompt_text(prompt: Prompt) -> str:
    """A prompt as one readable string (for logs and contamination checks)."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)
