"""Curation filters: gristmill vs datatrove on the same corpus and filter chain, in one run.

The chain is Gopher quality, Gopher repetition, C4 and FineWeb with their default
(datatrove) thresholds, run with 2 workers by each contender:

- **gristmill**: ``import_path`` (JSONL -> Parquet version) then ``run_pipeline`` with
  the local executor: kept records, excluded records with reasons, and one attribute
  per filter with its measured values.
- **datatrove**: ``LocalPipelineExecutor`` (2 tasks, 2 workers) over ``JsonlReader``,
  the four filters and a ``JsonlWriter`` for the kept documents. Its English word
  tokenizer (datatrove 0.10: spaCy's blank English pipeline) needs no download.

The corpus (default 200,000 documents) is built once, in bench/out/, from the real web
text of data/samples (Dolma Common Crawl, RedPajama/Pile samples, C4, Wikipedia, LIMA
answers, a CS336 boilerplate page), changed so the filters see varied input: windows
of lines, shuffled lines, dropped and duplicated lines, two documents mixed.

    .venv/bin/python bench/curate.py                   # 200,000 documents
    .venv/bin/python bench/curate.py --docs 20000      # a quicker look
    .venv/bin/python bench/curate.py --langid          # language identifiers compared
"""

from __future__ import annotations

import argparse
import glob
import gzip
import itertools
import json
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "data" / "samples"
OUT = HERE / "out"
SHARDS = 8  # JSONL files: datatrove gives each task whole files


# --- the corpus ---------------------------------------------------------------------------------


def _jsonl_texts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [str(json.loads(line)["text"]) for line in f if line.strip()]


def _wiki_documents() -> list[str]:
    """The demo's articles are one line each: cut them into paragraphs of sentences,
    and drop the category links glued after the last sentence."""
    out = []
    for line in (SAMPLES / "llamafactory_demos" / "wiki_demo.txt").read_text().splitlines():
        if ". " not in line:
            continue
        body = line[: line.rindex(". ") + 1]
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", body)
        paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        out.append("\n".join(paragraphs))
    return out


def base_documents() -> list[str]:
    """The real documents the corpus is made from."""
    docs: list[str] = []
    for path in sorted((SAMPLES / "dolma_cc_samples").glob("*.jsonl")):
        docs += _jsonl_texts(path)
    docs += _jsonl_texts(SAMPLES / "dolma_cc_samples" / "provided_documents_000.json.gz")
    for name in sorted(glob.glob(str(SAMPLES / "datajuicer_web_samples" / "*-refined.jsonl"))):
        docs += _jsonl_texts(Path(name))
    docs += _jsonl_texts(SAMPLES / "llamafactory_demos" / "c4_demo.jsonl")
    docs += _wiki_documents()
    docs += [r["output"] for r in json.loads((SAMPLES / "lima" / "lima.json").read_text())]
    docs.append((SAMPLES / "cs336_filter_fixtures" / "low_quality_cc.txt").read_text())
    return [d for d in docs if d.strip()]


