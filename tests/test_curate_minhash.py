"""`minhash_dedup` on real text: planted near-duplicates (a few words of a C4
document edited, Data-Juicer's dedup demo, two MIT licences from CS336's fuzzy-dedup
fixture) cluster with their originals, unrelated documents stay, exact copies
cluster, and the result is the same whatever the workers and task sizes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from gristmill.curate.minhash import (
    DROP_REASON,
    MinhashDedup,
    MinhashState,
    candidate_pairs,
    candidate_probability,
    components,
    lsh_params,
    signatures,
    tokenize,
)
from gristmill.io.ingest import ImportOptions, import_path
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.pipeline.run import RunResult
from gristmill.store import Version, Workspace


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words: list[str] = tokenize(pa.array([text])).to_pylist()[0]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def edit_words(text: str, count: int, seed: int) -> str:
    """Replace ``count`` words, spread through the text, by other words."""
    words = text.split(" ")
    rng = random.Random(seed)
    step = len(words) // (count + 1)
    for k in range(1, count + 1):
        words[k * step] = rng.choice(["zebra", "quantum", "marmalade", "obsidian", "fjord"])
    return " ".join(words)


@pytest.fixture
def corpus(samples: Path) -> list[dict[str, Any]]:
    """The 300 C4 documents, then planted copies, the Data-Juicer dedup demo and the
    CS336 licences (the React licence first, the Rails one, its near-twin, last)."""
    c4 = [
        orjson.loads(line)["text"]
        for line in (samples / "llamafactory_demos" / "c4_demo.jsonl").read_bytes().splitlines()
    ]
    juicer = [
        orjson.loads(line)["text"]
        for line in (samples / "datajuicer_web_samples" / "demo-dataset-deduplication.jsonl")
        .read_bytes()
        .splitlines()
    ]
    licences = samples / "cs336_filter_fixtures" / "documents_with_fuzzy_duplicates"
    long_doc = max(range(len(c4)), key=lambda i: len(c4[i]) if len(c4[i]) < 6000 else 0)
    docs: list[dict[str, Any]] = [
        {"text": licences.joinpath("react_mit_license.txt").read_text(), "tag": "react"}
    ]
    docs += [{"text": t, "tag": f"c4-{i}"} for i, t in enumerate(c4)]
    docs += [
        {
            "text": edit_words(c4[long_doc], 4, seed=1),
            "tag": "c4-edited",
            "edited_from": f"c4-{long_doc}",
        },
        {"text": c4[7], "tag": "c4-7-copy"},
    ]
    docs += [{"text": t, "tag": f"juicer-{i}"} for i, t in enumerate(juicer)]
    docs += [
        {"text": licences.joinpath(name).read_text(), "tag": name.split("_")[0]}
        for name in ("pytorch_license.txt", "rails_mit_license.txt")
    ]
    return docs


@pytest.fixture
def web(workspace: Workspace, corpus: list[dict[str, Any]], tmp_path: Path) -> Version:
    path = tmp_path / "web.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps({"text": d["text"], "tag": d["tag"]}) + b"\n" for d in corpus)
    )
    # 50-row row groups, so tasks can be cut small
    report = import_path(workspace, path, "web", ImportOptions(batch_rows=50, fast=False))
    assert report.version is not None
    return report.version


def tag(row: dict[str, Any]) -> str:
    return str(orjson.loads(row["meta"])["tag"])


def clusters(result: RunResult, web: Version) -> dict[str, dict[str, Any]]:
    """tag → the record's `minhash` attribute, ids turned into tags. Ids are content
    hashes, so exact copies share one: the attribute's rows come in input order, and
    an id's first record is the one kept."""
    tags = [tag(r) for r in web.iter_rows()]
    first: dict[str, str] = {}
    for r, t in zip(web.iter_rows(), tags, strict=True):
        first.setdefault(r["id"], t)
    table = result.output.read_attribute("minhash").to_pylist()
    assert len(table) == len(tags)
    return {
        t: {**r, "id": t, "cluster": first[r["cluster"]]} for r, t in zip(table, tags, strict=True)
    }


def reasons(result: RunResult) -> dict[str, tuple[str, str]]:
    """tag → (step, reason) of every excluded record."""
    assert result.excluded is not None
    why = {
        r["id"]: (r["step"], r["reason"])
        for r in result.excluded.read_attribute("exclusion").to_pylist()
    }
    return {tag(r): why[r["id"]] for r in result.excluded.iter_rows()}


