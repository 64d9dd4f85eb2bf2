"""Self-Instruct (Wang et al. 2023): new instructions from seed tasks.

Each prompt shows 8 tasks (6 drawn from the seeds, 2 from those made so far) as a
numbered list and lets the model continue it; the continuation is split into tasks,
a truncated last task is dropped, and each new task passes the paper's filters (3 to
150 words; no image/graph/file/... keywords; not "Write a program"; starts with an
ASCII letter or digit) and is kept only if its ROUGE-L against **every** kept
instruction (seeds included) is below the threshold (0.7). Every rejection is kept
and counted with its reason. Rounds repeat until ``target`` instructions are kept.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from gristmill.models.protocols import GenerationParams
from gristmill.records.arrow import to_row
from gristmill.records.ids import content_id
from gristmill.records.kinds import Conversation, Kind, Message, RecordBase, TaskCategory
from gristmill.store import Workspace
from gristmill.store.workspace import check_name
from gristmill.synth.categories import CATEGORY_WORDS
from gristmill.synth.output import RunResult, write_run
from gristmill.synth.runner import Call, Failure, Run, RunOptions, SynthError
from gristmill.synth.similarity import InstructionPool
from gristmill.synth.sources import load_prompts
from gristmill.synth.templates import render

# Self-Instruct's filter list (its code's ``blacklist``): tasks a text model cannot do.
UNSUITABLE = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)
_SPLIT = re.compile(r"\n\s*(?:Task\s*)?\d+\s*[:.)]\s*")


@dataclass(frozen=True)
class SelfInstructConfig:
    target: int = 20  # new instructions to keep
    threshold: float = 0.7  # keep only if ROUGE-L < threshold against every kept one
    human_examples: int = 6
    machine_examples: int = 2
    prompts_per_round: int = 4
    max_rounds: int = 20
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.5
    seed: int = 0
    category: str | None = None  # ask for tasks of one InstructGPT category


def split_tasks(completion: str, truncated: bool) -> tuple[list[str], str | None]:
    """The tasks of a continuation of "Task 9:" (the first task is its start), and the
    last one when it was dropped because generation stopped in the middle of it."""
    pieces = [p.strip() for p in _SPLIT.split("\n" + completion.lstrip(" "))]
    pieces = [" ".join(p.split()) for p in pieces if p.strip()]
    if truncated and pieces:
        return pieces[:-1], pieces[-1]
    return pieces, None


def reject_reason(text: str) -> str | None:
    """The paper's heuristic filters; None when the instruction passes them."""
    words = text.split()
    if len(words) <= 3:
        return "too_short"
    if len(words) > 150:
        return "too_long"
    lowered = f" {text.lower()} "
    for kw in UNSUITABLE:
        if re.search(rf"\b{re.escape(kw)}\b", lowered):
            return "unsuitable_keyword"
    if text.startswith("Write a program"):
        return "write_a_program"
    if not text[0].isascii():
        return "non_ascii_start"
    if not text[0].isalnum():
        return "starts_with_punctuation"
    return None


