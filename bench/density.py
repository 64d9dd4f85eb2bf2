"""Density sampling's RACE sketch: throughput, memory, and agreement with an exact KDE.

The embeddings are real: all-MiniLM-L6-v2 (the packaged default embedder, through
``gristmill.models`` and its call cache, so only the first run embeds) of real
sentences cut from every sample file in ``data/samples``, then augmented to
``--points`` by copies with small Gaussian noise (σ per dimension ``--noise``,
re-normalised), as many near-paraphrases of each sentence.

It prints, in the same run:

- throughput of the sketch (embeddings/s) for pass 1 (insert) and pass 2 (query),
  in one process and in two worker processes that sketch half the points each and
  merge their counters (what ``gristmill score --by density --workers 2`` does);
- peak RSS of a sketching process at N/4 and N points (streamed from a
  memory-mapped file) and the sketch's own size R×B×4 bytes: memory that does not
  grow with N;
- the Spearman correlation between the sketch's d(x) and an exact Gaussian-kernel
  density Σ_y exp(-‖x-y‖²/2σ²) over all N points, for a 20k subsample of queries,
  at several σ (``--kde-bandwidths``). The sketch's own ``bandwidth`` is where its
  kernel falls to e^-½; its tails are heavier than a Gaussian's, so its ranking
  matches a Gaussian KDE of a larger σ.

    .venv/bin/python bench/density.py                 # 20k sentences → 200k points
    .venv/bin/python bench/density.py --points 1000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.sampling.race import RaceSketch, SketchParams

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "bench" / "out"
SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
BATCH = 8192
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# -- real sentences -------------------------------------------------------------------------


def _strings(obj: Any) -> Any:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _texts(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        raw = f.read()
    if ".jsonl" in path.name:
        for line in raw.splitlines():
            try:
                yield from _strings(json.loads(line))
            except ValueError:
                continue
        return
    if ".json" in path.name:
        try:
            yield from _strings(json.loads(raw))
            return
        except ValueError:
            pass
    yield raw


def real_sentences(limit: int, seed: int = 0) -> list[tuple[str, str]]:
    """(source folder, sentence): every sample file cut into sentences of 40–400
    characters, mostly letters, de-duplicated; a seeded shuffle, then the first
    ``limit``."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for path in sorted(SAMPLES.rglob("*")):
        if not path.is_file() or path.suffix == ".md":
            continue
        source = path.relative_to(SAMPLES).parts[0]
        for text in _texts(path):
            for s in SPLIT.split(text):
                s = " ".join(s.split())
                letters = sum(c.isalpha() for c in s)
                if 40 <= len(s) <= 400 and letters > 0.6 * len(s) and s not in seen:
                    seen.add(s)
                    out.append((source, s))
    order = np.random.default_rng(seed).permutation(len(out))
    return [out[i] for i in order[:limit]]


def embed_sentences(sentences: list[str]) -> np.ndarray:
    """MiniLM embeddings through the packaged default embedder and the call cache
    (bench/out/cache): the first run embeds, later runs read the cache."""
    from gristmill.models.cache import ModelCache, cached
    from gristmill.models.resolve import resolve_embedder

    cache = ModelCache(OUT / "cache" / "models.sqlite")
    resolved = resolve_embedder(None)
    print(f"embedder: {resolved.description}", flush=True)
    model = cached(resolved.model, cache)
    parts = []
    start = time.perf_counter()
    for i in range(0, len(sentences), 1024):
        parts.append(model.embed(sentences[i : i + 1024]))
        done = min(len(sentences), i + 1024)
        rate = done / (time.perf_counter() - start)
        print(f"  embedded {done:,}/{len(sentences):,} ({rate:.0f}/s)", end="\r", flush=True)
    print()
    return np.concatenate(parts).astype(np.float32)


def augmented(base: np.ndarray, points: int, noise: float, seed: int) -> np.ndarray:
    """``points`` unit vectors: the base embeddings, then noisy copies of them, round
    robin (the same number of copies for every sentence, so copy counts add no noise
    of their own to the densities)."""
    rng = np.random.default_rng(seed)
    out = np.empty((points, base.shape[1]), dtype=np.float32)
    n = min(points, base.shape[0])
    out[:n] = base[:n]
    for start in range(n, points, BATCH):
        stop = min(points, start + BATCH)
        src = base[np.arange(start, stop) % base.shape[0]]  # every sentence equally often
        copy = src + noise * rng.standard_normal(src.shape).astype(np.float32)
        out[start:stop] = copy / np.linalg.norm(copy, axis=1, keepdims=True)
    return out