def test_planted_near_duplicates_cluster_with_their_originals(
    workspace: Workspace, web: Version, corpus: list[dict[str, Any]]
) -> None:
    edited = next(d for d in corpus if d["tag"] == "c4-edited")
    original = next(d for d in corpus if d["tag"] == edited["edited_from"])
    assert 0.85 < jaccard(edited["text"], original["text"]) < 1.0  # a real near-duplicate

    spec = parse_pipeline({"steps": [{"minhash_dedup": {"threshold": 0.8}}]})
    result = run_pipeline(workspace, spec, "web", "deduped", RunOptions(workers=1))
    info = clusters(result, web)
    kept = {tag(r) for r in result.output.iter_rows()}
    why = reasons(result)

    # the edited C4 document: dropped, clustered with (and pointing at) its original
    assert why["c4-edited"] == ("minhash_dedup", DROP_REASON)
    assert info["c4-edited"]["cluster"] == original["tag"]
    assert info[original["tag"]] == {
        "id": original["tag"],
        "cluster": original["tag"],
        "cluster_size": 2,
        "kept": True,
    }
    # an exact copy clusters too
    assert info["c4-7-copy"]["cluster"] == "c4-7" and "c4-7-copy" not in kept
    # Data-Juicer's planted pairs: "plant" → "plants" in two long articles, an exact
    # repeat, a Chinese text with "时间：" inserted; the first of each is kept
    for first, second in [(7, 8), (9, 10), (6, 11), (12, 13)]:
        assert info[f"juicer-{second}"]["cluster"] == f"juicer-{first}"
        assert f"juicer-{first}" in kept and f"juicer-{second}" not in kept
    # the Rails MIT licence is a near-twin of React's, which came first; PyTorch's
    # BSD licence is unrelated
    assert jaccard(corpus[0]["text"], corpus[-1]["text"]) > 0.9
    assert info["rails"]["cluster"] == "react" and "react" in kept
    assert info["pytorch"] == {
        "id": "pytorch",
        "cluster": "pytorch",
        "cluster_size": 1,
        "kept": True,
    }
    # "Today is Sunday…" vs "Today is sunday and it's really…": 8-word sentences
    # sharing one 5-gram (Jaccard 1/8) are not near-duplicates at 0.8
    assert {"juicer-0", "juicer-5"} <= kept
    # the unrelated C4 documents are all kept, and counts add up
    assert all(f"c4-{i}" in kept for i in range(300))
    dropped = {t for t, (step, _) in why.items() if step == "minhash_dedup"}
    assert dropped == {"c4-edited", "c4-7-copy", "juicer-8", "juicer-10", "juicer-11"} | {
        "juicer-13",
        "rails",
    }
    assert len(kept) + len(dropped) == len(corpus)
    (stats,) = result.stats
    assert stats.dropped == {DROP_REASON: 7} and stats.counters == {"near-duplicate clusters": 7}


def test_same_result_whatever_the_workers_and_task_size(workspace: Workspace, web: Version) -> None:
    spec = parse_pipeline({"steps": [{"minhash_dedup": {}}]})
    runs = [
        run_pipeline(workspace, spec, "web", "one", RunOptions(workers=1, rows_per_task=10_000)),
        run_pipeline(workspace, spec, "web", "two", RunOptions(workers=2, rows_per_task=50)),
        run_pipeline(workspace, spec, "web", "three", RunOptions(workers=2, rows_per_task=150)),
    ]
    assert [r.tasks for r in runs] == [1, 7, 3]
    first = runs[0]
    for other in runs[1:]:
        assert list(other.output.iter_rows()) == list(first.output.iter_rows())
        assert other.excluded is not None and first.excluded is not None
        assert list(other.excluded.iter_rows()) == list(first.excluded.iter_rows())
        assert (
            other.output.read_attribute("minhash").sort_by("id").to_pylist()
            == first.output.read_attribute("minhash").sort_by("id").to_pylist()
        )


