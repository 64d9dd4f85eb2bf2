"""Model backends on the packaged models (SmolLM2 through transformers, MiniLM through
sentence-transformers), and the call cache counting real forward passes."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gristmill.models import (
    NO_VARIANTS,
    YES_VARIANTS,
    CachedEmbedder,
    CachedLanguageModel,
    GenerationParams,
    ModelCache,
    cached,
    resolve_embedder,
    resolve_language_model,
    yes_probability,
)
from gristmill.models.protocols import Embedder, LanguageModel
from gristmill.models.sentence_transformers_backend import SentenceTransformerEmbedder
from gristmill.models.transformers_backend import TransformersLM

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"

ASK_LLM = (
    "###\n{text}\n###\nDoes the previous paragraph demarcated within ### and ### contain "
    "informative signal for pre-training a large-language model? An informative datapoint "
    "should be well-formatted, contain some usable knowledge of the world, and strictly NOT "
    "have any harmful, racist, sexist, etc. content.\nOPTIONS:\n- yes\n- no"
)
# Navigation, cookie and shop boilerplate, as crawls are full of.
JUNK = (
    "Home | About | Contact | Login | Register | Cart (0) | Wishlist\n"
    "Accept cookies ✓ Reject all ✗ Manage preferences >>\n"
    "© 2019 All Rights Reserved. Powered by WordPress. Theme by xyz.\n"
    "click here click here click here FREE SHIPPING!!! $$$ 50% OFF BUY NOW\n"
    "Share: Facebook Twitter Pinterest LinkedIn Email Print | Tags: , , , ,\n"
    "Previous Post Next Post Leave a reply Cancel reply 0 comments"
)


def wiki_paragraph(words: int = 150, article: int = 0) -> str:
    """The opening of a real Wikipedia article (LLaMA-Factory's wiki demo, one per line)."""
    path = SAMPLES / "llamafactory_demos" / "wiki_demo.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return " ".join(lines[article].split()[:words])


class ForwardCounter:
    """Counts forward passes of a torch module through a hook: what really ran."""

    def __init__(self, module: Any) -> None:
        self.count = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.count += 1


# Under pytest-xdist every worker shares the cores: one torch thread each (two threads
# per worker on 2 cores ran 4-6x slower, the OpenMP workers waiting on each other).
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else None


@pytest.fixture(scope="module")
def smollm2() -> Iterator[TransformersLM]:
    import torch

    before = torch.get_num_threads()
    lm, description = resolve_language_model("smollm2", device="cpu", threads=THREADS)
    print(description)
    assert isinstance(lm, TransformersLM)
    yield lm
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    emb, description = resolve_embedder(None, device="cpu", threads=THREADS)
    print(description)
    assert isinstance(emb, SentenceTransformerEmbedder)
    return emb


@pytest.fixture
def lm_forwards(smollm2: TransformersLM) -> Iterator[ForwardCounter]:
    counter = ForwardCounter(smollm2.model)
    yield counter
    counter.handle.remove()


def test_protocols_hold(smollm2: TransformersLM, minilm: SentenceTransformerEmbedder) -> None:
    assert isinstance(smollm2, LanguageModel)
    assert isinstance(minilm, Embedder)
    assert smollm2.name == "transformers:smollm2:bfloat16"
    assert smollm2.context_length == 8192
    assert minilm.dim == 384


def test_ask_llm_prefers_encyclopaedia_over_junk(smollm2: TransformersLM) -> None:
    """Ask-LLM's P("yes") (summed over "yes", " yes", "Yes", " Yes") for real
    encyclopaedia paragraphs and for boilerplate, in the chat template with an
    ``ANSWER:`` cue continued as the assistant's turn.

    Measured (6 Wikipedia openings vs 4 boilerplate pages): P(yes) 0.10-0.13 vs
    0.05-0.09 with this variant; the yes/(yes+no) ratio does NOT separate them for
    SmolLM2-135M (0.24-0.32 vs 0.33-0.44), nor do the variants without the cue, so
    only the ordering of P(yes) is asserted."""
    junk2 = (
        "Login Register Forgot password? | Home > Products > Category > Page 2 of 17 | "
        "Sort by: Price Low-High | Newest | 12 24 48 per page | Add to cart | Compare | "
        "Quick view | Out of stock"
    )
    texts = [wiki_paragraph(), wiki_paragraph(150, article=1), JUNK, junk2]
    prompts: list[Any] = [
        [
            {"role": "user", "content": ASK_LLM.format(text=text)},
            {"role": "assistant", "content": "ANSWER:"},
        ]
        for text in texts
    ]
    answers = smollm2.next_token_logprobs(prompts, [*YES_VARIANTS, *NO_VARIANTS], top_k=10)
    views = [yes_probability(a) for a in answers]
    for label, (p, ratio) in zip(["wiki 0", "wiki 1", "junk 0", "junk 1"], views, strict=True):
        print(f"{label}: P(yes)={p:.3f} yes/(yes+no)={ratio:.3f}")
    assert all(v in answers[0].logprobs for v in (*YES_VARIANTS, *NO_VARIANTS))
    assert answers[0].truncated_tokens == 0 and answers[0].prompt_tokens > 200
    assert min(p for p, _ in views[:2]) > max(p for p, _ in views[2:])


def test_chat_template_is_applied(smollm2: TransformersLM) -> None:
    ids = smollm2.encode_prompt([{"role": "user", "content": "Name a colour."}])
    text = smollm2.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system")
    assert text.endswith("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
    cont = smollm2.encode_prompt(
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "ANSWER:"}]
    )
    assert smollm2.tokenizer.decode(cont).endswith("<|im_start|>assistant\nANSWER:")
    (gen,) = smollm2.generate(
        [[{"role": "user", "content": "What is the capital of France?"}]],
        GenerationParams(max_tokens=8),
    )
    print(gen)
    assert "Paris" in gen.texts[0]
    assert gen.finish_reasons[0] in ("stop", "length") and gen.completion_tokens > 0


