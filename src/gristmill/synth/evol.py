"""Evol-Instruct (Xu et al. 2023, WizardLM): rewrite instructions in depth (add a
constraint, deepen, concretize, ask for more reasoning steps) or in breadth (a new,
rarer instruction of the same domain), answer each evolved one, and eliminate failed
evolutions by the paper's rules:

1. no information gain over the original: here the same text once normalised, or a
   ROUGE-L of ``same_threshold`` (0.9) or more with it (the paper asks ChatGPT);
2. hard to answer: the response contains "sorry" and is shorter than 80 words;
3. the response is only punctuation and stop words;
4. the instruction copies words of the evolving prompt ("given prompt", "rewritten
   prompt", "created prompt", "#The Given Prompt#", ...).

A failed instruction stays in the pool in its last good form and is evolved again in
the next round; each failure is kept with its rule and raw text.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from gristmill.models.protocols import ChatMessage, GenerationParams
from gristmill.records.arrow import to_row
from gristmill.records.ids import content_id
from gristmill.records.kinds import Conversation, Kind, Message, RecordBase
from gristmill.store import Workspace
from gristmill.store.workspace import check_name
from gristmill.synth.output import RunResult, write_run
from gristmill.synth.runner import Call, Failure, Run, RunOptions, SynthError
from gristmill.synth.similarity import rouge_l, tokens
from gristmill.synth.sources import load_prompts
from gristmill.synth.templates import render

DEPTH_METHODS: dict[str, str] = {
    "constraints": "Add one more constraint or requirement to #The Given Prompt#.",
    "deepen": "If #The Given Prompt# asks about certain issues, increase the depth and "
    "breadth of the inquiry.",
    "concretize": "Replace general concepts with more specific concepts.",
    "reasoning": "If #The Given Prompt# can be solved with just a few simple thinking "
    "steps, rewrite it to explicitly ask for multiple-step reasoning.",
}
OPERATIONS = (*DEPTH_METHODS, "breadth")
PROMPT_WORDS = (
    "given prompt",
    "rewritten prompt",
    "created prompt",
    "#the given prompt#",
    "#rewritten prompt#",
    "#created prompt#",
    "#given prompt#",
)
_STOP = (
    "a an the and or but if then else of to in on at by for with from as is are was were "
    "be been being it its this that these those i you he she we they me him her us them my "
    "your his our their what which who whom how why when where not no yes do does did so "
    "than too very can will just should now"
)
STOP_WORDS = frozenset(_STOP.split(" "))


@dataclass(frozen=True)
class EvolConfig:
    rounds: int = 1
    operations: tuple[str, ...] = OPERATIONS
    max_tokens: int = 256  # for the rewrite
    response_tokens: int = 256
    temperature: float = 0.7
    same_threshold: float = 0.9  # rule 1: ROUGE-L with the original at or above this
    seed: int = 0
    limit: int | None = None


def elimination(original: str, evolved: str, response: str | None, same: float) -> str | None:
    """The elimination rule an evolution breaks (its name), or None when it survives."""
    if not evolved.strip():
        return "empty"
    low = evolved.lower()
    if any(w in low for w in PROMPT_WORDS):
        return "copies_prompt_words"  # rule 4
    norm = " ".join(re.findall(r"\w+", low))
    if norm == " ".join(re.findall(r"\w+", original.lower())):
        return "no_information_gain"  # rule 1
    if rouge_l(tokens(original), tokens(evolved)) >= same:
        return "no_information_gain"
    if response is None:
        return None
    words = response.split()
    if "sorry" in response.lower() and len(words) < 80:
        return "response_sorry"  # rule 2
    if all(w in STOP_WORDS for w in re.findall(r"\w+", response.lower())):
        return "response_only_stopwords"  # rule 3
    return None


def _rewrite_prompt(operation: str, instruction: str) -> list[ChatMessage]:
    if operation == "breadth":
        text = render("evol_breadth", instruction=instruction)
    else:
        text = render("evol_depth", method=DEPTH_METHODS[operation], instruction=instruction)
    return [{"role": "user", "content": text}]


def evol_instruct(
    workspace: Workspace,
    ref: str,
    config: EvolConfig | None = None,
    options: RunOptions | None = None,
    output: str | None = None,
) -> RunResult:
    """Evolve the instructions of ``ref`` for ``config.rounds`` rounds; the survivors
    with their answers are a conversation version of ``output`` (default
    ``<name>-evol``)."""
    config = config or EvolConfig()
    bad = [o for o in config.operations if o not in OPERATIONS]
    if bad or not config.operations:
        raise SynthError(f"unknown evolution(s) {bad}; choose from {', '.join(OPERATIONS)}")
    source = workspace.version(ref)
    items, _ = load_prompts(source, config.limit)
    run = Run(workspace, "evol-instruct", options, ["evol_depth", "evol_breadth"])
    # pool entry: (root id, current id, current text, depth)
    pool = [(it.id, it.id, it.instruction.strip(), 0) for it in items]
    records: list[RecordBase] = []
    for rnd in range(config.rounds):
        calls: list[Call] = []
        ops: list[str] = []
        for _root, cur, text, _ in pool:
            rng = random.Random(f"{config.seed}:{rnd}:{cur}")
            op = config.operations[rng.randrange(len(config.operations))]
            ops.append(op)
            params = GenerationParams(
                max_tokens=config.max_tokens,
                temperature=config.temperature,
                seed=rng.randrange(2**31),
            )
            calls.append((_rewrite_prompt(op, text), params))
        rewrites = run.generate(calls, f"evolve round {rnd + 1}", [p[1] for p in pool])
        evolved: list[str | None] = []
        for (_root, cur, text, _), op, gen in zip(pool, ops, rewrites, strict=True):
            if gen is None:
                evolved.append(None)
                continue
            new = (gen.texts[0] if gen.texts else "").strip()
            rule = elimination(text, new, None, config.same_threshold)
            if rule is not None:
                run.fail(Failure(cur, "evol", rule, f"{op} of {text!r}", new))
                evolved.append(None)
            else:
                evolved.append(new)
        answer_params = GenerationParams(max_tokens=config.response_tokens, temperature=0.0)
        todo = [i for i, e in enumerate(evolved) if e is not None]
        answers = (
            run.generate(
                [([{"role": "user", "content": evolved[i] or ""}], answer_params) for i in todo],
                f"answer round {rnd + 1}",
                [pool[i][1] for i in todo],
            )
            if todo
            else []
        )
        next_pool = list(pool)
        for i, gen in zip(todo, answers, strict=True):
            root, cur, text, depth = pool[i]
            new = evolved[i] or ""
            if gen is None:
                continue
            response = (gen.texts[0] if gen.texts else "").strip()
            rule = elimination(text, new, response, config.same_threshold)
            if rule is not None:
                run.fail(Failure(cur, "evol", rule, f"{ops[i]}: {new!r}", response))
                continue
            rec = Conversation(
                id="pending",
                source=source.ref,
                origin="synthetic:evol-instruct",
                messages=[
                    Message(role="user", content=new),
                    Message(role="assistant", content=response),
                ],
                meta={
                    "synth": {
                        "task": "evol-instruct",
                        "model": run.model_name,
                        "round": rnd + 1,
                        "operation": ops[i],
                        "evolution": "breadth" if ops[i] == "breadth" else "depth",
                        "parent_id": cur,
                        "root_id": root,
                        "depth": depth + 1,
                        "original": text,
                    }
                },
            )
            rec = rec.model_copy(update={"id": content_id(Kind.CONVERSATION, to_row(rec))})
            records.append(rec)
            run.counts[f"survived_{ops[i]}"] += 1
            next_pool[i] = (root, rec.id, new, depth + 1)
        pool = next_pool
    run_params: dict[str, Any] = {
        "input": source.ref,
        "model": run.model_name,
        **{k: v for k, v in asdict(config).items() if v is not None},
    }
    counts = {"instructions": len(items), "rounds": config.rounds, "survived": len(records)}
    card = run.card(run_params, counts)
    name = check_name(output or f"{source.name}-evol")
    return write_run(
        workspace,
        name,
        Kind.CONVERSATION,
        records,
        operation="synth-evol-instruct",
        params=run_params,
        parent=source.ref,
        card=card,
        failures=run.failures,
    )
