"""Near-duplicate detection: gristmill `minhash_dedup` vs datasketch MinHash +
MinHashLSH, with the same threshold and num_perm, on the same corpus, in the same run.

The corpus is built from the real text in data/samples (C4, Wikipedia, Dolma CC,
RedPajama/Pile samples, LIMA, Alpaca outputs, HH-RLHF): each base document is a few
chunks cut at random places from that text, so documents are distinct. Near-duplicates
are planted at known Jaccard similarities by replacing words spread through a copy
(each replaced word changes the ``ngram`` shingles that cover it), and the exact
Jaccard of every planted pair and every pair any contender reports is computed from
the shingle sets (same tokens as the step: lowercase, no punctuation, whitespace).

A contender reports clusters; its predicted pairs are (document, the cluster's first
document). Precision: share of predicted pairs with true Jaccard ≥ threshold. Recall:
share of true pairs (planted or found by anyone, Jaccard ≥ threshold) whose two
documents end in one cluster. MinHash cannot resolve pairs near the threshold (at 128
functions the estimate's standard deviation is 0.035 at J = 0.8), so the figures are
also given outside a ±0.05 band around it.

Each contender runs in a fresh subprocess, so its time and peak RSS are its own.

    .venv/bin/python bench/dedup.py --docs 100000
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import pickle
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
CONTENDERS = (
    "gristmill-step",
    "gristmill-run-1",
    "gristmill-run-2",
    "datasketch",
    "datasketch+check",
)


# -- corpus ---------------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def source_texts() -> list[str]:
    """Every real text of data/samples that reads like prose."""
    texts = [r["text"] for r in _jsonl(SAMPLES / "llamafactory_demos" / "c4_demo.jsonl")]
    texts += (SAMPLES / "llamafactory_demos" / "wiki_demo.txt").read_text().splitlines()
    for path in sorted((SAMPLES / "dolma_cc_samples").glob("*.json*")):
        texts += [r["text"] for r in _jsonl(path)]
    for path in sorted((SAMPLES / "datajuicer_web_samples").glob("*refined.jsonl")):
        texts += [r["text"] for r in _jsonl(path)]
    for item in json.loads((SAMPLES / "lima" / "lima.json").read_text()):
        texts += [item["instruction"], item["output"]]
    alpaca = json.loads((SAMPLES / "llamafactory_demos" / "alpaca_en_demo.json").read_text())
    texts += [item["output"] for item in alpaca]
    texts += [r["chosen"] for r in _jsonl(SAMPLES / "hh_rlhf" / "harmless-base-test.jsonl.gz")]
    return [t for t in texts if t.strip()]


def normal_forms(words: list[str]) -> list[str]:
    """The step's token for each whitespace word ('' where it leaves none)."""
    from gristmill.curate.minhash import tokenize

    out: list[str] = []
    for start in range(0, len(words), 1 << 16):
        tokens = tokenize(pa.array(words[start : start + (1 << 16)])).to_pylist()
        out += ["".join(t) for t in tokens]
    return out