def test_generate_stop_and_samples(smollm2: TransformersLM) -> None:
    (gen,) = smollm2.generate(
        ["1, 2, 3, 4,"], GenerationParams(max_tokens=10, stop=(" 7",), temperature=0.0)
    )
    print(gen)
    assert gen.texts[0].startswith(" 5, 6,") and " 7" not in gen.texts[0]
    assert gen.finish_reasons == ["stop"] and gen.completion_tokens < 10  # stopped early
    params = GenerationParams(max_tokens=3, temperature=1.0, n=2, seed=1)
    (a,), (b,) = smollm2.generate(["Once upon"], params), smollm2.generate(["Once upon"], params)
    assert len(a.texts) == 2 and a.texts == b.texts  # seeded sampling is reproducible


def test_perplexity_real_text_below_shuffled(smollm2: TransformersLM) -> None:
    words = wiki_paragraph(120).split()
    shuffled = words[:]
    random.Random(0).shuffle(shuffled)
    real_lp, shuf_lp = smollm2.continuation_logprobs(
        ["", ""], [" ".join(words), " ".join(shuffled)]
    )
    ppl = [math.exp(-sum(lp) / len(lp)) for lp in (real_lp, shuf_lp)]
    print(f"perplexity: real {ppl[0]:.1f}, shuffled {ppl[1]:.1f}")
    assert ppl[0] * 5 < ppl[1]
    assert len(real_lp) == len(smollm2.tokenizer(" ".join(words))["input_ids"])


def test_continuation_scores_multiple_choice(smollm2: TransformersLM) -> None:
    ctx = "Question: What is the capital of France?\nAnswer:"
    lps = smollm2.continuation_logprobs([ctx, ctx], [" Paris", " a banana"])
    assert sum(lps[0]) > sum(lps[1])


def test_long_prompt_truncated_and_recorded(smollm2: TransformersLM) -> None:
    small = TransformersLM(smollm2.model, smollm2.tokenizer, name="small", context_length=48)
    long_text = wiki_paragraph(100)
    (nt,) = small.next_token_logprobs([long_text + " Yes or no?"], ["yes"], top_k=3)
    total = len(smollm2.encode_prompt(long_text + " Yes or no?"))
    assert nt.prompt_tokens == 48 and nt.truncated_tokens == total - 48 > 0
    # continuation longer than the window: scored in windows, every token once
    words = wiki_paragraph(80)
    (lps,) = small.continuation_logprobs([""], [words])
    assert len(lps) == len(smollm2.tokenizer(words)["input_ids"])
    assert all(math.isfinite(x) and x <= 0 for x in lps)