def self_instruct(
    workspace: Workspace,
    seeds_ref: str,
    config: SelfInstructConfig | None = None,
    options: RunOptions | None = None,
    output: str | None = None,
) -> RunResult:
    """Grow new instructions from the user turns of ``seeds_ref`` (a conversation or
    eval-item dataset); a conversation version of ``output`` (default
    ``<seeds>-self-instruct``), one user turn per record."""
    config = config or SelfInstructConfig()
    if config.category is not None and config.category not in CATEGORY_WORDS:
        raise SynthError(
            f"unknown category {config.category!r}; one of {', '.join(CATEGORY_WORDS)}"
        )
    source = workspace.version(seeds_ref)
    seeds, _ = load_prompts(source)
    seed_texts = [(s.id, " ".join(s.instruction.split())) for s in seeds]
    if config.category is not None:
        same = [
            (s.id, " ".join(s.instruction.split()))
            for s in seeds
            if s.task_category == config.category
        ]
        human_pool = same if len(same) >= config.human_examples else seed_texts
    else:
        human_pool = seed_texts
    if len(human_pool) < 1:
        raise SynthError(f"{source.ref} has no seed instruction")
    run = Run(workspace, "self-instruct", options, ["self_instruct"])
    pool = InstructionPool()
    for _, text in seed_texts:
        pool.add(text)
    kept: list[tuple[str, dict[str, Any]]] = []
    what = "tasks"
    if config.category is not None:
        what = f"{CATEGORY_WORDS[config.category]} tasks"
    rounds = 0
    for rnd in range(config.max_rounds):
        if len(kept) >= config.target:
            break
        rounds += 1
        calls: list[Call] = []
        plans: list[tuple[str, list[str]]] = []
        for p in range(config.prompts_per_round):
            rng = random.Random(f"{config.seed}:{rnd}:{p}")
            human = rng.sample(human_pool, min(config.human_examples, len(human_pool)))
            machine = rng.sample(
                [(f"new:{i}", t) for i, (t, _) in enumerate(kept)],
                min(config.machine_examples, len(kept)),
            )
            examples = human + machine
            rng.shuffle(examples)
            listing = "\n".join(f"Task {i + 1}: {t}" for i, (_, t) in enumerate(examples))
            nxt = len(examples) + 1
            prompt = render("self_instruct", what=what, examples=listing, next=nxt)
            params = GenerationParams(
                max_tokens=config.max_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                stop=(f"Task {nxt + 8}:",),
                seed=rng.randrange(2**31),
            )
            calls.append((prompt, params))
            plans.append((f"round{rnd}:prompt{p}", [i for i, _ in examples]))
        answers = run.generate(calls, f"self-instruct round {rnd + 1}", [k for k, _ in plans])
        for (key, example_ids), gen in zip(plans, answers, strict=True):
            if gen is None:
                continue
            text = gen.texts[0] if gen.texts else ""
            truncated = bool(gen.finish_reasons) and gen.finish_reasons[0] == "length"
            tasks, dropped = split_tasks(text, truncated)
            if dropped is not None:
                run.counts["truncated_dropped"] += 1
                detail = "the last task was cut by max_tokens"
                run.fail(Failure(key, "self-instruct", "truncated", detail, dropped))
            for task in tasks:
                run.counts["candidates"] += 1
                if len(kept) >= config.target:
                    run.counts["surplus_unchecked"] += 1
                    continue
                reason = reject_reason(task)
                detail = ""
                score, nearest = 0.0, None
                if reason is None:
                    score, nearest = pool.nearest(task)
                    if score >= config.threshold:
                        reason = "too_similar"
                        detail = f"ROUGE-L {score:.3f} >= {config.threshold} with {nearest!r}"
                if reason is not None:
                    run.fail(Failure(key, "self-instruct", reason, detail, task))
                    continue
                pool.add(task)
                kept.append(
                    (
                        task,
                        {
                            "round": rnd + 1,
                            "prompt": key,
                            "examples": example_ids,
                            "max_rouge_l": round(score, 4),
                            "nearest": nearest,
                        },
                    )
                )
    records: list[RecordBase] = []
    for task, info in kept:
        rec = Conversation(
            id="pending",
            source=source.ref,
            origin="synthetic:self-instruct",
            messages=[Message(role="user", content=task)],
            meta={"synth": {"task": "self-instruct", "model": run.model_name, **info}},
            task_category=None,
        )
        records.append(rec.model_copy(update={"id": content_id(Kind.CONVERSATION, to_row(rec))}))
    run_params: dict[str, Any] = {
        "input": source.ref,
        "model": run.model_name,
        **{k: v for k, v in asdict(config).items() if v is not None},
    }
    counts = {"seeds": len(seed_texts), "rounds": rounds, "kept": len(kept)}
    card = run.card(run_params, counts)
    name = check_name(output or f"{source.name}-self-instruct")
    return write_run(
        workspace,
        name,
        Kind.CONVERSATION,
        records,
        operation="synth-self-instruct",
        params=run_params,
        parent=source.ref,
        card=card,
        failures=run.failures,
    )


__all__ = ["SelfInstructConfig", "TaskCategory", "reject_reason", "self_instruct", "split_tasks"]