# -- measurements ---------------------------------------------------------------------------


def batches(path: Path, rows: slice) -> Any:
    """Rows of a float32 .npy file in batches, read with plain file reads (a memory map
    would count the whole file in the process's RSS)."""
    with open(path, "rb") as f:
        major, _minor = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, _fortran, dtype = read_header(f)
        offset = f.tell()
        dim = shape[1]
        for i in range(rows.start, rows.stop, BATCH):
            j = min(rows.stop, i + BATCH)
            f.seek(offset + i * dim * dtype.itemsize)
            yield np.fromfile(f, dtype=dtype, count=(j - i) * dim).reshape(j - i, dim)


def sketch_file(path: Path, params: SketchParams, rows: slice) -> tuple[RaceSketch, float]:
    """Pass 1 over rows of a .npy file, in batches; seconds spent."""
    sketch = RaceSketch(params)
    start = time.perf_counter()
    for batch in batches(path, rows):
        sketch.add(batch)
    return sketch, time.perf_counter() - start


def query_file(path: Path, sketch: RaceSketch, rows: slice) -> tuple[np.ndarray, float]:
    parts = []
    start = time.perf_counter()
    for batch in batches(path, rows):
        parts.append(sketch.query(batch))
    return np.concatenate(parts), time.perf_counter() - start


def _worker_insert(args: tuple[str, SketchParams, int, int]) -> tuple[Any, float]:
    path, params, start, stop = args
    sketch, seconds = sketch_file(Path(path), params, slice(start, stop))
    return sketch.counts, seconds


def _worker_query(args: tuple[str, SketchParams, Any, int, int]) -> tuple[np.ndarray, float]:
    path, params, counts, start, stop = args
    sketch = RaceSketch(params)
    sketch.counts = counts
    return query_file(Path(path), sketch, slice(start, stop))


def two_workers(path: Path, params: SketchParams, n: int) -> tuple[float, float, np.ndarray]:
    """Both passes in 2 processes, counters merged in between (wall seconds)."""
    half = n // 2
    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update(dict.fromkeys(THREAD_VARS, "1"))  # one core per worker, as in a pipeline
    try:
        pool = ctx.Pool(2)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with pool:
        start = time.perf_counter()
        parts = pool.map(
            _worker_insert, [(str(path), params, 0, half), (str(path), params, half, n)]
        )
        merged = RaceSketch(params)
        for counts, _s in parts:
            merged.counts += counts
        insert_wall = time.perf_counter() - start
        start = time.perf_counter()
        outs = pool.map(
            _worker_query,
            [
                (str(path), params, merged.counts, 0, half),
                (str(path), params, merged.counts, half, n),
            ],
        )
        query_wall = time.perf_counter() - start
    return insert_wall, query_wall, np.concatenate([o for o, _s in outs])


