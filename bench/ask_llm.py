"""Ask-LLM scoring throughput beside the backend's raw forward pass, same texts, same run.

Texts: real C4 documents from ``data/samples/llamafactory_demos/c4_demo.jsonl``.
Model: the packaged default (SmolLM2-135M-Instruct through transformers), loaded
once before any timing.

- **raw forward**: the backend's own model and tokenizer, each prompt (the paper's
  prompt in the chat template with the ``ANSWER:`` cue) tokenised and run forward
  with ``logits_to_keep=1`` and a log-softmax — the least any Ask-LLM must do;
- **ask_llm, no cache**: ``gristmill score --by ask_llm`` as a scoring run
  (``run_pipeline``, 1 worker: tasks, prompt building, truncation, P(yes) views,
  attribute files, the call cache written) in a fresh workspace;
- **ask_llm, cached**: the same run again (``--fresh``), every call answered by the
  cache.

Prints documents/s and prompt tokens/s, and the ratio scorer / raw (goal ≥ 0.9).

    .venv/bin/python bench/ask_llm.py --docs 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
C4 = ROOT / "data" / "samples" / "llamafactory_demos" / "c4_demo.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--docs", type=int, default=16)
    ap.add_argument("--max-chars", type=int, default=1500, help="cut each document (both paths)")
    args = ap.parse_args()

    import torch

    from gristmill.io.ingest import import_path
    from gristmill.pipeline import RunOptions
    from gristmill.sampling import backends, score
    from gristmill.sampling.ask_llm import ask_llm_prompt
    from gristmill.sampling.text import truncate_chars
    from gristmill.store import Workspace

    lines = C4.read_text().splitlines()[: args.docs]
    docs = [json.loads(line) for line in lines]
    texts = [truncate_chars(d["text"], args.max_chars)[0] for d in docs]

    start = time.perf_counter()
    lm = backends.language_model(None)  # loaded once; the scorer below reuses it
    print(f"model {lm.name} loaded in {time.perf_counter() - start:.1f} s; {len(texts)} documents")
    backend = lm  # the raw backend object (no cache)
    model, encode = backend.model, backend.encode_prompt  # type: ignore[attr-defined]

    # raw forward: tokenise + forward + log-softmax, batch 1 (the backend's CPU default)
    encoded = [encode(ask_llm_prompt(t)) for t in texts]
    tokens = sum(len(e) for e in encoded)
    start = time.perf_counter()
    for ids in [encode(ask_llm_prompt(t)) for t in texts]:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids]), logits_to_keep=1).logits[:, -1, :]
            torch.log_softmax(logits.float(), dim=-1)
    raw = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        path = Path(tmp) / "docs.jsonl"
        path.write_text(
            "".join(
                json.dumps({"id": d.get("id", f"c4-{i}"), "text": t}) + "\n"
                for i, (d, t) in enumerate(zip(docs, texts, strict=True))
            )
        )
        version = import_path(ws, path, "c4").version
        assert version is not None
        params = {"max_chars": args.max_chars}
        start = time.perf_counter()
        score(ws, version.ref, "ask_llm", params, RunOptions(workers=1))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        score(ws, version.ref, "ask_llm", params, RunOptions(workers=1, fresh=True))
        warm = time.perf_counter() - start
        scored_tokens = sum(version.read_attribute("ask_llm").column("prompt_tokens").to_pylist())
    assert scored_tokens == tokens, (scored_tokens, tokens)

    n = len(texts)
    print(f"\n{tokens:,} prompt tokens ({tokens / n:.0f} per document)\n")
    print("| path | seconds | documents/s | prompt tokens/s | vs raw forward |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in (
        ("raw forward (backend model)", raw),
        ("ask_llm scoring run, no cache", cold),
        ("ask_llm scoring run, cached", warm),
    ):
        print(
            f"| {name} | {seconds:.1f} | {n / seconds:.2f} | {tokens / seconds:,.0f} | "
            f"{raw / seconds:.2f}× |"
        )


if __name__ == "__main__":
    main()
