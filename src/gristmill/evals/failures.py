"""Failed eval samples → training data: the prompt the model got, answered with the
reference (a worked solution when the eval item keeps one in ``meta.solution``, else
the gold choice or the first reference), as a ``conversation`` version ready for
``gristmill export -f openai-chat`` (or for people to correct in the app first).

Check contamination before training on it: these are eval items, so the run's eval set
must then be retired or the new version used only for a held-out purpose.
"""

from __future__ import annotations

from typing import Any

import orjson

from gristmill.records.arrow import to_row
from gristmill.records.kinds import Conversation, Kind, Message
from gristmill.store import Version, VersionWriter


def _answer(meta: dict[str, Any]) -> str | None:
    item_meta = meta.get("item_meta") or {}
    solution = item_meta.get("solution")
    if isinstance(solution, str) and solution.strip():
        return solution
    index = meta.get("answer_index")
    choices = meta.get("choices") or []
    if index is not None and 0 <= index < len(choices):
        return str(choices[index])
    refs = meta.get("references") or []
    return str(refs[0]) if refs else None


def failures_to_sft(
    run: Version, name: str, keep_model_answer: bool = False, below: float | None = None
) -> tuple[Version | None, int, int]:
    """Write the failed samples of ``run`` as a new dataset ``name``; returns the
    version (None when nothing failed), the rows written and those skipped for want of
    a reference. A sample failed when ``meta.correct`` is false, or, with ``below``, when
    the task's first metric is under it (for graded scales)."""
    if run.kind != Kind.CONVERSATION or run.manifest.operation != "eval":
        raise ValueError(f"{run.ref} is not an eval run")
    rows: list[dict[str, Any]] = []
    skipped = 0
    for row in run.iter_rows():
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        scores: dict[str, float] = meta.get("scores") or {}
        failed = meta.get("correct") is False
        if below is not None and scores:
            failed = next(iter(scores.values())) < below
        if not failed:
            continue
        messages = [
            Message(**{k: v for k, v in m.items() if v is not None}) for m in row["messages"]
        ]
        answer = messages[-1].content if keep_model_answer else _answer(meta)
        if answer is None:
            skipped += 1
            continue
        messages[-1] = Message(role="assistant", content=answer)
        record = Conversation(
            id=row["id"],
            source=run.ref,
            origin=row["origin"] if keep_model_answer else "import:eval-reference",
            system=row.get("system"),
            messages=messages,
            meta={
                "eval_item": meta.get("eval_item"),
                "task": meta.get("task"),
                "model_answer": row["messages"][-1]["content"],
            },
        )
        rows.append(to_row(record))
    if not rows:
        return None, 0, skipped
    params = {"run": run.ref, "keep_model_answer": keep_model_answer, "below": below}
    with VersionWriter(
        run.workspace, name, Kind.CONVERSATION, "eval-failures", params, parent=run.ref
    ) as writer:
        writer.write_rows(rows)
    assert writer.version is not None
    return writer.version, len(rows), skipped