def test_batched_next_token_matches_batch_one(smollm2: TransformersLM) -> None:
    prompts: list[Any] = ["The sky is", wiki_paragraph(60) + " In short, anarchism is"]
    one = smollm2.next_token_logprobs(prompts, ["yes"], top_k=3)
    batched = TransformersLM(smollm2.model, smollm2.tokenizer, name="b", batch_size=2)
    two = batched.next_token_logprobs(prompts, ["yes"], top_k=3)
    for a, b in zip(one, two, strict=True):
        assert next(iter(a.logprobs)) == next(iter(b.logprobs))
        assert abs(a.logprobs["yes"] - b.logprobs["yes"]) < 0.25  # bf16 padding noise
    ctx, cont = ["", "The sky is"], [wiki_paragraph(30), " blue today"]
    for x, y in zip(
        smollm2.continuation_logprobs(ctx, cont),
        batched.continuation_logprobs(ctx, cont),
        strict=True,
    ):
        assert len(x) == len(y) and abs(sum(x) - sum(y)) < 0.05 * abs(sum(x)) + 0.5


def test_embedder_paraphrase_closer_than_unrelated(minilm: SentenceTransformerEmbedder) -> None:
    vecs = minilm.embed(
        [
            "The cat sat on the mat.",
            "A cat was sitting on the rug.",
            "Quarterly revenue rose by eight percent.",
        ]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = float(vecs[0] @ vecs[1]), float(vecs[0] @ vecs[2])
    print(f"cosine paraphrase {paraphrase:.3f}, unrelated {unrelated:.3f}")
    assert paraphrase > unrelated + 0.3


def test_cache_second_run_makes_no_forward_pass(
    smollm2: TransformersLM, lm_forwards: ForwardCounter, tmp_path: Path
) -> None:
    path = tmp_path / "cache" / "models.sqlite"
    prompts: list[Any] = [ASK_LLM.format(text=t) for t in ("Paris is in France.", JUNK)]
    params = GenerationParams(max_tokens=4)

    def run(lm: CachedLanguageModel) -> tuple[Any, ...]:
        return (
            lm.next_token_logprobs(prompts, ["yes", "no"], top_k=5),
            lm.continuation_logprobs(["", "The sky is"], ["Hello world.", " blue"]),
            lm.generate(prompts[:1], params),
        )

    first_lm = cached(smollm2, path)
    first = run(first_lm)
    after_first = lm_forwards.count
    assert after_first > 0 and first_lm.cache.misses == 5 and first_lm.cache.hits == 0

    again = cached(smollm2, ModelCache(path))  # a rerun: new cache object, same file
    second = run(again)
    assert lm_forwards.count == after_first  # zero forward passes
    assert again.backend_calls == 0 and again.cache.hits == 5 and again.cache.misses == 0
    assert second == first

    # a batch that is half new computes only the new half
    more = [*prompts, "Is the sea salty?"]
    again.next_token_logprobs(more, ["yes", "no"], top_k=5)
    assert again.cache.misses == 1 and again.backend_calls == 1


def test_cache_embeddings(minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    counter = ForwardCounter(minilm.model)
    try:
        texts = ["one fish", "two fish", "red fish", "one fish"]
        emb = cached(minilm, ModelCache.for_workspace(tmp_path))
        assert isinstance(emb, CachedEmbedder)
        first = emb.embed(texts)
        ran = counter.count
        assert ran > 0 and emb.backend_calls == 1
        second = cached(minilm, ModelCache.for_workspace(tmp_path)).embed(texts)
        assert counter.count == ran
        np.testing.assert_array_equal(first, second)
        assert (tmp_path / "cache" / "models.sqlite").is_file()
    finally:
        counter.handle.remove()


def test_bf16_embedder_close_to_fp32(minilm: SentenceTransformerEmbedder) -> None:
    bf16, _ = resolve_embedder("minilm", device="cpu", dtype="bfloat16")
    texts = ["A water mill grinds grain into flour.", "Stock prices fell sharply on Monday."]
    cos = np.sum(bf16.embed(texts) * minilm.embed(texts), axis=1)
    assert bf16.name.endswith(":bfloat16") and bool(np.all(cos > 0.99))
