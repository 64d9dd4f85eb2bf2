"""What every synthetic run shares: the model (resolved once, calls cached in the
workspace), bounded concurrency, a progress bar with tokens and cost, failures kept
with their raw text, and the run card that goes into the output's manifest.

Resume is the cache: each call is committed to ``<workspace>/cache/models.sqlite`` as
soon as it returns (one prompt per call for servers, a few for local models), so a
run killed at any point replays what it finished and asks the model only for the
rest. There is no separate state file to go stale (distilabel#1065).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gristmill.models import ModelCache, cached, resolve_language_model
from gristmill.models.errors import ModelError, NoLogprobs
from gristmill.models.protocols import (
    Generation,
    GenerationParams,
    LanguageModel,
    NextTokens,
    Prompt,
)
from gristmill.store import Workspace
from gristmill.synth.templates import template_hash

A = TypeVar("A")  # one answer of a model call (a generation, next-token log-probs)


class SynthError(ValueError):
    """A run that cannot go on (bad input, every call failed); one clear message."""


@dataclass(frozen=True)
class RunOptions:
    """How to reach the model and how hard to push it."""

    model: str | None = None  # a --model spec; None is the packaged offline model
    workers: int | None = None  # calls in flight (default: the spec's concurrency or 8 for
    # openai: servers, 1 for local models, which batch instead)
    chunk: int | None = None  # prompts per call (default: 1 for servers, 4 for local models)
    threads: int | None = None  # CPU threads of a local model
    price_in: float | None = None  # USD per million prompt tokens
    price_out: float | None = None  # USD per million completion tokens
    progress: bool = True

    @property
    def remote(self) -> bool:
        return bool(self.model) and str(self.model).strip().lower().startswith("openai:")

    def resolved_workers(self) -> int:
        if self.workers is not None:
            return max(1, self.workers)
        if self.remote:
            m = re.search(r"[?&]concurrency=(\d+)", str(self.model))
            return int(m.group(1)) if m else 8
        return 1

    def resolved_chunk(self) -> int:
        if self.chunk is not None:
            return max(1, self.chunk)
        return 1 if self.remote else 4


@dataclass
class Failure:
    """One thing that did not make it into the output, and why (kept, never dropped)."""

    id: str  # the input record (or instruction) it concerns
    step: str  # generate, judge, self-instruct, evol, categorize
    reason: str  # short key, counted in the run card
    detail: str = ""
    raw: str = ""  # the model's text as it came
    candidate: int | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Metered:
    """A ``LanguageModel`` that counts the calls and tokens that reach the backend
    (cache hits never get here), for the run card's cost."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.calls = 0
        self.prompts = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        out = self.model.generate(prompts, params)
        with self.lock:
            self.calls += 1
            self.prompts += len(prompts)
            self.prompt_tokens += sum(g.prompt_tokens for g in out)
            self.completion_tokens += sum(g.completion_tokens for g in out)
        return out

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        out = self.model.next_token_logprobs(prompts, candidates, top_k)
        with self.lock:
            self.calls += 1
            self.prompts += len(prompts)
            self.prompt_tokens += sum(n.prompt_tokens for n in out)
        return out

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        with self.lock:
            self.calls += 1
            self.prompts += len(contexts)
        return self.model.continuation_logprobs(contexts, continuations)


Call = tuple[Prompt, GenerationParams]


