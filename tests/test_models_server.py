"""A real OpenAI-compatible server on loopback: llama-cpp-python's server with the
packaged SmolLM2 GGUF, scored through the OpenAI backend (generation, Ask-LLM P("yes")
from ``top_logprobs``, fail-over from a dead endpoint, the cache), and cross-checked
against the same file loaded in-process by the llama-cpp backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_server import dead_url, llama_server, needs_llama_server

from gristmill.models import (
    NO_VARIANTS,
    YES_VARIANTS,
    CachedLanguageModel,
    GenerationParams,
    ModelCache,
    ModelError,
    cached,
    resolve_embedder,
    resolve_language_model,
    yes_probability,
)
from gristmill.models.openai_backend import OpenAILM

pytestmark = [pytest.mark.slow, needs_llama_server]

ASK_LLM = (
    "###\n{text}\n###\nDoes the previous paragraph demarcated within ### and ### contain "
    "informative signal for pre-training a large-language model? An informative datapoint "
    "should be well-formatted, contain some usable knowledge of the world, and strictly NOT "
    "have any harmful, racist, sexist, etc. content.\nOPTIONS:\n- yes\n- no\nANSWER:"
)
WIKI = Path(__file__).resolve().parent.parent / "data" / "samples" / "llamafactory_demos"
JUNK = (
    "Home | About | Contact | Login | Register | Cart (0) | Wishlist\n"
    "Accept cookies ✓ Reject all ✗ Manage preferences >>\n"
    "© 2019 All Rights Reserved. Powered by WordPress. Theme by xyz.\n"
    "click here click here click here FREE SHIPPING!!! $$$ 50% OFF BUY NOW"
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llama_server() as url:
        yield url


def test_scores_through_a_real_server(server: str, tmp_path: Path) -> None:
    spec = f"openai:{dead_url()}/smollm2,{server}/smollm2?concurrency=2"
    cache = ModelCache(tmp_path / "models.sqlite")
    lm, description = resolve_language_model(spec)
    print(description)
    assert isinstance(lm, OpenAILM)
    scorer = cached(lm, cache)

    # generation: raw completion and chat
    raw, chat = lm.generate(
        ["The capital of France is", [{"role": "user", "content": "Name a fruit."}]],
        GenerationParams(max_tokens=3),
    )
    print(raw, chat, sep="\n")
    assert "Paris" in raw.texts[0] and raw.completion_tokens > 0
    assert chat.texts[0].strip() and chat.prompt_tokens > 10

    # the first endpoint refuses connections: requests fell over to the live one
    dead, live = lm.endpoints
    assert dead.failures >= 1 and dead.served == 0 and live.served == 2

    # Ask-LLM: P("yes") from top_logprobs, same numbers as llama.cpp in-process
    wiki = " ".join((WIKI / "wiki_demo.txt").read_text().splitlines()[0].split()[:50])
    prompts: list[Any] = [ASK_LLM.format(text=t) for t in (wiki, JUNK)]
    cands = [*YES_VARIANTS, *NO_VARIANTS]
    remote = scorer.next_token_logprobs(prompts, cands, top_k=20)
    local_lm, _ = resolve_language_model("llama-cpp:smollm2", context_length=2048, threads=1)
    local = local_lm.next_token_logprobs(prompts, cands, top_k=20)
    for label, r, loc in zip(("wiki", "junk"), remote, local, strict=True):
        print(f"{label}: server P(yes)={yes_probability(r)[0]:.4f}, in-process "
              f"{yes_probability(loc)[0]:.4f}; server top: {list(r.logprobs)[:5]}")  # fmt: skip
        assert r.prompt_tokens == loc.prompt_tokens > 40
        shared = [c for c in cands if c in r.logprobs]
        assert len(shared) >= 2  # the server reports what is in its top 20
        for c in shared:
            assert abs(r.logprobs[c] - loc.logprobs[c]) < 0.05, c

    # chat logprobs (top_logprobs of /chat/completions)
    (nt,) = lm.next_token_logprobs([[{"role": "user", "content": "Is Paris in France?"}]])
    assert nt.logprobs and max(nt.logprobs.values()) <= 0.0

    # this server pools no embeddings for a causal LM: a clear error, not garbage
    emb, _ = resolve_embedder(f"openai:{server}/smollm2?dim=576")
    with pytest.raises(ModelError, match="one vector per token"):
        emb.embed(["hello"])

    # cache: a rerun (new objects, same file) sends no request
    rerun, _ = resolve_language_model(f"openai:{server}/smollm2", cache=tmp_path / "models.sqlite")
    assert isinstance(rerun, CachedLanguageModel) and isinstance(rerun.model, OpenAILM)
    assert rerun.next_token_logprobs(prompts, cands, top_k=20) == remote
    assert rerun.model.endpoints[0].served == 0 and rerun.backend_calls == 0
