"""Can this backend score continuations correctly? Checked before a log-likelihood run.

Local backends compute continuation log-probabilities themselves. A server gives them
through ``echo`` prompt log-probabilities, and some get them wrong: llama-cpp-python's
server scores token *i* with the logits that predict token *i + 1*
(abetlen/llama-cpp-python#1983; docs/models.md), which makes every multiple-choice
answer noise. The protocol cannot say so, so a server is probed once (the answer is
cached with the model's other calls): counting "…, 9, 10, 11, …" after "1, 2, …, 8" is
near-certain for any language model (mean log-probability per token above −1.5), while
a shifted server reports the chance of each token repeating itself (far below).
"""

from __future__ import annotations

from gristmill.models.errors import ModelError
from gristmill.models.protocols import LanguageModel

PROBE_CONTEXT = "1, 2, 3, 4, 5, 6, 7, 8"
PROBE_CONTINUATION = ", 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20"
PROBE_FLOOR = -1.5


def is_server(lm: LanguageModel) -> bool:
    inner = getattr(lm, "model", lm)  # a CachedLanguageModel wraps the backend
    return type(inner).__name__ == "OpenAILM"


def probe_mean(lm: LanguageModel) -> float:
    """Mean log-probability per token of the counting probe."""
    values = lm.continuation_logprobs([PROBE_CONTEXT], [PROBE_CONTINUATION])[0]
    return sum(values) / max(len(values), 1)


def loglikelihood_problem(lm: LanguageModel, model_spec: str | None) -> str | None:
    """Why ``lm`` cannot be trusted for log-likelihood tasks, or None."""
    if not is_server(lm):
        return None
    try:
        mean = probe_mean(lm)
    except ModelError as exc:
        return f"{lm.name} cannot score continuations: {exc}"
    if mean < PROBE_FLOOR:
        return (
            f"{lm.name} ({model_spec}) gives implausible prompt log-probabilities: counting "
            f"'{PROBE_CONTEXT}{PROBE_CONTINUATION[:12]}…' scores {mean:.2f} per token (a "
            f"language model gives more than {PROBE_FLOOR}). This server's echo log-probs "
            "are likely shifted by one token (llama-cpp-python's server is; see docs/models.md), "
            "so log-likelihood multiple choice and perplexity would be wrong. Use a local "
            "backend (--model smollm2, a transformers folder, llama-cpp:FILE) or a server with "
            "correct echo log-probs (vLLM); generative tasks work through this server."
        )
    return None
