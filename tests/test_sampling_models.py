"""Scorers with real models on real text: the packaged SmolLM2-135M-Instruct (Ask-LLM,
perplexity, uncertainty) and all-MiniLM-L6-v2 (density, SemDeDup, prototypes).

The models load once per test process (session fixtures; the scorers' lazy loader
reuses them), and one workspace — so one call cache — serves the module. Scoring
runs go through ``run_pipeline`` like ``gristmill score`` does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gristmill.cli import cli
from gristmill.io.ingest import import_path
from gristmill.models.protocols import Embedder, LanguageModel
from gristmill.pipeline import RunOptions
from gristmill.sampling import Plan, backends, sample, score
from gristmill.store import Version, Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm2() -> LanguageModel:
    return backends.language_model(None)


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return backends.embedder(None)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.init(tmp_path_factory.mktemp("sampling") / "ws")


def dataset(ws: Workspace, name: str, texts: list[str], tmp: Path) -> Version:
    path = tmp / f"{name}.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    report = import_path(ws, path, name)
    assert report.version is not None
    return report.version


def scores(version: Version, attribute: str, column: str = "score") -> dict[str, float]:
    table = version.read_attribute(attribute)
    return dict(zip(table.column("id").to_pylist(), table.column(column).to_pylist(), strict=True))


def wiki(n: int, chars: int) -> list[str]:
    lines = (SAMPLES / "llamafactory_demos" / "wiki_demo.txt").read_text().splitlines()
    return [line[:chars].rsplit(" ", 1)[0] for line in lines[:n]]


def boilerplate(*urls: str) -> list[str]:
    """Navigation/menu pages from the raw Dolma Common Crawl sample."""
    path = SAMPLES / "dolma_cc_samples" / "provided_documents_000.json.gz"
    with gzip.open(path, "rt") as f:
        docs = {d["id"]: d["text"] for d in map(json.loads, f)}
    return [next(t for u, t in docs.items() if key in u)[:700] for key in urls]


@pytest.fixture(scope="module")
def mixed(ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Version:
    texts = wiki(2, 700) + boilerplate("eeme.ucd.ie", "bufvc.ac.uk")
    return dataset(ws, "mixed", texts, tmp_path_factory.mktemp("mixed"))


def test_ask_llm_ranks_an_encyclopaedia_paragraph_above_boilerplate(
    ws: Workspace, mixed: Version, smollm2: LanguageModel
) -> None:
    """The paper's score (raw softmax P("yes"), chat template + ANSWER: cue) orders
    both Wikipedia paragraphs above both menu pages with the 135M model. The
    normalised view P(yes)/(P(yes)+P(no)) is stored too but is *not* robust for this
    model (it put a booking page above Wikipedia when checked), so it is not asserted."""
    result = score(ws, mixed.ref, "ask_llm", {}, RunOptions(workers=1))
    assert result.attributes == ["ask_llm"]
    s = scores(mixed, "ask_llm")
    good, junk = [s["mixed-0"], s["mixed-1"]], [s["mixed-2"], s["mixed-3"]]
    assert min(good) > max(junk), s
    table = mixed.read_attribute("ask_llm")
    assert {"p_yes", "p_no", "p_yes_norm", "truncated_chars", "truncated_tokens", "model"} <= set(
        table.column_names
    )
    info = mixed.attribute_info("ask_llm")
    assert info.operation == "score" and info.params["pipeline"] == [{"ask_llm": {}}]
    top = sample(ws, mixed.ref, Plan(by="ask_llm", rate=0.5), output="mixed-top").version
    assert sorted(r["id"] for r in top.iter_rows(["id"])) == ["mixed-0", "mixed-1"]


def test_perplexity_is_lower_for_prose_than_for_its_shuffled_words(
    ws: Workspace, smollm2: LanguageModel, tmp_path: Path
) -> None:
    prose = wiki(1, 500)[0]
    words = prose.split()
    shuffled = " ".join(np.random.default_rng(0).permutation(words).tolist())
    version = dataset(ws, "ppl", [prose, shuffled], tmp_path)
    score(ws, version.ref, "perplexity", {}, RunOptions(workers=1))
    s = scores(version, "perplexity")
    assert 1 < s["ppl-0"] < s["ppl-1"] / 2, s


PARAPHRASES = [
    "The cat sat on the mat by the door.",
    "A cat was sitting on the mat near the door.",
    "By the door, the cat sat on a mat.",
    "The cat is sitting on the doormat.",
    "On the mat next to the door sat a cat.",
    "A small cat rested on the mat beside the door.",
]
OUTLIER = "Quarterly revenue of the semiconductor division rose eleven percent year on year."


def test_density_is_higher_in_a_cluster_of_paraphrases_than_at_an_outlier_and_workers_agree(
    ws: Workspace, minilm: Embedder, tmp_path: Path
) -> None:
    version = dataset(ws, "cats", [*PARAPHRASES, OUTLIER], tmp_path)
    score(ws, version.ref, "density", {}, RunOptions(workers=1))  # the defaults
    one = scores(version, "density")
    assert min(one[f"cats-{i}"] for i in range(6)) > one["cats-6"] >= 1.0, one
    params = {"bandwidth": 0.3}  # a wider kernel: each paraphrase sees more of the others
    score(ws, version.ref, "density", params, RunOptions(workers=1))
    wide = scores(version, "density")
    assert min(wide[f"cats-{i}"] for i in range(6)) > 1.3 * wide["cats-6"], wide
    # two workers, one record per task: the counters merge to the same sketch
    score(ws, version.ref, "density", params, RunOptions(workers=2, rows_per_task=1, fresh=True))
    assert scores(version, "density") == wide


def test_semdedup_flags_near_duplicates_and_prototypes_cluster(
    ws: Workspace, minilm: Embedder, tmp_path: Path
) -> None:
    base = wiki(4, 400)
    near = base[1].replace("neurodevelopmental disorder", "neurodevelopmental condition")
    version = dataset(ws, "dups", [*base, near, OUTLIER], tmp_path)
    score(
        ws,
        version.ref,
        "semdedup",
        {"clusters": 2, "threshold": 0.95},
        RunOptions(workers=2, rows_per_task=2),
    )
    table = version.read_attribute("semdedup").to_pylist()
    flagged = {r["id"]: r["duplicate_of"] for r in table if r["duplicate"]}
    assert set(flagged) in ({"dups-4"}, {"dups-1"}), table  # one of the pair, pointing at the other
    assert set(flagged.values()) <= {"dups-1", "dups-4"}
    kept = sample(ws, version.ref, Plan(by="semdedup", eps=0.05), output="dups-clean").version
    assert kept.row_count == 5
    score(ws, version.ref, "prototypes", {"clusters": 2}, RunOptions(workers=1))
    proto = version.read_attribute("prototypes")
    assert set(proto.column("cluster").to_pylist()) <= {0, 1}
    assert all(0 <= d <= 2 for d in proto.column("distance").to_pylist())


def test_uncertainty_from_a_model_over_label_words(
    ws: Workspace, smollm2: LanguageModel, tmp_path: Path
) -> None:
    rows = (SAMPLES / "uci_sentiment_amazon" / "amazon_cells_labelled.tsv").read_text().splitlines()
    texts = [r.split("\t")[0] for r in rows[1:4]]
    version = dataset(ws, "reviews", texts, tmp_path)
    score(
        ws, version.ref, "uncertainty", {"labels": ["positive", "negative"]}, RunOptions(workers=1)
    )
    table = version.read_attribute("uncertainty").to_pylist()
    for row in table:
        assert 0 <= row["entropy"] <= 1 and row["label"] in ("positive", "negative")
        assert sum(row["probs"]) == pytest.approx(1.0)
    queue = sample(ws, version.ref, Plan(by="uncertainty", size=1), output="queue").version
    most = max(table, key=lambda r: r["entropy"])["id"]
    assert [r["id"] for r in queue.iter_rows(["id"])] == [most]


def test_cli_score_then_sample_with_a_plot(ws: Workspace, mixed: Version, minilm: Embedder) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--workspace", str(ws.root), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    out = run("score", mixed.ref, "--by", "density", "--workers", "1")
    assert "density" in out and mixed.ref in out
    out = run("sample", mixed.ref, "--by", "density", "--rate", "0.5", "--seed", "1", "--plot")
    assert "kept 2 of 4" in out
    version = ws.version("mixed-density")
    html = (version.path / "sample.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # score histograms and the map
    assert "projected with PCA" in html or "projected with UMAP" in html


@pytest.fixture(autouse=True, scope="module")
def _quiet_tokenizers() -> Iterator[None]:
    import os

    old = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    yield
    if old is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = old