def test_bands_and_rows_from_the_threshold() -> None:
    # datasketch's _optimal_param, equal weights (values computed with datasketch 2.0)
    assert lsh_params(0.5, 128, 0.5, 0.5) == (25, 5)
    assert lsh_params(0.7, 128, 0.5, 0.5) == (14, 9)
    assert lsh_params(0.8, 128, 0.5, 0.5) == (9, 13)
    assert lsh_params(0.9, 128, 0.5, 0.5) == (5, 25)
    assert lsh_params(0.8, 256, 0.5, 0.5) == (17, 15)
    # the step leans to recall when it verifies candidates, and not when it does not
    verified = MinhashDedup()
    assert (verified.bands, verified.rows) == (12, 10)
    assert 0.5 <= candidate_probability(0.8, verified.bands, verified.rows) <= 0.8
    assert candidate_probability(0.9, verified.bands, verified.rows) > 0.99
    assert candidate_probability(0.5, verified.bands, verified.rows) < 0.02
    plain = MinhashDedup(verify=False)
    assert (plain.bands, plain.rows) == (9, 13)
    assert candidate_probability(0.5, 9, 13) < 0.002
    assert (MinhashDedup(bands=14, rows=8).bands, MinhashDedup(bands=14, rows=8).rows) == (14, 8)
    for bad in ({"bands": 14}, {"bands": 20, "rows": 8}, {"threshold": 1.0}, {"nope": 1}):
        with pytest.raises(ValueError):
            parse_pipeline({"steps": [{"minhash_dedup": bad}]}).build()


def test_estimates_follow_the_jaccard(samples: Path) -> None:
    """The share of equal signature values tracks the true Jaccard of 5-gram sets."""
    texts = [
        orjson.loads(line)["text"]
        for line in (samples / "llamafactory_demos" / "c4_demo.jsonl").read_bytes().splitlines()
    ]
    base = max(texts, key=len)
    copies = [edit_words(base, k, seed=k) for k in (2, 8, 20, 40)]
    sig = signatures(pa.array([base, *copies]), num_perm=256)
    for i, copy in enumerate(copies, start=1):
        truth = jaccard(base, copy)
        estimate = float(np.mean(sig[0] == sig[i]))
        assert abs(estimate - truth) < 4 * np.sqrt(truth * (1 - truth) / 256) + 0.01
    # tokens: case, punctuation and whitespace (NBSP included) do not matter
    same = signatures(pa.array(["It's a Dog, isn't it?!", "its  a\u00a0dog isnt IT"]))
    assert (same[0] == same[1]).all()


def test_big_buckets_empty_texts_and_no_scratch() -> None:
    """100 copies of a text form one cluster (buckets larger than the pair window);
    documents without words are never near-duplicates. Without a scratch folder the
    signatures travel in the partial state."""
    text = "the quick brown fox jumps over the lazy dog " * 20
    texts = [text] * 60 + ["", "!!! ...", "a b c"] + [text] * 40 + ["", "a b c"]
    table = pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": texts})
    step = MinhashDedup()
    parts = [step.collect(table.slice(0, 50)), step.collect(table.slice(50))]
    state = step.merge(parts)
    assert isinstance(state, MinhashState)
    step.set_state(state)
    drops: list[str | None] = []
    attrs = []
    for rank, (start, size) in enumerate([(0, 50), (50, len(texts) - 50)]):
        step.ctx.rank, step.ctx.row_offset = rank, 0
        out = step.process(table.slice(start, size))
        drops += out.drop or []
        attrs += out.attributes["minhash"].to_pylist()
    dropped = {attrs[i]["id"] for i, d in enumerate(drops) if d is not None}
    copies = {f"r{i}" for i, t in enumerate(texts) if t == text}
    assert dropped == (copies - {"r0"}) | {"r104"}  # the second "a b c" too
    assert {attrs[i]["cluster"] for i in range(len(texts)) if texts[i] == text} == {"r0"}
    assert attrs[0]["cluster_size"] == 100
    assert [attrs[i]["kept"] for i in (60, 61, 103)] == [True, True, True]


def test_union_find_and_bucket_pairs() -> None:
    pairs = np.array([[5, 9], [1, 5], [9, 12], [2, 3], [3, 7]], dtype=np.int64)
    nodes, roots = components(pairs)
    assert dict(zip(nodes.tolist(), roots.tolist(), strict=True)) == {
        1: 1,
        5: 1,
        9: 1,
        12: 1,
        2: 2,
        3: 2,
        7: 2,
    }
    bands = np.array([[7, 7, 1, 7, 2, 1]], dtype=np.uint64)
    valid = np.array([True, True, True, True, True, False])
    assert candidate_pairs(bands, valid, 32).tolist() == [[0, 1], [0, 3], [1, 3]]
    assert candidate_pairs(bands, valid, 1).tolist() == [[0, 1], [0, 3], [1, 3]]
