"""Tiny causal LMs built here, with no download: a LlamaForCausalLM from a config and a
WordLevel tokenizer (with a chat template) trained on the test's own text.

Shared by the training and evaluation tests; they test plumbing (files load, train, save, reload),
not learning. ``save_tiny_model`` writes a transformers folder that
``gristmill train --model`` and ``resolve_language_model`` both load.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] + ' <|end|> ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)
SPECIALS = ["<unk>", "<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
PAD_ID, EOS_ID = 1, 2


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)


def file_texts(path: Path, limit: int | None = None) -> list[str]:
    """The strings of a JSON, JSONL (optionally gzipped) or text file, from its first
    ``limit`` rows (lines or top-level list items)."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = json.loads(text)
        rows: list[Any] = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            rows = [json.loads(line) for line in lines]
        except json.JSONDecodeError:
            rows = lines
    return [s for row in rows[:limit] for s in strings_in(row)]


def build_tokenizer(texts: Iterable[str], vocab_size: int = 3000) -> Any:
    """A fast WordLevel tokenizer over ``texts`` with pad/eos and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(vocab_size: int, seed: int = 0, max_positions: int = 256) -> Any:
    """A 2-layer, 32-wide Llama (≈0.2M parameters at a 3k vocabulary)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config)


def save_tiny_model(
    folder: Path,
    texts: Iterable[str],
    seed: int = 0,
    vocab_size: int = 3000,
    max_positions: int = 256,
) -> Path:
    """Build a tokenizer on ``texts`` and a model to match, and save both in ``folder``."""
    tokenizer = build_tokenizer(texts, vocab_size)
    model = build_model(len(tokenizer), seed, max_positions)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def weights(folder: Path) -> dict[str, Any]:
    """The tensors of a saved model folder, by name."""
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(path)))
    return out
