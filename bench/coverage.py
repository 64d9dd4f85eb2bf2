"""Coverage of a 10 % sample: random vs Density (inverse propensity) vs top-k.

Embeddings with known clusters of very different sizes (a power law: the largest
cluster has 10,000 points, the smallest 10), in 384 dimensions like MiniLM's, each
cluster a unit-norm centre plus isotropic noise (within-cluster distances ≈ 0.5,
like MiniLM paraphrases; between clusters ≈ 1.4, like unrelated sentences). The
density is the RACE sketch with the scorer's default parameters
(``gristmill.sampling.race``), the selection the same code ``gristmill sample``
runs. Top-k ranks by a quality score with a per-cluster level plus per-record
noise (what an Ask-LLM-like score looks like: some topics score higher).

Prints, averaged over seeds, how many clusters the sample touches (≥ 1 record) and
covers with ≥ 3 records, per sampler, and the ratio density / random.

    .venv/bin/python bench/coverage.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gristmill.sampling.race import RaceSketch, SketchParams
from gristmill.sampling.select import inverse_propensity_keys, top_k_tiebreak, uniform_keys


def make_clusters(
    n_clusters: int, largest: int, exponent: float, dim: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = np.maximum(10, (largest / np.arange(1, n_clusters + 1) ** exponent).astype(int))
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_clusters), sizes)
    points = centres[labels] + noise * rng.standard_normal((labels.size, dim)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32), labels


def coverage(labels: np.ndarray, chosen: np.ndarray, n_clusters: int) -> tuple[int, int, int]:
    """Clusters touched, clusters with ≥ 3 records, and touched among the smaller half
    (clusters are numbered largest first)."""
    counts = np.bincount(labels[chosen], minlength=n_clusters)
    small = counts[n_clusters // 2 :]
    return int((counts >= 1).sum()), int((counts >= 3).sum()), int((small >= 1).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--largest", type=int, default=10_000)
    ap.add_argument("--exponent", type=float, default=1.5)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--noise", type=float, default=0.02, help="per-dimension noise (σ)")
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repetitions", type=int, default=None, help="R (default: the scorer's)")
    ap.add_argument("--buckets", type=int, default=None, help="B (default: the scorer's)")
    ap.add_argument("--bandwidth", type=float, default=None, help="(default: the scorer's)")
    ap.add_argument("--concat", type=int, default=None, help="K (default: the scorer's)")
    args = ap.parse_args()

    points, labels = make_clusters(
        args.clusters, args.largest, args.exponent, args.dim, args.noise, seed=0
    )
    n = labels.size
    k = round(args.rate * n)
    sizes = np.bincount(labels)
    print(
        f"{n:,} embeddings in {args.clusters} clusters (sizes {sizes.max():,} … {sizes.min():,}), "
        f"dim {args.dim}; sample {k:,} ({args.rate:.0%})"
    )
    start = time.perf_counter()
    d = SketchParams(dim=args.dim)
    sketch = RaceSketch(
        SketchParams(
            dim=args.dim,
            repetitions=args.repetitions or d.repetitions,
            buckets=args.buckets or d.buckets,
            bandwidth=args.bandwidth or d.bandwidth,
            concat=args.concat or d.concat,
        )
    )
    sketch.add(points)
    density = sketch.query(points)
    p = sketch.params
    print(
        f"density: RACE R={p.repetitions} B={p.buckets} K={p.concat} bandwidth={p.bandwidth} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    ids = [f"r{i}" for i in range(n)]
    rng = np.random.default_rng(1)
    quality = rng.normal(0, 1, args.clusters)[labels] + rng.normal(0, 0.5, n)

    results: dict[str, list[tuple[int, int, int]]] = {"random": [], "density": [], "top-k": []}
    for seed in range(args.seeds):
        u = uniform_keys(ids, seed)
        results["random"].append(coverage(labels, top_k_tiebreak(u, u, k), args.clusters))
        key = inverse_propensity_keys(density, u)
        results["density"].append(coverage(labels, top_k_tiebreak(key, u, k), args.clusters))
        results["top-k"].append(coverage(labels, top_k_tiebreak(quality, u, k), args.clusters))

    half = args.clusters - args.clusters // 2
    small_sizes = sizes[args.clusters // 2 :]
    print(
        f"\n| sampler | clusters touched (≥1) of {args.clusters} | clusters with ≥3 | "
        f"of the {half} smallest ({small_sizes.min()}–{small_sizes.max()} records), touched |"
    )
    print("|---|---:|---:|---:|")
    means = {}
    for name, runs in results.items():
        one, three, small = (np.mean([r[i] for r in runs]) for i in range(3))
        means[name] = one
        print(f"| {name} | {one:.1f} | {three:.1f} | {small:.1f} |")
    print(
        f"\ndensity covers {means['density'] / means['random']:.2f}× the clusters random does, "
        f"{means['density'] / means['top-k']:.2f}× top-k's (mean of {args.seeds} seeds)"
    )


if __name__ == "__main__":
    main()
