"""The two small protocols every model backend speaks (DESIGN.md, "Models are
backends behind two small protocols").

Stages (sampling, synthesis, evaluation) depend on these protocols only, never on a
backend, so a local transformers model, a GGUF file through llama.cpp and any
OpenAI-compatible server are interchangeable, and every call goes through the
on-disk cache (``models.cache``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

ChatMessage = dict[str, Any]  # {"role": ..., "content": ...}
Prompt = str | list[ChatMessage]  # raw text, or chat messages (the backend applies its template)


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1  # candidates per prompt
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def key(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "n": self.n,
            "stop": list(self.stop),
            "seed": self.seed,
        }


@dataclass
class Generation:
    texts: list[str]  # n candidates
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)


@dataclass
class NextTokens:
    """Log-probabilities of candidate next tokens after a prompt.

    ``logprobs`` maps token text (as the model's tokenizer writes it, e.g. "yes" or
    " yes") to its natural-log probability; ``truncated`` says whether the prompt
    was cut to fit the context (and how many tokens were dropped)."""

    logprobs: dict[str, float]
    prompt_tokens: int = 0
    truncated_tokens: int = 0


@runtime_checkable
class LanguageModel(Protocol):
    """Generate text, and give log-probabilities of next tokens and continuations."""

    @property
    def name(self) -> str:
        """Stable identity for caching and lineage (``model:<name>``)."""
        ...

    @property
    def context_length(self) -> int: ...

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]: ...

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        """For each prompt: the top ``top_k`` next tokens, plus every token of
        ``candidates`` (e.g. ["yes", "no"]) even when outside the top k."""
        ...

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        """Per-token log-probabilities of each continuation given its context
        (sum them for log-likelihood; perplexity = exp(-mean))."""
        ...


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One L2-normalised row per text, shape (len(texts), dim)."""
        ...