class Run:
    """One synthetic run: ``run.generate(calls)`` in order, failures collected,
    ``run.card(...)`` for the manifest."""

    def __init__(
        self,
        workspace: Workspace,
        task: str,
        options: RunOptions | None = None,
        templates: Sequence[str] = (),
        console: Console | None = None,
    ) -> None:
        self.workspace = workspace
        self.task = task
        self.options = options or RunOptions()
        self.templates = list(templates)
        self.console = console or Console(stderr=True, highlight=False)
        self.cache = ModelCache.for_workspace(workspace.root)
        raw, self.description = resolve_language_model(
            self.options.model, threads=self.options.threads
        )
        self.meter = Metered(raw)
        self.lm = cached(self.meter, self.cache)
        self.failures: list[Failure] = []
        self.counts: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.requests = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        if self.options.progress:
            self.console.print(f"[dim]model: {self.description}[/]")

    @property
    def model_name(self) -> str:
        return self.lm.name

    @property
    def origin(self) -> str:
        return f"model:{self.model_name}"

    def fail(self, failure: Failure) -> None:
        with self._lock:
            self.failures.append(failure)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        o = self.options
        if o.price_in is None and o.price_out is None:
            return None
        return (
            prompt_tokens * (o.price_in or 0.0) + completion_tokens * (o.price_out or 0.0)
        ) / 1e6

    # -- calls --------------------------------------------------------------------------

    def generate(
        self,
        calls: Sequence[Call],
        label: str,
        ids: Sequence[str] | None = None,
        candidates: Sequence[int | None] | None = None,
    ) -> list[Generation | None]:
        """Answers to ``calls`` in order; a call whose model errors out (after the
        backend's retries) is ``None`` and recorded as a failure under its id (and
        candidate)."""
        chunk = self.options.resolved_chunk()
        groups: list[list[int]] = []
        for i, (_, params) in enumerate(calls):  # consecutive calls with equal params
            if groups and len(groups[-1]) < chunk and calls[groups[-1][0]][1] == params:
                groups[-1].append(i)
            else:
                groups.append([i])

        def one(group: list[int]) -> list[Generation]:
            params = calls[group[0]][1]
            return self.lm.generate([calls[i][0] for i in group], params)

        def count(gen: Generation) -> None:
            self.prompt_tokens += gen.prompt_tokens
            self.completion_tokens += gen.completion_tokens

        return self._in_flight(groups, len(calls), one, count, label, ids, candidates)

    def next_tokens(
        self,
        prompts: Sequence[Prompt],
        candidates: list[str],
        label: str,
        ids: Sequence[str],
        cands: Sequence[int | None],
    ) -> list[NextTokens | None]:
        """Next-token log-probabilities of ``candidates`` after each prompt, in order,
        chunked and in flight like ``generate``. A backend that gives no log-probabilities
        (``NoLogprobs``) stops the run with its one-line message; another model error is a
        failure of that call, recorded under its id (and candidate)."""
        chunk = self.options.resolved_chunk()
        groups = [
            list(range(i, min(i + chunk, len(prompts)))) for i in range(0, len(prompts), chunk)
        ]

        def one(group: list[int]) -> list[NextTokens]:
            return self.lm.next_token_logprobs([prompts[i] for i in group], candidates, top_k=5)

        def count(nt: NextTokens) -> None:
            self.prompt_tokens += nt.prompt_tokens

        return self._in_flight(groups, len(prompts), one, count, label, ids, cands)

    def _in_flight(
        self,
        groups: list[list[int]],
        total: int,
        call: Callable[[list[int]], Sequence[A]],
        count: Callable[[A], None],
        label: str,
        ids: Sequence[str] | None,
        candidates: Sequence[int | None] | None,
    ) -> list[A | None]:
        """``call`` over the groups of indices, up to ``resolved_workers`` at once, results
        in order (each call is already in the cache when it returns). A model error fails
        that group's items (recorded under their ids); ``NoLogprobs`` (the backend cannot
        do this at all) stops the run; Ctrl-C drops the queued calls instead of waiting."""
        results: list[A | None] = [None] * total
        progress = self._progress()
        task: TaskID | None = None
        if progress is not None:
            progress.start()
            task = progress.add_task(label, total=total, tokens=0, cost="")
        workers = min(self.options.resolved_workers(), max(1, len(groups)))
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [(g, pool.submit(call, g)) for g in groups]
            for group, fut in futures:
                try:
                    answers: Sequence[A] = fut.result()
                except NoLogprobs:
                    raise
                except ModelError as exc:
                    for i in group:
                        key = ids[i] if ids is not None else str(i)
                        cand = candidates[i] if candidates is not None else None
                        self.fail(Failure(key, label, "model_error", str(exc), candidate=cand))
                    answers = []
                for i, answer in zip(group, answers, strict=False):
                    results[i] = answer
                    count(answer)
                if progress is not None and task is not None:
                    cost = self.cost(self.meter.prompt_tokens, self.meter.completion_tokens)
                    progress.update(
                        task,
                        advance=len(group),
                        tokens=self.completion_tokens,
                        cost=f"${cost:.4f}" if cost is not None else "",
                    )
        except BaseException:
            # finished calls are in the cache; a rerun resumes from there
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)
        finally:
            if progress is not None:
                progress.stop()
        self.requests += total
        if total and all(r is None for r in results):
            first = next((f for f in self.failures if f.reason == "model_error"), None)
            raise SynthError(
                f"every {label} call failed; first error: {first.detail if first else '?'}"
            )
        return results

    def _progress(self) -> Progress | None:
        if not self.options.progress:
            return None
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tokens]} tokens out"),
            TextColumn("{task.fields[cost]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

    # -- the card -----------------------------------------------------------------------

    def card(self, params: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
        """The run card: model, prompts, parameters, counts, failures, tokens, cost."""
        by_reason = Counter(f.reason for f in self.failures)
        full = self.cost(self.prompt_tokens, self.completion_tokens)
        new = self.cost(self.meter.prompt_tokens, self.meter.completion_tokens)
        return {
            "task": self.task,
            "model": self.model_name,
            "model_description": self.description,
            "prompts": {name: template_hash(name) for name in self.templates},
            "params": params,
            "counts": {**counts, **dict(self.counts)},
            "failures": {"total": len(self.failures), "by_reason": dict(by_reason)},
            "calls": {
                "requested": self.requests,
                "model_calls": self.meter.prompts,  # prompts that reached the model
                "cache_hits": self.cache.hits,
            },
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "new_prompt": self.meter.prompt_tokens,
                "new_completion": self.meter.completion_tokens,
            },
            "cost_usd": new,
            "cost_usd_uncached": full,
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }


def cache_path(workspace: Workspace) -> Path:
    return ModelCache.for_workspace(workspace.root).path