def build_corpus(n_docs: int, per_level: int, ngram: int, seed: int) -> dict[str, Any]:
    """Base documents cut from the real text, plus ``per_level`` copies planted at each
    target Jaccard in LEVELS, shuffled together."""
    rng = random.Random(seed)
    pool = " ".join(source_texts()).split()
    normal = normal_forms(pool)
    usable = [i for i, w in enumerate(normal) if w]  # words that survive tokenising
    n_base = n_docs - per_level * len(LEVELS)
    docs: list[list[int]] = []  # positions in the pool
    for _ in range(n_base):
        length = int(min(1500, max(40, rng.lognormvariate(math.log(260), 0.6))))
        words: list[int] = []
        while len(words) < length:
            size = min(length - len(words), rng.randint(30, 140))
            start = rng.randrange(len(pool) - size)
            words += range(start, start + size)
        docs.append(words)
    # originals long enough (≥ 300 words) for the targets to be reachable
    candidates = [i for i, d in enumerate(docs) if len(d) >= 300]
    originals = rng.sample(candidates, per_level * len(LEVELS))
    planted: list[tuple[int, int, float]] = []
    for k, original in enumerate(originals):
        level = LEVELS[k // per_level]
        copy = list(docs[original])
        tokens = [i for i, w in enumerate(copy) if normal[w]]
        shingles = len(tokens) - ngram + 1
        # m replaced tokens ≥ ngram apart turn ngram·m shared shingles into new ones:
        # J = (S - ngram·m) / (S + ngram·m)
        m = round(shingles * (1 - level) / (ngram * (1 + level)))
        stride = len(tokens) / m if m else 0.0
        for j in range(m):
            at = tokens[int(j * stride + rng.uniform(0, max(0.0, stride - ngram)))]
            word = usable[rng.randrange(len(usable))]
            while normal[word] == normal[copy[at]]:
                word = usable[rng.randrange(len(usable))]
            copy[at] = word
        docs.append(copy)
        planted.append((original, len(docs) - 1, level))
    order = list(range(len(docs)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    texts = [" ".join(pool[w] for w in docs[old]) for old in order]
    pairs = [
        (min(position[a], position[b]), max(position[a], position[b]), level)
        for a, b, level in planted
    ]
    return {"texts": texts, "planted": pairs}


# -- contenders (each in its own process) ---------------------------------------------------


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib() -> float:
    return _status_mib("VmRSS")


def _peak_mib() -> dict[str, float]:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak over
    exec) and the largest peak of its finished worker processes."""
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_mib": _status_mib("VmHWM"), "worker_peak_mib": workers}


def _pairs_from_attribute(table: pa.Table) -> np.ndarray:
    """(document, cluster's first document) for every dropped row; the attribute's rows
    are in input order, and an id's first row is its cluster's kept record (ids are
    content hashes, so exact copies share one)."""
    first: dict[str, int] = {}
    for i, record_id in enumerate(table.column("id").to_pylist()):
        first.setdefault(record_id, i)
    out = [
        (i, first[cluster])
        for i, (cluster, kept) in enumerate(
            zip(
                table.column("cluster").to_pylist(),
                table.column("kept").to_pylist(),
                strict=True,
            )
        )
        if not kept
    ]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def run_gristmill_step(args: argparse.Namespace) -> dict[str, Any]:
    """The step alone, in one process: collect per task of 20,000 rows (signatures
    to scratch files), merge, process; no output written."""
    from gristmill.curate.minhash import MinhashDedup
    from gristmill.pipeline.step import StepContext
    from gristmill.pipeline.tasks import Task, plan_tasks
    from gristmill.records.kinds import Kind
    from gristmill.store import Workspace

    version = Workspace(Path(args.workspace)).version(args.dataset)
    step = MinhashDedup(threshold=args.threshold, num_perm=args.num_perm)
    scratch = Path(args.scratch)
    tasks = plan_tasks(version.shard_paths, 20_000)  # whole row groups, as run_pipeline

    def read(task: Task) -> pa.Table:
        return task.read().select(["id", "text"])

    baseline = _rss_mib()
    start = time.perf_counter()
    partials = []
    for rank, task in enumerate(tasks):
        step.bind(StepContext(kind=Kind.DOCUMENT, rank=rank, scratch=scratch))
        partials.append(step.collect(read(task)))
    collected = time.perf_counter()
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    step.set_state(step.merge(partials))
    merge_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    merged = time.perf_counter()
    attributes = []
    for rank, task in enumerate(tasks):
        table = read(task)
        for offset in range(0, table.num_rows, 4096):
            step.bind(StepContext(kind=Kind.DOCUMENT, rank=rank, row_offset=offset))
            out = step.process(table.slice(offset, 4096))
            attributes.append(out.attributes["minhash"])
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    np.save(args.pairs, _pairs_from_attribute(pa.concat_tables(attributes)))
    return {
        "seconds": seconds,
        "collect_s": collected - start,
        "merge_s": merged - collected,
        "process_s": seconds - (merged - start),
        "bands_rows": [step.bands, step.rows],
        "sketch_mib": sum(p.bands.nbytes + p.empty.nbytes for p in partials) / 2**20,
        "merge_peak_mib": merge_peak,
        "state_mib": len(pickle.dumps(step.state)) / 2**20,
        "baseline_mib": baseline,
        **peak,
    }


def run_gristmill_pipeline(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """What `gristmill curate` runs: run_pipeline over the imported version, writing
    the curated version, the exclusions and the attribute."""
    from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
    from gristmill.store import Workspace

    ws = Workspace(Path(args.workspace))
    spec = parse_pipeline(
        {"steps": [{"minhash_dedup": {"threshold": args.threshold, "num_perm": args.num_perm}}]}
    )
    baseline = _rss_mib()
    start = time.perf_counter()
    result = run_pipeline(
        ws, spec, args.dataset, f"dedup-{workers}", RunOptions(workers=workers, fresh=True)
    )
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    np.save(args.pairs, _pairs_from_attribute(result.output.read_attribute("minhash")))
    return {"seconds": seconds, "baseline_mib": baseline, "tasks": result.tasks, **peak}


def run_datasketch(args: argparse.Namespace, check: bool) -> dict[str, Any]:
    """datasketch as documented: one MinHash per document (shared permutations,
    update_batch on the shingles), MinHashLSH query then insert. ``check``: keep every
    signature and keep only candidates whose estimated Jaccard ≥ threshold."""
    from datasketch import MinHash, MinHashLSH

    from gristmill.curate.minhash import tokenize

    template = MinHash(num_perm=args.num_perm, seed=1)
    # datasketch 2 wants the hashing scheme named when permutations are shared
    scheme = {"scheme": template.scheme} if hasattr(template, "scheme") else {}
    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    kept: dict[int, MinHash] = {}
    pairs: list[tuple[int, int]] = []
    n = args.ngram
    baseline = _rss_mib()
    start = time.perf_counter()
    position = 0
    with open(args.corpus, "rb") as f:
        while True:
            take = min(2048, (args.limit or sys.maxsize) - position)
            lines = [line for _, line in zip(range(take), f, strict=False)]
            if not lines:
                break
            texts = [orjson.loads(line)["text"] for line in lines]
            for words in tokenize(pa.array(texts)).to_pylist():
                if len(words) >= n:
                    shingles = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
                elif words:
                    shingles = {" ".join(words)}
                else:
                    shingles = set()
                if shingles:
                    m = MinHash(
                        num_perm=args.num_perm,
                        seed=1,
                        permutations=template.permutations,
                        **scheme,
                    )
                    m.update_batch([s.encode() for s in shingles])
                    for other in lsh.query(m):
                        if not check or m.jaccard(kept[other]) >= args.threshold:
                            pairs.append((int(other), position))
                    lsh.insert(position, m, check_duplication=False)
                    if check:
                        kept[position] = m
                position += 1
    found = _union_find(np.array(pairs, dtype=np.int64).reshape(-1, 2), position)
    seconds = time.perf_counter() - start
    np.save(args.pairs, found)
    return {
        "seconds": seconds,
        "baseline_mib": baseline,
        "bands_rows": [lsh.b, lsh.r],
        **_peak_mib(),
    }


def _union_find(pairs: np.ndarray, n: int) -> np.ndarray:
    """Clusters of the reported pairs, as (document, smallest document of its cluster)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = {int(x) for x in pairs.ravel().tolist()}
    out = [(x, find(x)) for x in sorted(members) if find(x) != x]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def child(args: argparse.Namespace) -> None:
    if args.contender == "gristmill-step":
        result = run_gristmill_step(args)
    elif args.contender.startswith("gristmill-run-"):
        result = run_gristmill_pipeline(args, int(args.contender.rsplit("-", 1)[1]))
    else:
        result = run_datasketch(args, check=args.contender.endswith("+check"))
    print(json.dumps(result))


# -- scoring --------------------------------------------------------------------------------


def shingle_sets(texts: list[str], docs: list[int], ngram: int) -> dict[int, set[int]]:
    from gristmill.curate.minhash import tokenize

    out: dict[int, set[int]] = {}
    for start in range(0, len(docs), 4096):
        chunk = docs[start : start + 4096]
        for doc, words in zip(
            chunk, tokenize(pa.array([texts[d] for d in chunk])).to_pylist(), strict=True
        ):
            if len(words) >= ngram:
                out[doc] = {
                    hash(tuple(words[i : i + ngram])) for i in range(len(words) - ngram + 1)
                }
            else:
                out[doc] = {hash(tuple(words))} if words else set()
    return out


def score(
    found: dict[str, np.ndarray],
    planted: list[tuple[int, int, float]],
    texts: list[str],
    threshold: float,
    ngram: int,
    band: float,
) -> tuple[dict[str, dict[str, float]], dict[float, dict[str, float]], dict[str, Any]]:
    all_pairs = {(a, b) for a, b, _ in planted}
    for pairs in found.values():
        all_pairs |= {(min(a, b), max(a, b)) for a, b in pairs.tolist()}
    docs = sorted({d for pair in all_pairs for d in pair})
    sets = shingle_sets(texts, docs, ngram)

    def jac(pair: tuple[int, int]) -> float:
        x, y = sets[pair[0]], sets[pair[1]]
        return len(x & y) / len(x | y) if x or y else 1.0

    truth = {pair: jac(pair) for pair in all_pairs}
    positives = {p for p, j in truth.items() if j >= threshold}
    results: dict[str, dict[str, float]] = {}
    per_level: dict[float, dict[str, float]] = {}
    for name, pairs in found.items():
        root = {int(a): int(b) for a, b in pairs.tolist()}
        predicted = [(min(a, b), max(a, b)) for a, b in pairs.tolist()]

        def same(pair: tuple[int, int], root: dict[int, int] = root) -> bool:
            return root.get(pair[0], pair[0]) == root.get(pair[1], pair[1])

        def pr(
            keep: Any, predicted: list[tuple[int, int]] = predicted, same: Any = same
        ) -> tuple[float, float]:
            pred = [p for p in predicted if keep(truth[p])]
            pos = [p for p in positives if keep(truth[p])]
            precision = sum(truth[p] >= threshold for p in pred) / max(1, len(pred))
            recall = sum(same(p) for p in pos) / max(1, len(pos))
            return precision, recall

        p_all, r_all = pr(lambda j: True)
        p_out, r_out = pr(lambda j: abs(j - threshold) >= band)
        results[name] = {
            "precision": p_all,
            "recall": r_all,
            "precision_outside_band": p_out,
            "recall_outside_band": r_out,
            "predicted_pairs": len(predicted),
        }
        for level in LEVELS:
            pairs_at = [(a, b) for a, b, lv in planted if lv == level]
            per_level.setdefault(level, {})[name] = sum(same(p) for p in pairs_at) / len(pairs_at)
    levels_truth = {
        level: [truth[(a, b)] for a, b, lv in planted if lv == level] for level in LEVELS
    }
    info = {
        "positives": len(positives),
        "planted_positives": sum(truth[(a, b)] >= threshold for a, b, _ in planted),
        "level_jaccard": {
            lv: (float(np.mean(v)), float(np.min(v)), float(np.max(v)))
            for lv, v in levels_truth.items()
        },
    }
    return results, per_level, info


# -- driver ---------------------------------------------------------------------------------


def measure(
    contender: str, args: argparse.Namespace, work: Path, dataset: str, limit: int
) -> tuple[dict[str, Any], np.ndarray]:
    pairs = work / f"pairs-{contender}.npy"
    scratch = work / f"scratch-{contender}"
    scratch.mkdir()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            contender,
            "--workspace",
            str(work / "ws"),
            "--corpus",
            str(work / "corpus.jsonl"),
            "--scratch",
            str(scratch),
            "--pairs",
            str(pairs),
            "--threshold",
            str(args.threshold),
            "--num-perm",
            str(args.num_perm),
            "--ngram",
            str(args.ngram),
            "--dataset",
            dataset,
            "--limit",
            str(limit),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{contender} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(scratch, ignore_errors=True)
    return result, np.load(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs", type=int, default=100_000, help="documents in all (planted included)"
    )
    parser.add_argument(
        "--per-level", type=int, default=1500, help="planted copies per Jaccard level"
    )
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--band", type=float, default=0.05, help="half-width of the band around the threshold"
    )
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument(
        "--no-half",
        action="store_true",
        help="skip the runs on the first half (they give memory growth per document)",
    )
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS, dest="contender")
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default="corpus", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        child(args)
        return

    from gristmill.io.ingest import import_path
    from gristmill.store import Workspace

    work = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    try:
        start = time.perf_counter()
        corpus = build_corpus(args.docs, args.per_level, args.ngram, args.seed)
        texts: list[str] = corpus["texts"]
        with (work / "corpus.jsonl").open("wb") as f:
            for text in texts:
                f.write(orjson.dumps({"text": text}) + b"\n")
        half = len(texts) // 2
        with (work / "half.jsonl").open("wb") as f:
            for text in texts[:half]:
                f.write(orjson.dumps({"text": text}) + b"\n")
        ws = Workspace.init(work / "ws")
        report = import_path(ws, work / "corpus.jsonl", "corpus")
        assert report.kept == len(texts), report
        assert import_path(ws, work / "half.jsonl", "half").kept == half
        words = sum(len(t.split()) for t in texts) / len(texts)
        print(
            f"corpus: {len(texts):,} documents ({words:.0f} words on average, "
            f"{sum(len(t) for t in texts) / 2**20:.0f} MiB of text), "
            f"{len(corpus['planted']):,} planted near-duplicates; built and imported in "
            f"{time.perf_counter() - start:.0f} s"
        )
        results: dict[str, dict[str, Any]] = {}
        halves: dict[str, dict[str, Any]] = {}
        found: dict[str, np.ndarray] = {}
        for contender in args.only:
            results[contender], found[contender] = measure(
                contender, args, work, "corpus", len(texts)
            )
            line = f"  {contender}: {results[contender]['seconds']:.1f} s"
            if not args.no_half:
                halves[contender], _ = measure(contender, args, work, "half", half)
                line += f" (first half: {halves[contender]['seconds']:.1f} s)"
            print(line, flush=True)
        quality, per_level, info = score(
            found, corpus["planted"], texts, args.threshold, args.ngram, args.band
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from gristmill.curate.minhash import MinhashDedup

    default = MinhashDedup(threshold=args.threshold, num_perm=args.num_perm)
    n = len(texts)
    print(
        f"\nthreshold {args.threshold}, num_perm {args.num_perm}, word {args.ngram}-grams; "
        f"{info['positives']:,} true pairs at J ≥ {args.threshold} "
        f"({info['planted_positives']:,} planted)"
    )
    header = (
        f"{'contender':<18} {'docs/s':>8} {'seconds':>8} {'peak RSS':>9} {'MiB/M docs':>11} "
        f"{'P':>6} {'R':>6} {'P±band':>7} {'R±band':>7} {'b×r':>6}"
    )
    print(header)
    print("-" * len(header))

    def peak(r: dict[str, Any]) -> float:
        return max(float(r["peak_mib"]), float(r["worker_peak_mib"]))

    for name in args.only:
        r, q = results[name], quality[name]
        growth = (
            f"{(peak(r) - peak(halves[name])) * 1e6 / (n - n // 2):>11,.0f}"
            if name in halves
            else f"{'-':>11}"
        )
        bands_rows = r.get("bands_rows") or [default.bands, default.rows]
        br = f"{bands_rows[0]}×{bands_rows[1]}"
        print(
            f"{name:<18} {n / r['seconds']:>8,.0f} {r['seconds']:>8.1f} {peak(r):>7.0f} M "
            f"{growth} {q['precision']:>6.3f} {q['recall']:>6.3f} "
            f"{q['precision_outside_band']:>7.3f} {q['recall_outside_band']:>7.3f} {br:>6}"
        )
    print(
        "(peak RSS: the largest process; MiB/M docs: how the peak grows from the first half "
        f"of the corpus to all of it, per million documents; ±band: pairs with "
        f"|J - {args.threshold}| < {args.band} left out)"
    )
    if "gristmill-step" in results:
        r = results["gristmill-step"]
        per_m = 1e6 / n
        print(
            f"\ngristmill-step: collect {r['collect_s']:.1f} s, merge {r['merge_s']:.1f} s, "
            f"process {r['process_s']:.1f} s. Per million documents: band hashes collected "
            f"{r['sketch_mib'] * per_m:.0f} MiB, merge peak (tracemalloc, beyond them) "
            f"{r['merge_peak_mib'] * per_m:.0f} MiB, merged state (pickled) "
            f"{r['state_mib'] * per_m:.0f} MiB, signatures on disk "
            f"{args.num_perm * 4 * 1e6 / 2**20:.0f} MiB"
        )
    print("\nshare of planted pairs found in one cluster, by target level (mean true J):")
    print(f"{'level':>6} {'J':>6} " + " ".join(f"{name:>17}" for name in args.only))
    for level in LEVELS:
        mean = info["level_jaccard"][level][0]
        row = " ".join(f"{per_level[level][name]:>17.3f}" for name in args.only)
        print(f"{level:>6} {mean:>6.3f} {row}")


if __name__ == "__main__":
    main()
