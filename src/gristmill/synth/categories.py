"""Task categories: tag each instruction with one of InstructGPT's nine categories
(a model asked to name one; the answer must be exactly a category name), and a
coverage table against InstructGPT's own prompt mix, so a user sees what is missing
and can ask self-instruct for more of it (``--category``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gristmill.models.protocols import GenerationParams
from gristmill.records.kinds import RecordBase, TaskCategory
from gristmill.store import Version, Workspace
from gristmill.store.workspace import check_name
from gristmill.synth.output import RunResult, write_run
from gristmill.synth.runner import Failure, Run, RunOptions, SynthError
from gristmill.synth.sources import prompt_of
from gristmill.synth.templates import render

CATEGORY_WORDS: dict[str, str] = {
    "generation": "open-ended generation",
    "open_qa": "open question answering",
    "brainstorming": "brainstorming",
    "chat": "chat",
    "rewrite": "rewriting",
    "summarization": "summarization",
    "classification": "classification",
    "closed_qa": "closed question answering (about a given text)",
    "extraction": "extraction",
}
DESCRIPTIONS: dict[str, str] = {
    "generation": "write something new: a story, a poem, an email, an essay",
    "open_qa": "answer a question from general knowledge",
    "brainstorming": "list many ideas or options",
    "chat": "carry on a conversation",
    "rewrite": "rewrite, edit, translate or paraphrase a given text",
    "summarization": "summarize a given text",
    "classification": "assign a given input to one of some classes",
    "closed_qa": "answer a question using only a given text",
    "extraction": "pull specific information out of a given text",
}
# InstructGPT's API prompt distribution (Ouyang et al. 2022, Table 1), in %; "other" 3.5.
INSTRUCTGPT_SHARE: dict[str, float] = {
    "generation": 45.6,
    "open_qa": 12.4,
    "brainstorming": 11.2,
    "chat": 8.4,
    "rewrite": 6.6,
    "summarization": 4.2,
    "classification": 3.5,
    "closed_qa": 2.6,
    "extraction": 1.9,
}
assert set(CATEGORY_WORDS) == {str(c) for c in TaskCategory}


def parse_category(text: str) -> str | None:
    """A category name from an answer that is exactly one (case, spaces, hyphens,
    quotes and a final period aside); None otherwise."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    norm = first.strip().strip("`'\"*").rstrip(".").strip().lower()
    norm = re.sub(r"[\s\-]+", "_", norm)
    return norm if norm in CATEGORY_WORDS else None


def categorize(
    workspace: Workspace,
    ref: str,
    options: RunOptions | None = None,
    output: str | None = None,
    max_tokens: int = 8,
    limit: int | None = None,
) -> RunResult:
    """Tag each record's instruction with a task category; a new version of ``output``
    (default ``<name>-tagged``), same kind, ``task_category`` set where the answer was
    readable (the rest keep theirs and are in the failures)."""
    source = workspace.version(ref)
    run = Run(workspace, "categorize", options, ["categorize"])
    listing = "\n".join(f"- {c}: {d}" for c, d in DESCRIPTIONS.items())
    names = ", ".join(CATEGORY_WORDS)
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    records: list[RecordBase] = []
    for n, record in enumerate(source.iter_records()):
        if limit is not None and n >= limit:
            break
        records.append(record)
    calls = []
    for r in records:
        item = prompt_of(r)
        text = item.instruction if item is not None else ""
        body = render("categorize", categories=listing, instruction=text, names=names)
        calls.append(([{"role": "user", "content": body}], params))
    answers = run.generate(calls, "categorize", [r.id for r in records])
    out: list[RecordBase] = []
    for r, gen in zip(records, answers, strict=True):
        if gen is None:
            out.append(r)
            continue
        raw = gen.texts[0] if gen.texts else ""
        cat = parse_category(raw)
        if cat is None:
            run.fail(Failure(r.id, "categorize", "unparseable", f"not one of: {names}", raw))
            out.append(r)
            continue
        run.counts[f"category_{cat}"] += 1
        out.append(r.model_copy(update={"task_category": TaskCategory(cat)}))
    run_params: dict[str, Any] = {"input": source.ref, "model": run.model_name}
    card = run.card(run_params, {"records_in": len(records), "records_out": len(out)})
    name = check_name(output or f"{source.name}-tagged")
    return write_run(
        workspace,
        name,
        source.kind,
        out,
        operation="synth-categorize",
        params=run_params,
        parent=source.ref,
        card=card,
        failures=run.failures,
    )


@dataclass
class CoverageRow:
    category: str
    count: int
    share: float  # % of the tagged records
    reference: float  # InstructGPT's %


def coverage(version: Version) -> tuple[list[CoverageRow], int]:
    """Per category: count and share of tagged records beside InstructGPT's share;
    and how many records are untagged."""
    counts = dict.fromkeys(CATEGORY_WORDS, 0)
    untagged = 0
    for row in version.iter_rows(columns=["task_category"]):
        cat = row["task_category"]
        if cat is None:
            untagged += 1
        elif cat in counts:
            counts[cat] += 1
        else:
            raise SynthError(f"{version.ref}: unknown task_category {cat!r}")
    tagged = sum(counts.values())
    rows = [
        CoverageRow(c, n, 100.0 * n / tagged if tagged else 0.0, INSTRUCTGPT_SHARE[c])
        for c, n in counts.items()
    ]
    return rows, untagged


def missing(rows: list[CoverageRow], ratio: float = 0.5) -> list[CoverageRow]:
    """Categories whose share is below ``ratio`` × InstructGPT's (or absent)."""
    return [r for r in rows if r.share < ratio * r.reference]
