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
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs; the best counts")
    args = ap.parse_args()

    import torch

    from gristmill.io.ingest import import_path
    from gristmill.pipeline import RunOptions
    from gristmill.sampling import backends, score
    from gristmill.sampling.ask_llm import ask_llm_prompt
    from gristmill.sampling.text import truncate_chars
    from gristmill.store import Workspace

    lines = C4.read_text().splitlines()[: args.docs]
    texts = [truncate_chars(json.loads(line)["text"], args.max_chars)[0] for line in lines]

    start = time.perf_counter()
    lm = backends.language_model(None)  # loaded once; the scorer below reuses it
    print(f"model {lm.name} loaded in {time.perf_counter() - start:.1f} s; {len(texts)} documents")
    backend = lm  # the raw backend object (no cache)
    model, encode = backend.model, backend.encode_prompt  # type: ignore[attr-defined]

    def raw_forward() -> float:
        """Tokenise + forward + log-softmax, batch 1 (the backend's CPU default)."""
        start = time.perf_counter()
        for text in texts:
            ids = encode(ask_llm_prompt(text))
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([ids]), logits_to_keep=1).logits[:, -1, :]
                torch.log_softmax(logits.float(), dim=-1)
        return time.perf_counter() - start

    tokens = sum(len(encode(ask_llm_prompt(t))) for t in texts)
    raw_forward()  # warm-up: first-call allocations and kernel selection
    raw_times, cold_times, warm_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.jsonl"
        path.write_text(
            "".join(json.dumps({"id": f"c4-{i}", "text": t}) + "\n" for i, t in enumerate(texts))
        )
        params = {"max_chars": args.max_chars}
        for attempt in range(args.repeats):  # interleaved, best of N: the machine is shared
            raw_times.append(raw_forward())
            ws = Workspace.init(Path(tmp) / f"ws{attempt}")  # a fresh workspace: empty cache
            version = import_path(ws, path, "c4").version
            assert version is not None
            start = time.perf_counter()
            score(ws, version.ref, "ask_llm", params, RunOptions(workers=1))
            cold_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            score(ws, version.ref, "ask_llm", params, RunOptions(workers=1, fresh=True))
            warm_times.append(time.perf_counter() - start)
            scored = sum(version.read_attribute("ask_llm").column("prompt_tokens").to_pylist())
            assert scored == tokens, (scored, tokens)
    raw, cold, warm = min(raw_times), min(cold_times), min(warm_times)

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
