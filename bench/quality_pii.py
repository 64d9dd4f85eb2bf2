"""What the PII rate costs the data-quality report.

The report of real samples from ``data/samples`` built with and without the PII tally,
interleaved in one process, best of ``--repeats`` (CPU time); the ratio is the cost.

    .venv/bin/python bench/quality_pii.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gristmill.quality.build as build
from gristmill.io.ingest import import_path
from gristmill.quality import build_report
from gristmill.quality.text import load_tokenizer
from gristmill.store import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
SETS = {
    "hh-rlhf": SAMPLES / "hh_rlhf" / "harmless-base-test.jsonl.gz",
    "lima": SAMPLES / "lima" / "lima.json",
    "c4": SAMPLES / "llamafactory_demos" / "c4_demo.jsonl",
    "tau-bench": SAMPLES / "tau_bench_trajectories" / "gpt-4o-airline.json.gz",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tokenizer = load_tokenizer("regex")
    with_pii = build.pii_texts
    without: Callable[..., list[Any]] = lambda kind, row: []  # noqa: E731
    print("| sample | records | without PII (s) | with PII (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        for name, path in SETS.items():
            version = import_path(ws, path, name).version
            assert version is not None
            build_report(version, tokenizer=tokenizer)  # warm: language model, caches
            best = {"without": float("inf"), "with": float("inf")}
            try:
                for _ in range(args.repeats):
                    for label, fn in (("without", without), ("with", with_pii)):
                        build.pii_texts = fn  # type: ignore[assignment]
                        start = time.process_time()
                        build_report(version, tokenizer=tokenizer)
                        best[label] = min(best[label], time.process_time() - start)
            finally:
                build.pii_texts = with_pii
            print(
                f"| {name} | {version.row_count:,} | {best['without']:.2f} | {best['with']:.2f} "
                f"| {best['with'] / best['without']:.2f}× |"
            )


if __name__ == "__main__":
    main()
