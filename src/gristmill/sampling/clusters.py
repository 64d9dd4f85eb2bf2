"""Spherical k-means on embeddings, and SemDeDup's within-cluster similarity.

numpy only (no scikit-learn at run time). The centroids are fitted on a bounded,
seeded sample of the corpus (k-means++ start, then Lloyd iterations), then every
record is assigned in streaming batches, so memory for fitting is
``fit_sample × dim`` whatever the corpus size. Embeddings are L2-normalised, so
"nearest centroid" is the largest dot product and the distance stored is the
cosine distance ``1 - cos``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def _normalise(x: F32) -> F32:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def fit_centroids(points: F32, k: int, iterations: int = 25, seed: int = 0) -> F32:
    """k unit centroids of ``points`` (rows unit-norm). k-means++ seeding keeps small,
    far clusters from being swallowed; ties and empty clusters resolve by the seed."""
    n = points.shape[0]
    if n == 0:
        raise ValueError("k-means: no points")
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centroids = np.empty((k, points.shape[1]), dtype=np.float32)
    centroids[0] = points[rng.integers(n)]
    closest = 1.0 - points @ centroids[0]  # cosine distance to the nearest chosen centroid
    for c in range(1, k):
        weights = np.maximum(closest, 0.0).astype(np.float64) ** 2
        total = weights.sum()
        pick = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        centroids[c] = points[pick]
        closest = np.minimum(closest, 1.0 - points @ centroids[c])
    for _ in range(iterations):
        labels, dist = assign(points, centroids)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=k)
        moved = np.zeros_like(centroids)
        present = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        moved[present] = np.add.reduceat(points[order], starts, axis=0)
        for empty in np.flatnonzero(counts == 0):  # re-seed on the worst-served point
            far = int(np.argmax(dist))
            moved[empty] = points[far]
            dist[far] = -1.0
        new = _normalise(moved)
        if np.allclose(new, centroids, atol=1e-6):
            centroids = new
            break
        centroids = new
    return centroids


def assign(points: F32, centroids: F32, batch: int = 8192) -> tuple[I64, F32]:
    """Nearest centroid of each point and its cosine distance (batched: flat memory)."""
    labels = np.empty(points.shape[0], dtype=np.int64)
    dist = np.empty(points.shape[0], dtype=np.float32)
    for start in range(0, points.shape[0], batch):
        sims = points[start : start + batch] @ centroids.T
        best = np.argmax(sims, axis=1)
        labels[start : start + batch] = best
        dist[start : start + batch] = 1.0 - sims[np.arange(sims.shape[0]), best]
    return labels, dist


def earlier_max_similarity(points: F32, max_cells: int = 1 << 24) -> tuple[F32, I64]:
    """For rows in their given order: the largest cosine similarity to any earlier row,
    and which row (-1 for the first). SemDeDup drops row i when this exceeds 1 - eps,
    so one pass serves every eps. Blocked so a block holds at most ``max_cells``
    similarities (64 MiB), however large the cluster."""
    n = points.shape[0]
    block = max(16, min(4096, max_cells // max(n, 1)))
    best = np.full(n, -1.0, dtype=np.float32)
    which = np.full(n, -1, dtype=np.int64)
    for start in range(1, n, block):
        stop = min(n, start + block)
        sims = points[start:stop] @ points[:stop].T  # (rows, earlier-or-same)
        rows = np.arange(stop - start)
        cols = np.arange(stop)
        sims[cols[None, :] >= (rows + start)[:, None]] = -np.inf  # only strictly earlier
        arg = np.argmax(sims, axis=1)
        best[start:stop] = sims[rows, arg]
        which[start:stop] = arg
    return best, which
