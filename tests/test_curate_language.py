"""The `language` step and the project's one language identifier, on real text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pyarrow as pa
import pytest

import gristmill.langid
from gristmill.curate.language import Language
from gristmill.langid import UNDETERMINED, detect_language, model_path
from gristmill.pipeline import parse_pipeline
from gristmill.pipeline.step import StepContext, StepOutput
from gristmill.quality import text as quality_text
from gristmill.records.kinds import Kind

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


@cache
def lima_answer(snippet: str) -> str:
    rows = json.loads((SAMPLES / "lima" / "lima.json").read_text())
    (text,) = [r["output"] for r in rows if snippet in r["output"]]
    return str(text)


# A German answer from LIMA: "Es gibt im heutigen Deutschen keinen semantischen Unterschied
# zwischen den drei Frageadverbien (genauer: Kausalfrageadverbien) warum, weshalb und wieso."
GERMAN = "Es gibt im heutigen Deutschen keinen semantischen Unterschied"
# A Portuguese one: "Você encontra na internet a afirmação que Singletons são ruins."
PORTUGUESE = "Muito da polêmica ocorre pela falta de uma contextualização"


@cache
def english_page() -> str:
    """A Common Crawl travel post: "This walking tour is the first from the far side ..."."""
    for line in (SAMPLES / "dolma_cc_samples" / "cc_en_head-0091.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "akindleinhongkong" in row["id"]:
            return str(row["text"])
    raise AssertionError("sample missing")


def run(step: Language, *texts: str) -> StepOutput:
    table = pa.table(
        {
            "id": [f"doc-{i}" for i in range(len(texts))],
            "text": list(texts),
            "language": pa.array([None] * len(texts), type=pa.string()),
        }
    )
    step.bind(StepContext(kind=Kind.DOCUMENT))
    (out,) = list(step.run([table]))
    return out


def test_a_german_answer_is_dropped_and_english_kept() -> None:
    german = lima_answer(GERMAN)
    out = run(Language(), english_page(), german)
    assert out.drop == [None, "language: not en"]
    assert out.table.column("language").to_pylist() == ["en", "de"]
    attribute = out.attributes["language"].to_pylist()
    assert [(a["id"], a["language"]) for a in attribute] == [("doc-0", "en"), ("doc-1", "de")]
    assert all(a["score"] > 0.9 for a in attribute)


def test_several_languages_and_label_only() -> None:
    texts = (english_page(), lima_answer(GERMAN), lima_answer(PORTUGUESE))
    assert run(Language(languages=["en", "de"]), *texts).drop == [None, None, "language: not en/de"]
    labelled = run(Language(languages=None), *texts)
    assert labelled.drop == [None, None, None]
    assert labelled.table.column("language").to_pylist() == ["en", "de", "pt"]


def test_a_low_score_is_its_own_reason() -> None:
    # fastText is sure of this page's English, but not 99% sure
    out = run(Language(min_score=0.99), english_page())
    assert out.drop == ["language: en but score under 0.99"]


def test_text_without_letters_is_undetermined() -> None:
    assert detect_language("1 2 3 4 5 ... 2018 2019 2020") == (UNDETERMINED, 0.0)
    assert run(Language(), "12:30 — 14:45").drop == ["language: not en"]


def test_parameters_from_yaml() -> None:
    (step,) = parse_pipeline(
        {"steps": [{"language": {"languages": ["de"], "min_score": 0.5}}]}
    ).build()
    assert step.params() == {"languages": ["de"], "min_score": 0.5, "max_chars": None}
    with pytest.raises(ValueError, match="min_score"):
        parse_pipeline({"steps": [{"language": {"min_score": 2}}]}).build()


def test_the_quality_report_uses_the_same_identifier() -> None:
    assert quality_text.detect_language is gristmill.langid.detect_language
    assert detect_language(lima_answer(GERMAN))[0] == "de"


def test_the_model_ships_in_the_wheel_and_nothing_downloads(tmp_path: Path) -> None:
    """In a fresh process with no usable network (proxies pointing nowhere, sockets
    refused, an empty model cache), identification still works."""
    assert model_path().stat().st_size > 500_000
    script = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from gristmill.langid import detect_language\n"
        "print(detect_language('Der Zug kommt in Frankfurt pünktlich an.')[0])\n"
    )
    env = {
        **os.environ,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "FTLANG_CACHE": str(tmp_path / "empty-cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "de"
    assert not (tmp_path / "empty-cache").exists()
