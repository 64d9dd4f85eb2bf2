"""Responses from a teacher model for every prompt of a dataset: N candidates per
prompt, each with its sampling parameters recorded, optional system prompts and
few-shot examples drawn from other datasets. One candidate makes a ``conversation``
version, several a ``preference`` version (for a judge, then DPO/KTO export)."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass
from typing import Any

from gristmill.models.protocols import ChatMessage, GenerationParams, Prompt
from gristmill.records.kinds import (
    Candidate,
    Conversation,
    Document,
    Kind,
    Message,
    Preference,
    RecordBase,
)
from gristmill.store import Version, Workspace
from gristmill.store.workspace import check_name
from gristmill.synth.output import RunResult, write_run
from gristmill.synth.runner import Call, Failure, Run, RunOptions, SynthError
from gristmill.synth.sources import PromptItem, chat, load_prompts


@dataclass(frozen=True)
class GenerateConfig:
    n: int = 1  # candidates per prompt
    max_tokens: int = 256
    temperature: float | None = None  # default: 0 for one candidate, 0.7 for several
    top_p: float = 1.0
    seed: int = 0  # candidate j is sampled with seed + j
    system: str | None = None  # one system prompt for every record
    system_from: str | None = None  # a dataset whose system prompts (or texts) are drawn
    few_shot: str | None = None  # a conversation dataset whose exchanges are examples
    shots: int = 2
    kind: str = "auto"  # auto, conversation, preference
    limit: int | None = None

    def candidate_params(self) -> list[GenerationParams]:
        temperature = self.temperature
        if temperature is None:
            temperature = 0.0 if self.n == 1 else 0.7
        return [
            GenerationParams(
                max_tokens=self.max_tokens,
                temperature=temperature,
                top_p=self.top_p,
                seed=self.seed + j,
            )
            for j in range(self.n)
        ]

    def output_kind(self) -> Kind:
        if self.kind == "auto":
            return Kind.CONVERSATION if self.n == 1 else Kind.PREFERENCE
        kind = Kind(self.kind)
        if kind not in (Kind.CONVERSATION, Kind.PREFERENCE):
            raise SynthError(f"generate writes conversation or preference, not {self.kind}")
        if kind is Kind.CONVERSATION and self.n != 1:
            raise SynthError("several candidates per prompt need --kind preference")
        return kind


def _system_pool(version: Version) -> list[tuple[str, str]]:
    pool: list[tuple[str, str]] = []
    for record in version.iter_records():
        text = getattr(record, "system", None)
        if text is None and isinstance(record, Document):
            text = record.text
        if text:
            pool.append((record.id, str(text)))
    if not pool:
        raise SynthError(f"{version.ref} holds no system prompt (nor document text) to draw")
    return pool


def _example_pool(version: Version) -> list[tuple[str, str, str]]:
    pool: list[tuple[str, str, str]] = []
    for record in version.iter_records():
        if isinstance(record, Conversation):
            msgs = record.messages
            for a, b in itertools.pairwise(msgs):
                if a.role == "user" and b.role == "assistant" and b.content.strip():
                    pool.append((record.id, a.content, b.content))
                    break
    if not pool:
        raise SynthError(f"{version.ref} holds no user/assistant exchange to use as an example")
    return pool


def generate(
    workspace: Workspace,
    ref: str,
    config: GenerateConfig,
    options: RunOptions | None = None,
    output: str | None = None,
) -> RunResult:
    """Generate ``config.n`` responses per prompt of ``ref``; a new version of ``output``
    (default ``<name>-gen``) whose parent is ``ref``."""
    if config.n < 1:
        raise SynthError("n must be at least 1")
    kind = config.output_kind()
    source = workspace.version(ref)
    items, skipped = load_prompts(source, config.limit)
    systems = _system_pool(workspace.version(config.system_from)) if config.system_from else []
    examples = _example_pool(workspace.version(config.few_shot)) if config.few_shot else []
    run = Run(workspace, "generate", options)
    for rid in skipped:
        run.fail(Failure(rid, "generate", "no_prompt", "the record has no user turn to answer"))
    cand_params = config.candidate_params()

    plans: list[tuple[PromptItem, str | None, list[str], Prompt]] = []
    calls: list[Call] = []
    ids: list[str] = []
    for item in items:
        rng = random.Random(f"{config.seed}:{item.id}")
        system = config.system or item.system
        system_id = None
        if systems and not config.system:
            system_id, system = systems[rng.randrange(len(systems))]
        shots: list[str] = []
        messages: list[ChatMessage] = []
        if examples:
            usable = [e for e in examples if e[0] != item.id]
            for ex_id, user, answer in rng.sample(usable, min(config.shots, len(usable))):
                shots.append(ex_id)
                messages += [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": answer},
                ]
        prompt_msgs = chat(item.messages, system)
        head = prompt_msgs[:1] if system else []
        full: list[ChatMessage] = [*head, *messages, *prompt_msgs[len(head) :]]
        prompt: Prompt = full
        plans.append((item, system, shots, prompt))
        for params in cand_params:
            calls.append((prompt, params))
            ids.append(item.id)
    cand_no = [j for _ in plans for j in range(config.n)]
    answers = run.generate(calls, "generate", ids, cand_no)

    records: list[RecordBase] = []
    empty = 0
    for k, (item, system, shots, _) in enumerate(plans):
        cands: list[tuple[str, dict[str, Any]]] = []
        for j, params in enumerate(cand_params):
            gen = answers[k * config.n + j]
            if gen is None:
                continue
            text = gen.texts[0] if gen.texts else ""
            empty += not text.strip()
            info = {
                **{k2: v for k2, v in asdict(params).items() if k2 not in ("n", "stop")},
                "finish_reason": gen.finish_reasons[0] if gen.finish_reasons else None,
                "completion_tokens": gen.completion_tokens,
            }
            cands.append((text, info))
        if not cands:
            continue
        meta: dict[str, Any] = {
            "synth": {
                "task": "generate",
                "model": run.model_name,
                "source": source.ref,
                "candidates": [info for _, info in cands],
                **({"system_from": system_id} if system_id else {}),
                **({"few_shot": shots} if shots else {}),
            }
        }
        common: dict[str, Any] = {
            "id": item.id,
            "source": source.ref,
            "origin": run.origin,
            "system": system,
            "meta": meta,
            "task_category": item.task_category,
            "domain": item.domain,
        }
        if kind is Kind.CONVERSATION:
            reply = Message(role="assistant", content=cands[0][0])
            records.append(Conversation(messages=[*item.messages, reply], **common))
        else:
            candidates = [
                Candidate(
                    messages=[Message(role="assistant", content=text)],
                    model=run.model_name,
                    origin=run.origin,
                )
                for text, _ in cands
            ]
            records.append(Preference(prompt=item.messages, candidates=candidates, **common))

    run_params: dict[str, Any] = {
        "input": source.ref,
        "model": run.model_name,
        **{k: v for k, v in asdict(config).items() if v is not None},
    }
    counts = {
        "records_in": source.row_count if config.limit is None else len(items) + len(skipped),
        "prompts": len(items),
        "skipped_no_prompt": len(skipped),
        "responses": sum(1 for a in answers if a is not None),
        "empty_responses": empty,
        "records_out": len(records),
    }
    card = run.card(run_params, counts)
    name = check_name(output or f"{source.name}-gen")
    return write_run(
        workspace,
        name,
        kind,
        records,
        operation="synth-generate",
        params=run_params,
        parent=source.ref,
        card=card,
        failures=run.failures,
    )
