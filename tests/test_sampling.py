"""Sampling without models: the RACE sketch, k-means and SemDeDup in numpy, the
uncertainty measures, and the selectors on real records with stored scores."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import Result

from gristmill.io.ingest import import_path
from gristmill.sampling import MissingScores, Plan, sample, select
from gristmill.sampling.clusters import assign, earlier_max_similarity, fit_centroids
from gristmill.sampling.density import SketchCounts, merge_counts
from gristmill.sampling.race import RaceSketch, SketchParams, collision_probability
from gristmill.sampling.select import uniform_keys
from gristmill.sampling.uncertainty import from_logprobs, measures
from gristmill.store import Version, Workspace


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, sizes: list[int], dim: int = 32, spread: float = 0.05):
    centres = unit(rng.standard_normal((len(sizes), dim)))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    points = unit(centres[labels] + spread * rng.standard_normal((labels.size, dim)))
    return points, labels


# -- the sketch -------------------------------------------------------------------------------


def test_sketch_density_is_higher_in_a_tight_cluster_than_at_an_outlier() -> None:
    rng = np.random.default_rng(0)
    points, _ = clustered(rng, [300], dim=64, spread=0.03)
    outlier = unit(rng.standard_normal((1, 64)))
    data = np.concatenate([points, outlier])
    for params in (SketchParams(dim=64), SketchParams(dim=64, concat=2, buckets=4096)):
        sketch = RaceSketch(params)
        sketch.add(data)
        d = sketch.query(data)
        # ~300 close neighbours for the cluster; only the kernel's tail for the outlier
        assert d[:300].min() > 3 * d[300]
        assert d[300] >= 1.0  # a point always collides with itself
        assert sketch.counts.sum() == 301 * params.repetitions


def test_sketch_memory_does_not_grow_with_the_data_and_halves_merge() -> None:
    rng = np.random.default_rng(1)
    points, _ = clustered(rng, [500, 200, 50], dim=32)
    params = SketchParams(dim=32, repetitions=100, buckets=256, bandwidth=0.4, seed=3)
    whole, left, right = RaceSketch(params), RaceSketch(params), RaceSketch(params)
    whole.add(points)
    left.add(points[:400])
    right.add(points[400:])
    assert whole.counts.nbytes == 100 * 256 * 4
    merged = merge_counts([SketchCounts.of(left), None, SketchCounts.of(right)])
    assert merged is not None
    assert np.array_equal(merged.counts, whole.counts)
    assert np.array_equal(merged.query(points), whole.query(points))
    again = pickle.loads(pickle.dumps(merged))  # what the executor ships to workers
    assert np.array_equal(again.query(points[:10]), whole.query(points[:10]))
    with pytest.raises(ValueError, match="different parameters"):
        merged.merge(RaceSketch(SketchParams(dim=32, repetitions=100, buckets=256, seed=4)))


def test_sketch_kernel_falls_with_distance_and_matches_the_bandwidth() -> None:
    p = collision_probability(np.array([0.05, 0.3, 0.8, 1.4]), width=1.0)
    assert np.all(np.diff(p) < 0) and p[0] > 0.9
    for k in (1, 2, 4):
        sketch = RaceSketch(SketchParams(dim=8, bandwidth=0.5, concat=k, repetitions=10))
        assert collision_probability(0.5, sketch.width) ** k == pytest.approx(
            np.exp(-0.5), rel=1e-3
        )


def test_orthogonal_directions_are_gaussian_and_orthogonal_in_blocks() -> None:
    from gristmill.sampling.race import gaussian_directions

    a = gaussian_directions(np.random.default_rng(0), 16, 40, orthogonal=True)
    assert a.shape == (16, 40)
    block = a[:, :16] / np.linalg.norm(a[:, :16], axis=0)
    assert np.allclose(block.T @ block, np.eye(16), atol=1e-8)
    norms = np.linalg.norm(gaussian_directions(np.random.default_rng(1), 64, 6400, True), axis=0)
    assert np.mean(norms**2) == pytest.approx(64, rel=0.05)  # E‖a‖² = dim, as for N(0, I)


# -- clusters, semdedup, uncertainty ----------------------------------------------------------


def test_kmeans_and_semdedup_flag_near_duplicates_within_a_cluster() -> None:
    rng = np.random.default_rng(2)
    points, labels = clustered(rng, [60, 60, 60], dim=48, spread=0.08)
    dup = unit(points[5:6] + 0.001 * rng.standard_normal((1, 48)))
    data = np.concatenate([points, dup])
    centroids = fit_centroids(data, 3, seed=0)
    found, dist = assign(data, centroids)
    assert all(np.unique(found[:180][labels == c]).size == 1 for c in range(3))  # pure clusters
    assert np.unique(found).size == 3
    assert found[-1] == found[5] and dist.min() >= 0
    members = np.flatnonzero(found == found[5])
    best, which = earlier_max_similarity(data[members])
    last = int(np.flatnonzero(members == data.shape[0] - 1)[0])
    assert best[last] > 0.99 and members[which[last]] == 5  # the copy points at its original
    others = np.delete(best, [0, last])
    assert others.max() < 0.95  # nothing else in the cluster is that close


def test_uncertainty_measures_order_confident_before_unsure() -> None:
    m = measures([[0.98, 0.01, 0.01], [0.5, 0.3, 0.2], [0.34, 0.33, 0.33]])
    for name in ("entropy", "margin", "least_confidence"):
        assert m[name][0] < m[name][1] < m[name][2]
    assert m["entropy"][2] == pytest.approx(1.0, abs=1e-3)
    p = from_logprobs(
        [{" Positive": np.log(0.6), "negative": np.log(0.2), "x": -1.0}], ["positive", "negative"]
    )
    assert p[0].tolist() == pytest.approx([0.75, 0.25])


# -- selectors on real records ----------------------------------------------------------------


@pytest.fixture
def docs(workspace: Workspace, samples: Path) -> Version:
    report = import_path(workspace, samples / "llamafactory_demos" / "c4_demo.jsonl", "web")
    assert report.version is not None
    return report.version


def attach(version: Version, scorer: str, scores: np.ndarray, **columns: object) -> None:
    """Scores as a scoring run of ``scorer`` would store them."""
    ids = version.table(columns=["id"]).column("id")
    version.write_attribute(
        scorer,
        pa.table({"id": ids, "score": scores, **columns}),  # type: ignore[arg-type]
        operation="score",
        params={"pipeline": [{scorer: {}}], "executor": "local"},
        overwrite=True,
    )


def test_rate_gives_exactly_that_many_records_reproducibly(docs: Version) -> None:
    rng = np.random.default_rng(0)
    attach(docs, "ask_llm", rng.random(300))
    attach(docs, "density", rng.uniform(1, 50, 300))
    for by in ("ask_llm", "density", "random"):
        a = select(docs, Plan(by=by, rate=0.2, seed=7))
        b = select(docs, Plan(by=by, rate=0.2, seed=7))
        assert a.kept == 60 and np.array_equal(a.keep, b.keep)
    assert select(docs, Plan(by="random", size=17)).kept == 17
    c = select(docs, Plan(by="density", rate=0.2, seed=8))
    assert not np.array_equal(c.keep, select(docs, Plan(by="density", rate=0.2, seed=7)).keep)
    small = select(docs, Plan(by="random", rate=0.1, seed=3)).keep
    large = select(docs, Plan(by="random", rate=0.3, seed=3)).keep
    assert np.all(large[small])  # a smaller sample is inside a larger one (same seed)


def test_top_k_keeps_the_best_scores(docs: Version) -> None:
    scores = np.linspace(0, 1, 300)
    attach(docs, "ask_llm", scores)
    kept = select(docs, Plan(by="ask_llm", rate=0.1)).keep
    assert np.flatnonzero(kept).tolist() == list(range(270, 300))


def test_density_sampling_favours_sparse_regions(docs: Version) -> None:
    """Inverse propensity: 30 records in a sparse region (d=1) and 270 in a dense one
    (d=90); a 10 % sample takes sparse records far above their 10 % share, over seeds."""
    d = np.full(300, 90.0)
    sparse = np.arange(0, 300, 10)
    d[sparse] = 1.0
    attach(docs, "density", d)
    shares = []
    for seed in range(20):
        keep = select(docs, Plan(by="density", rate=0.1, seed=seed)).keep
        shares.append(keep[sparse].sum() / keep.sum())
    assert np.mean(shares) > 0.6  # random sampling would give 0.1
    uniform = [
        select(docs, Plan(by="random", rate=0.1, seed=s)).keep[sparse].sum() / 30 for s in range(20)
    ]
    assert np.mean(uniform) < 0.25


def test_perplexity_band_keeps_the_middle(docs: Version) -> None:
    ppl = np.random.default_rng(4).permutation(np.arange(1.0, 301.0))
    attach(docs, "perplexity", ppl)
    result = select(docs, Plan(by="perplexity", band=(10, 90)))
    kept = ppl[result.keep]
    assert result.kept == 240 and kept.min() >= 30 and kept.max() <= 271
    lowest = select(docs, Plan(by="perplexity", rate=0.1)).keep
    assert ppl[lowest].max() == 30.0  # without a band, the lowest perplexities


def test_semdedup_eps_drops_records_above_the_similarity(docs: Version) -> None:
    sims = np.full(300, 0.5)
    sims[:12] = 0.99
    attach(docs, "semdedup", sims, duplicate=sims > 0.95)
    kept = select(docs, Plan(by="semdedup", eps=0.05)).keep
    assert kept.sum() == 288 and not kept[:12].any()
    with pytest.raises(ValueError, match="--eps works with --by semdedup"):
        select(docs, Plan(by="random", rate=0.5, eps=0.1))


def test_where_then_density_chain_and_a_new_version(workspace: Workspace, docs: Version) -> None:
    rng = np.random.default_rng(5)
    attach(docs, "ask_llm", rng.random(300))
    attach(docs, "density", rng.uniform(1, 50, 300))
    plan = Plan(by="density", where=("ask_llm >= 0.5",), rate=0.1, seed=2)
    result = sample(workspace, docs.ref, plan, output="web-picked")
    out = result.version
    assert out.ref == "web-picked@1" and out.row_count == 30
    assert out.manifest.parent == docs.ref and out.manifest.operation == "sample"
    params = out.manifest.params
    assert params["sampler"] == "density" and params["rate"] == 0.1 and params["seed"] == 2
    assert params["method"] == "inverse_propensity" and params["where"] == ["ask_llm >= 0.5"]
    assert [s["link"] for s in out.manifest.stats["chain"]][:2] == ["input", "where"]
    kept_scores = out.read_attribute("ask_llm").column("score").to_numpy()
    assert kept_scores.size == 30 and kept_scores.min() >= 0.5  # scores travel with the sample
    again = select(out, Plan(by="ask_llm", size=5))  # and a sample can be sampled again
    assert again.kept == 5


def test_missing_scores_say_which_score_to_run(docs: Version) -> None:
    with pytest.raises(MissingScores, match=r"gristmill score web@1 --by density"):
        select(docs, Plan(by="density", rate=0.2))
    with pytest.raises(MissingScores, match=r"gristmill score web@1 --by ask_llm"):
        select(docs, Plan(by="random", rate=0.2, where=("ask_llm > 0.3",)))


def test_keys_do_not_depend_on_position() -> None:
    ids = [f"r{i}" for i in range(100)]
    a = uniform_keys(ids, 1)
    b = uniform_keys(ids[::-1], 1)[::-1]
    assert np.array_equal(a, b) and a.min() > 0 and a.max() < 1


def test_cli_sample_chain_and_plot(
    run_cli: Callable[..., Result], workspace: Workspace, docs: Version
) -> None:
    rng = np.random.default_rng(6)
    attach(docs, "ask_llm", rng.random(300))
    attach(docs, "perplexity", rng.uniform(5, 80, 300))
    result = run_cli(
        "sample", "web", "--where", "ask_llm >= 0.2", "--by", "perplexity", "--band", "10:90",
        "--rate", "0.1", "--seed", "3", "-o", "web-mid",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "web-mid@1" in result.output and "kept 30 of 300" in result.output
    missing = run_cli("sample", "web", "--by", "density", "--rate", "0.2")
    assert missing.exit_code == 1
    assert "gristmill score web@1 --by density" in missing.output


def test_uncertainty_from_stored_class_probabilities_orders_an_annotation_queue(
    workspace: Workspace, docs: Version
) -> None:
    """A classifier's probabilities (an attribute) → the most uncertain records first."""
    from gristmill.pipeline import RunOptions
    from gristmill.sampling import score

    rng = np.random.default_rng(9)
    confident = rng.dirichlet([20, 1, 1], size=300)
    confident[[3, 77, 150]] = [[0.34, 0.33, 0.33], [0.4, 0.35, 0.25], [0.5, 0.45, 0.05]]
    ids = docs.table(columns=["id"]).column("id")
    docs.write_attribute(
        "classifier",
        pa.table({"id": ids, "probs": confident.tolist()}),
        operation="import",
    )
    result = score(
        workspace,
        "web",
        "uncertainty",
        {"probabilities": "classifier"},
        RunOptions(workers=2, rows_per_task=100),
    )
    assert result.attributes == ["uncertainty"]
    table = docs.read_attribute("uncertainty")
    assert table.num_rows == 300 and table.column("label").to_pylist()[0] == "0"
    queue = select(docs, Plan(by="uncertainty", size=3))
    assert np.flatnonzero(queue.keep).tolist() == [3, 77, 150]
    margin = score(
        workspace,
        "web",
        "uncertainty",
        {"probabilities": "classifier", "measure": "margin", "attribute": "unsure_margin"},
    )
    assert margin.attributes == ["unsure_margin"]
    by_margin = select(docs, Plan(by="unsure_margin", size=1))
    assert np.flatnonzero(by_margin.keep).tolist() == [3]