def changed_document(rng: random.Random, bases: list[str]) -> str:
    """One base document with random changes (the same seed gives the same corpus)."""
    lines = rng.choice(bases).split("\n")
    if len(lines) > 6 and rng.random() < 0.6:  # a window of the lines
        size = rng.randint(max(3, len(lines) // 4), len(lines))
        start = rng.randint(0, len(lines) - size)
        lines = lines[start : start + size]
    if len(lines) > 40:  # long articles: keep web-page sized documents
        start = rng.randint(0, len(lines) - 40)
        lines = lines[start : start + 40]
    if rng.random() < 0.25:
        rng.shuffle(lines)
    if len(lines) > 3 and rng.random() < 0.2:  # drop some lines
        lines = [line for line in lines if rng.random() > 0.2]
    if rng.random() < 0.15:  # duplicate some lines (boilerplate, repeated menus)
        lines += rng.sample(lines, k=max(1, len(lines) // rng.randint(2, 6)))
    if rng.random() < 0.2:  # mix in part of another document
        other = rng.choice(bases).split("\n")
        start = rng.randint(0, max(0, len(other) - 8))
        lines += other[start : start + rng.randint(1, 8)]
    text = "\n".join(lines).strip()
    return text or "empty"


def build_corpus(folder: Path, n_docs: int, seed: int = 0) -> None:
    """``n_docs`` changed documents as SHARDS JSONL files (id, text)."""
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = random.Random(seed)
    bases = base_documents()
    files = [(tmp / f"part-{i:02d}.jsonl").open("wb") for i in range(SHARDS)]
    try:
        for i in range(n_docs):
            row = {"id": f"doc-{i:07d}", "text": changed_document(rng, bases)}
            files[i % SHARDS].write(orjson.dumps(row) + b"\n")
    finally:
        for f in files:
            f.close()
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


# --- the contenders ---------------------------------------------------------------------------------

CHAIN = ("gopher_quality", "gopher_repetition", "c4", "fineweb")


def run_gristmill(corpus: Path, scratch: Path, workers: int) -> dict[str, Any]:
    from gristmill.io.ingest import import_path
    from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
    from gristmill.store import Workspace

    ws = Workspace.init(scratch / "ws")
    start = time.perf_counter()
    report = import_path(ws, corpus, "bench")
    imported = time.perf_counter()
    assert report.version is not None
    spec = parse_pipeline({"steps": [{name: {}} for name in CHAIN]})
    result = run_pipeline(ws, spec, "bench", "bench-clean", RunOptions(workers=workers))
    done = time.perf_counter()
    kept = result.output.table(columns=["id", "text"]).to_pylist()
    dropped_ids: dict[str, str] = {}
    if result.excluded is not None:
        for row in result.excluded.read_attribute("exclusion").to_pylist():
            dropped_ids[row["id"]] = row["step"]
    return {
        "docs": report.kept,
        "dropped_ids": dropped_ids,
        "import_seconds": imported - start,
        "curate_seconds": done - imported,
        "seconds": done - start,
        "kept": {r["id"]: r["text"] for r in kept},
        "dropped": {s.name: sum(s.dropped.values()) for s in result.stats},
    }


def _regex_tokenizer() -> Any:
    """gristmill's word and sentence splitter as a datatrove WordTokenizer, to run
    datatrove's filters without spaCy (same words as gristmill's filters see)."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    from gristmill.curate.text_stats import sentence_ends, split_sentences, split_words

    class RegexTokenizer(WordTokenizer):  # type: ignore[misc]
        def word_tokenize(self, text: str) -> list[str]:
            return split_words(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return split_sentences(text)

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            cuts = [0, *sentence_ends(text), len(text)]
            return list(itertools.pairwise(cuts))

    return RegexTokenizer()


def run_datatrove(
    corpus: Path, scratch: Path, workers: int, fast_tokenizer: bool = False
) -> dict[str, Any]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    out = scratch / "kept"
    lang: Any = _regex_tokenizer() if fast_tokenizer else "eng"  # "eng": spaCy blank English
    executor = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(corpus), glob_pattern="*.jsonl"),
            GopherQualityFilter(language=lang),
            GopherRepetitionFilter(language=lang),
            C4QualityFilter(language=lang),
            FineWebQualityFilter(language=lang),
            JsonlWriter(str(out)),
        ],
        tasks=workers,
        workers=workers,
        logging_dir=str(scratch / "logs"),
        skip_completed=False,
    )
    start = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - start
    kept: dict[str, str] = {}
    for path in sorted(out.glob("*.jsonl*")):
        with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as f:
            for line in f:
                row = json.loads(line)
                kept[row["id"]] = row["text"]
    stats = json.loads((scratch / "logs" / "stats.json").read_text())
    dropped = {}
    for step, name in zip(stats[1:5], CHAIN, strict=True):
        dropped[name] = int(step.get("stats", {}).get("dropped", 0))
    return {"docs": None, "seconds": seconds, "kept": kept, "dropped": dropped}


# --- language identification -------------------------------------------------------------------


def compare_langid() -> None:
    """fastText lid.176 (gristmill.langid) vs py3langid: speed, and English kept at 0.65
    on English web text (the 10 Spanish StackOverflow questions of the RedPajama sample
    are left out), and the right label on real non-English answers."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from gristmill.langid import detect_language

    py3 = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    english = _jsonl_texts(SAMPLES / "llamafactory_demos" / "c4_demo.jsonl")
    for name in ("redpajama-c4", "redpajama-cc-2023-06", "the-pile-nih", "the-pile-uspto"):
        english += _jsonl_texts(SAMPLES / "datajuicer_web_samples" / f"{name}-refined.jsonl")
    english += _wiki_documents()
    for path in sorted((SAMPLES / "dolma_cc_samples").glob("*.jsonl")):
        english += _jsonl_texts(path)
    others: list[tuple[str, str]] = []  # (language, text): LIMA answers and demo rows
    for row in json.loads((SAMPLES / "lima" / "lima.json").read_text()):
        text = row["output"]
        for code, marker in (
            ("de", "Es gibt im heutigen Deutschen"),
            ("de", "Ich sammle Briefmarken"),
            ("pt", "Você encontra na internet"),
            ("pt", "Reflection é um termo"),
            ("pt", "Muito da polêmica ocorre"),
            ("pt", "Já foi dito que"),
            ("es", "Aquí hay una descripción general"),
        ):
            if text.startswith(marker):
                others.append((code, text))
    for line in (SAMPLES / "datajuicer_web_samples" / "demo-dataset-deduplication.jsonl").open():
        text = json.loads(line)["text"]
        if text.startswith("Sur la plateforme"):
            others.append(("fr", text))
        elif text.startswith(("第九届会议", "你好")):
            others.append(("zh", text))
    spanish = _jsonl_texts(
        SAMPLES / "datajuicer_web_samples" / "redpajama-pile-stackexchange-refined.jsonl"
    )
    others += [("es", t) for t in spanish]

    def py3langid(text: str, max_chars: int | None) -> tuple[str, float]:
        lang, score = py3.classify(text if max_chars is None else text[:max_chars])
        return str(lang), float(score)

    contenders = {
        "fastText lid.176 (gristmill.langid)": detect_language,
        "py3langid 0.4.0": py3langid,
    }
    print(f"{len(english)} English web documents, {len(others)} non-English texts")
    print(f"{'identifier':<38}{'chars':>6}{'docs/s':>9}{'en kept@0.65':>14}{'others right':>14}")
    for max_chars in (None, 2000, 200):
        for name, fn in contenders.items():
            start = time.perf_counter()
            labels = [fn(t, max_chars) for t in english]
            seconds = time.perf_counter() - start
            kept = sum(lang == "en" and score >= 0.65 for lang, score in labels) / len(english)
            right = sum(fn(t, max_chars)[0] == code for code, t in others) / len(others)
            chars = "all" if max_chars is None else str(max_chars)
            print(f"{name:<38}{chars:>6}{len(english) / seconds:>9,.0f}{kept:>14.3f}{right:>14.3f}")


# --- main ---------------------------------------------------------------------------------------


def head_corpus(corpus: Path, n_docs: int) -> Path:
    """The first ``n_docs`` documents of ``corpus`` (by id), in as many files."""
    folder = corpus.with_name(f"{corpus.name}-head-{n_docs}")
    if folder.is_dir():
        return folder
    folder.mkdir()
    for path in sorted(corpus.glob("*.jsonl")):
        with path.open("rb") as src, (folder / path.name).open("wb") as dst:
            for line in src:
                if int(orjson.loads(line)["id"].split("-")[1]) < n_docs:
                    dst.write(line)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200_000, help="corpus size (gristmill)")
    parser.add_argument(
        "--datatrove-docs",
        type=int,
        default=10_000,
        help="datatrove runs on the first N documents (spaCy makes the whole corpus take hours)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["gristmill", "datatrove", "datatrove-regex"])
    parser.add_argument("--langid", action="store_true", help="compare language identifiers")
    args = parser.parse_args()
    if args.langid:
        compare_langid()
        return

    corpus = OUT / f"curate-corpus-{args.docs}"
    if not corpus.is_dir():
        print(f"building {corpus} ({args.docs:,} documents from data/samples) …", flush=True)
        build_corpus(corpus, args.docs)
    head_n = min(args.datatrove_docs, args.docs)
    head = head_corpus(corpus, head_n)
    size = sum(p.stat().st_size for p in corpus.glob("*.jsonl")) / 2**20
    print(f"corpus: {corpus} ({args.docs:,} documents, {size:,.0f} MiB, {SHARDS} files)")
    print(f"chain: {', '.join(CHAIN)} (default thresholds); {args.workers} workers each")
    print(f"datatrove runs on the first {head_n:,} documents ({head.name})")

    contenders: dict[str, tuple[Any, Path, int]] = {
        "gristmill": (run_gristmill, corpus, args.docs),
        "datatrove": (run_datatrove, head, head_n),
        "datatrove-regex": (
            lambda c, s, w: run_datatrove(c, s, w, fast_tokenizer=True),
            head,
            head_n,
        ),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, (fn, source, n) in contenders.items():
        if args.only and args.only != name:
            continue
        scratch = OUT / f"curate-{name}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        print(f"running {name} on {n:,} documents …", flush=True)
        results[name] = fn(source, scratch, args.workers)
        results[name]["docs"] = n
        shutil.rmtree(scratch, ignore_errors=True)

    labels = {
        "gristmill": "gristmill (import + curate)",
        "datatrove": "datatrove (default: spaCy words)",
        "datatrove-regex": "datatrove (gristmill's regex words)",
    }
    print(f"\n{'contender':<40}{'docs':>9}{'docs/s':>9}{'seconds':>9}{'kept':>8}")
    for name, r in results.items():
        n = r["docs"]
        kept = f"{len(r['kept']) / n:.1%}"
        print(f"{labels[name]:<40}{n:>9,}{n / r['seconds']:>9,.0f}{r['seconds']:>9.1f}{kept:>8}")
        if name == "gristmill":
            for part in ("import", "curate"):
                sec = r[f"{part}_seconds"]
                print(f"{'  of which ' + part:<40}{n:>9,}{n / sec:>9,.0f}{sec:>9.1f}")
    g = results.get("gristmill")
    if g is None:
        return
    speed = g["docs"] / g["seconds"]
    speed_curate = g["docs"] / g["curate_seconds"]
    first = {f"doc-{i:07d}" for i in range(head_n)}
    g_kept = set(g["kept"]) & first
    g_dropped = {k: v for k, v in g["dropped_ids"].items() if k in first}
    for name in ("datatrove", "datatrove-regex"):
        if name not in results:
            continue
        d = results[name]
        d_speed = d["docs"] / d["seconds"]
        print(f"\n== gristmill vs {labels[name]} ==")
        print(
            f"speed: import + curate {speed / d_speed:.2f}x, curate alone {speed_curate / d_speed:.2f}x"
        )
        print(f"{'dropped by (first docs)':<26}{'gristmill':>10}{'datatrove':>10}")
        for step in CHAIN:
            ours = sum(1 for s in g_dropped.values() if s == step)
            print(f"{step:<26}{ours:>10,}{d['dropped'][step]:>10,}")
        dk = set(d["kept"])
        agree = head_n - len(g_kept ^ dk)
        both = g_kept & dk
        same_text = sum(g["kept"][i] == d["kept"][i] for i in both)
        print(
            f"kept by both {len(both):,}; only gristmill {len(g_kept - dk):,}; "
            f"only datatrove {len(dk - g_kept):,}"
        )
        print(f"same keep/drop decision: {agree:,} of {head_n:,} ({agree / head_n:.2%})")
        print(f"kept by both with identical text after c4: {same_text / max(1, len(both)):.2%}")


if __name__ == "__main__":
    main()