def rss_child(path: Path, params: SketchParams, n: int) -> float:
    """Peak RSS (MiB) of a fresh process that sketches the first n points (both
    passes), from /proc/self/status VmHWM (ru_maxrss would carry the parent's peak
    across fork and exec)."""
    code = (
        f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import density as d; "
        "from gristmill.sampling.race import SketchParams; from pathlib import Path; "
        "p = SketchParams(**json.loads(sys.argv[1])); "
        "s, _ = d.sketch_file(Path(sys.argv[2]), p, slice(0, int(sys.argv[3]))); "
        "d.query_file(Path(sys.argv[2]), s, slice(0, int(sys.argv[3]))); "
        "print(d.peak_rss_mib())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(params.to_dict()), str(path), str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def exact_kde(data: np.ndarray, queries: np.ndarray, bandwidths: list[float]) -> np.ndarray:
    """Σ_y exp(-‖x-y‖²/2σ²) over every point y, for each query x and each σ (unit
    vectors: ‖x-y‖² = 2 - 2x·y), blocked; shape (len(bandwidths), n_queries)."""
    out = np.zeros((len(bandwidths), queries.shape[0]))
    scales = [1.0 / (2.0 * b**2) for b in bandwidths]
    for i in range(0, queries.shape[0], 1024):
        q = queries[i : i + 1024]
        for j in range(0, data.shape[0], 16384):
            sq = np.maximum(0.0, 2.0 - 2.0 * (q @ data[j : j + 16384].T))
            for b, scale in enumerate(scales):
                out[b, i : i + 1024] += np.exp(-sq * scale).sum(axis=1)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    def ranks(x: np.ndarray) -> np.ndarray:
        _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        average = ends - (counts - 1) / 2.0  # average rank of ties, 1-based
        return average[inverse]

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sentences", type=int, default=20_000, help="real sentences to embed")
    ap.add_argument("--points", type=int, default=200_000, help="embeddings after augmentation")
    ap.add_argument("--noise", type=float, default=0.01, help="σ per dimension of the copies")
    ap.add_argument("--queries", type=int, default=20_000, help="subsample for the exact KDE")
    ap.add_argument("--repetitions", type=int, default=None, help="R (default: the scorer's)")
    ap.add_argument("--buckets", type=int, default=None, help="B (default: the scorer's)")
    ap.add_argument("--bandwidth", type=float, default=None, help="σ (default: the scorer's)")
    ap.add_argument("--concat", type=int, default=None, help="K (default: the scorer's)")
    ap.add_argument(
        "--kde-bandwidths",
        default="0.35,0.5,0.7",
        help="σ of the exact Gaussian KDEs to compare with (comma-separated)",
    )
    ap.add_argument("--skip-workers", action="store_true", help="skip the 2-process timing")
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    base_file = OUT / f"density-minilm-{args.sentences}.npy"
    if base_file.exists():
        base = np.load(base_file)
    else:
        pairs = real_sentences(args.sentences)
        sources = sorted({s for s, _ in pairs})
        print(f"{len(pairs):,} real sentences from {len(sources)} sample folders")
        base = embed_sentences([s for _, s in pairs])
        np.save(base_file, base)
    data = augmented(base, args.points, args.noise, seed=1)
    data_file = OUT / f"density-points-{args.points}.npy"
    np.save(data_file, data)
    n, dim = data.shape
    defaults = SketchParams(dim=dim)
    params = SketchParams(
        dim=dim,
        repetitions=args.repetitions or defaults.repetitions,
        buckets=args.buckets or defaults.buckets,
        bandwidth=args.bandwidth or defaults.bandwidth,
        concat=args.concat or defaults.concat,
    )
    print(
        f"{n:,} embeddings ({base.shape[0]:,} real MiniLM sentences + noisy copies, σ={args.noise}), "
        f"dim {dim}; sketch R={params.repetitions} B={params.buckets} K={params.concat} "
        f"bandwidth={params.bandwidth}"
    )

    sketch, insert_s = sketch_file(data_file, params, slice(0, n))
    scores, query_s = query_file(data_file, sketch, slice(0, n))
    print("\n| run | pass 1 (insert) emb/s | pass 2 (query) emb/s | both passes emb/min |")
    print("|---|---:|---:|---:|")
    both = n / (insert_s + query_s) * 60
    print(f"| 1 process | {n / insert_s:,.0f} | {n / query_s:,.0f} | {both:,.0f} |")
    if not args.skip_workers:
        ins_w, q_w, scores_w = two_workers(data_file, params, n)
        assert np.array_equal(scores_w, scores), "2 workers must give the same densities"
        print(
            f"| 2 processes | {n / ins_w:,.0f} | {n / q_w:,.0f} | {n / (ins_w + q_w) * 60:,.0f} |"
        )

    small = rss_child(data_file, params, n // 4)
    large = rss_child(data_file, params, n)
    print(
        f"\nmemory: sketch {sketch.counts.nbytes / 2**20:.1f} MiB (R×B int32) + projections "
        f"{(sketch.nbytes - sketch.counts.nbytes) / 2**20:.1f} MiB; peak RSS {small:.0f} MiB at "
        f"{n // 4:,} points, {large:.0f} MiB at {n:,} ({large / small:.2f}×)"
    )

    rng = np.random.default_rng(2)
    rows = np.sort(rng.choice(n, min(args.queries, n), replace=False))
    sigmas = [float(x) for x in args.kde_bandwidths.split(",")]
    start = time.perf_counter()
    exact = exact_kde(data, data[rows], sigmas)
    kde_s = time.perf_counter() - start
    print(
        f"\nSpearman between the sketch's d(x) and an exact Gaussian KDE over all {n:,} points, "
        f"on {rows.size:,} queries (exact KDE: {kde_s:.0f} s):\n"
    )
    print("| Gaussian σ | Spearman |")
    print("|---:|---:|")
    for sigma, values in zip(sigmas, exact, strict=True):
        print(f"| {sigma} | {spearman(scores[rows], values):.3f} |")
    print(f"\npeak RSS of this process: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
