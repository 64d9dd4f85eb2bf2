"""Ingest throughput and memory: gristmill `import` vs `datasets.load_dataset("json")`
+ `to_parquet`, on the same JSONL corpus, in the same run.

Each contender runs in a fresh subprocess so its peak RSS is its own. The corpus is
built from the real samples in data/samples (see bench/make_corpus.py) with new ids.
gristmill also runs on a quarter of the corpus, to show that memory does not grow
with the file.

    .venv/bin/python bench/ingest.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_gristmill(corpus: Path, scratch: Path) -> dict[str, float]:
    from gristmill.io.ingest import import_path
    from gristmill.store import Workspace

    ws = Workspace.init(scratch / "ws")
    start = time.perf_counter()
    report = import_path(ws, corpus, "bench")
    seconds = time.perf_counter() - start
    assert report.balanced and report.version is not None
    return {"rows": report.kept, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def run_datasets(corpus: Path, scratch: Path) -> dict[str, float]:
    import datasets

    datasets.disable_progress_bars()
    start = time.perf_counter()
    ds = datasets.load_dataset(
        "json", data_files=str(corpus), split="train", cache_dir=str(scratch / "cache")
    )
    ds.to_parquet(str(scratch / "out.parquet"))
    seconds = time.perf_counter() - start
    return {"rows": ds.num_rows, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}


WORKERS = {"gristmill": run_gristmill, "datasets": run_datasets}


def measure(worker: str, corpus: Path) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-{worker}-"))
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                worker,
                "--corpus",
                str(corpus),
                "--scratch",
                str(scratch),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--scratch", type=Path)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.corpus, args.scratch)))
        return

    from make_corpus import write_corpus

    out_dir = HERE / "out"
    corpus = out_dir / f"corpus-{args.records}.jsonl"
    quarter = out_dir / f"corpus-{args.records // 4}.jsonl"
    for path, n in ((corpus, args.records), (quarter, args.records // 4)):
        if not path.exists():
            print(f"building {path} ({n:,} records from data/samples) …", flush=True)
            write_corpus(path, n)
    size_mib = corpus.stat().st_size / 2**20
    print(f"corpus: {corpus} ({args.records:,} records, {size_mib:,.0f} MiB)")

    results = {name: measure(name, corpus) for name in ("gristmill", "datasets")}
    small = measure("gristmill", quarter)
    print(f"{'contender':<34}{'records/s':>12}{'seconds':>10}{'peak RSS MiB':>14}")
    for name, r in results.items():
        print(
            f"{name:<34}{r['rows'] / r['seconds']:>12,.0f}{r['seconds']:>10.1f}{r['peak_rss_mib']:>14,.0f}"
        )
    label = f"gristmill on {args.records // 4:,} records"
    print(
        f"{label:<34}{small['rows'] / small['seconds']:>12,.0f}{small['seconds']:>10.1f}{small['peak_rss_mib']:>14,.0f}"
    )
    speedup = results["datasets"]["seconds"] / results["gristmill"]["seconds"]
    memory = results["datasets"]["peak_rss_mib"] / results["gristmill"]["peak_rss_mib"]
    growth = results["gristmill"]["peak_rss_mib"] / small["peak_rss_mib"]
    print(f"speed: gristmill / datasets = {speedup:.2f}x")
    print(f"peak memory: datasets / gristmill = {memory:.2f}x")
    print(f"gristmill memory growth for a 4x larger file: {growth:.2f}x")


if __name__ == "__main__":
    main()
