"""The `decontaminate` step: GSM8K (the real test set) as the eval set, 300 real C4
pages as training data with a few GSM8K questions planted in them (verbatim and
lightly reformatted): exactly the planted ones are found, and the attribute names
their eval items. Also conversations, short eval items (OpenBookQA), tag mode,
``min_overlap`` and :func:`find_contamination`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gristmill.curate.decontaminate import (
    Decontaminate,
    find_contamination,
    items_hit,
    normalize,
)
from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.pipeline.run import RunResult
from gristmill.store import StoreError, Version, Workspace


def gsm8k_questions(samples: Path) -> list[str]:
    lines = (samples / "gsm8k" / "test.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines]


def import_rows(workspace: Workspace, tmp: Path, name: str, rows: list[dict[str, Any]]) -> Version:
    path = tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_path(workspace, path, name)
    assert report.version is not None and report.quarantined == 0
    return report.version


def run(workspace: Workspace, step: dict[str, Any], source: str, out: str) -> RunResult:
    spec = parse_pipeline([{"decontaminate": step}])
    return run_pipeline(workspace, spec, source, out, RunOptions(workers=1))


@pytest.fixture
def gsm8k(workspace: Workspace, samples: Path) -> Version:
    report = import_path(workspace, samples / "gsm8k" / "test.jsonl", "gsm8k")
    assert report.version is not None and report.kind == "eval_item"
    return report.version


@pytest.fixture
def item_of(gsm8k: Version) -> dict[str, str]:
    """GSM8K question → its eval item id."""
    return {r["input"]: r["id"] for r in gsm8k.iter_rows(columns=["id", "input"])}


@pytest.fixture
def planted(samples: Path) -> dict[str, str]:
    """Texts planted among the C4 pages, by what they are."""
    q = gsm8k_questions(samples)
    return {
        # verbatim, inside a page of other text
        "verbatim": "Homework help forum. Today's problem from my son's worksheet:\n\n"
        f"{q[0]}\n\nI got 18 but his teacher says to show the work. Any tips?",
        # reformatted: upper case, straight quotes, different spacing and line breaks
        "reformatted": "PRACTICE SET 4\nQUESTION 2: "
        + q[1].upper().replace("  ", " \n ").replace("?", " ?")
        + "\nANSWER: 3",
        # two questions on one page, the second without its punctuation
        "two": f"Worksheet.\n1) {q[2]}\n2) " + q[10].replace(",", "").replace(".", ""),
        # a partial copy: the first 20 words of a question, then the page moves on
        "partial": "Story starter: " + " ".join(q[25].split()[:20]) + " and then it rained.",
        # near miss: 12 consecutive words of a question, below the 13-gram
        "near miss": "A note: " + " ".join(q[100].split()[:12]) + " — then we talked about bells.",
    }


@pytest.fixture
def web(workspace: Workspace, samples: Path, tmp_path: Path, planted: dict[str, str]) -> Version:
    lines = (samples / "llamafactory_demos" / "c4_demo.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for i, (what, text) in enumerate(planted.items()):
        rows.insert(40 * (i + 1), {"text": text, "title": what})
    return import_rows(workspace, tmp_path, "web", rows)


def ids_by_title(version: Version) -> dict[str, str]:
    return {r["title"]: r["id"] for r in version.iter_rows(columns=["id", "title"]) if r["title"]}


def test_normalize_as_the_janitor_does() -> None:
    assert normalize("Janet’s ducks lay 16 eggs per day. She sells (the) REMAINDER!") == [
        "janets", "ducks", "lay", "16", "eggs", "per", "day", "she", "sells", "the", "remainder",
    ]  # fmt: skip
    assert normalize("snake_case, $2.50 — 3-4") == ["snakecase", "250", "34"]


def test_finds_exactly_the_planted_questions(
    workspace: Workspace,
    gsm8k: Version,
    web: Version,
    item_of: dict[str, str],
    samples: Path,
) -> None:
    q = gsm8k_questions(samples)
    result = run(workspace, {"eval": "gsm8k"}, "web", "clean")
    planted = ids_by_title(web)
    assert result.excluded is not None
    dropped = {r["id"] for r in result.excluded.iter_rows(columns=["id"])}
    expected = {planted[w] for w in ("verbatim", "reformatted", "two", "partial")}
    assert dropped == expected
    assert result.output.row_count == 300 + 5 - 4
    (stats,) = result.stats
    assert stats.dropped == {"contaminated: gsm8k": 4}
    assert stats.counters == {"records contaminated": 4, "eval item hits": 5}

    attr = {r["id"]: r for r in result.output.read_attribute("contamination").to_pylist()}
    assert set(attr) == expected
    assert attr[planted["verbatim"]]["eval_items"] == [item_of[q[0]]]
    assert attr[planted["reformatted"]]["eval_items"] == [item_of[q[1]]]
    assert sorted(attr[planted["two"]]["eval_items"]) == sorted([item_of[q[2]], item_of[q[10]]])
    assert attr[planted["partial"]]["eval_items"] == [item_of[q[25]]]
    assert all(a["eval"] == ["gsm8k@1"] for a in attr.values())
    # every 13-gram of the verbatim question collides; 20 words make 8 13-grams
    assert attr[planted["verbatim"]]["ngrams"] == len(normalize(q[0])) - 12
    assert attr[planted["partial"]]["ngrams"] == 8
    reasons = {
        r["id"]: r["reason"] for r in result.excluded.read_attribute("exclusion").to_pylist()
    }
    assert set(reasons.values()) == {"contaminated: gsm8k"}


def test_tag_mode_and_min_overlap(workspace: Workspace, gsm8k: Version, web: Version) -> None:
    planted = ids_by_title(web)
    tagged = run(workspace, {"eval": ["gsm8k"], "mode": "tag"}, "web", "tagged")
    assert tagged.output.row_count == 305 and tagged.excluded is None
    assert tagged.output.read_attribute("contamination").num_rows == 4
    # an item counts once the page holds `min_overlap` of its n-grams, or all of them:
    # whole questions still count at 10, the 20-word partial copy (8 n-grams) no more
    strict = run(workspace, {"eval": "gsm8k", "min_overlap": 10}, "web", "strict")
    assert strict.excluded is not None
    dropped = {r["id"] for r in strict.excluded.iter_rows(columns=["id"])}
    assert dropped == {planted[w] for w in ("verbatim", "reformatted", "two")}


def test_find_contamination_reports_the_eval_items(
    gsm8k: Version, web: Version, item_of: dict[str, str], samples: Path
) -> None:
    q = gsm8k_questions(samples)
    found = find_contamination(web, gsm8k)
    planted = ids_by_title(web)
    assert [f.record_id for f in found] == [
        planted[w] for w in ("verbatim", "reformatted", "two", "partial")
    ]  # in the training set's order
    hits = items_hit(found)
    assert hits[item_of[q[0]]] == [planted["verbatim"]]
    assert hits[item_of[q[10]]] == [planted["two"]]
    assert len(hits) == 5


def test_worked_solutions_are_indexed_when_asked(
    workspace: Workspace, gsm8k: Version, samples: Path, tmp_path: Path
) -> None:
    line = json.loads((samples / "gsm8k" / "test.jsonl").read_text().splitlines()[2])
    solution = line["answer"].split("####")[0]
    docs = import_rows(workspace, tmp_path, "sols", [{"text": "Solution:\n" + solution}])
    assert find_contamination(docs, gsm8k) == []  # references are the final numbers only
    found = find_contamination(docs, gsm8k, fields=["input", "meta.solution"])
    assert len(found) == 1


def test_conversations(
    workspace: Workspace, gsm8k: Version, samples: Path, tmp_path: Path, item_of: dict[str, str]
) -> None:
    q = gsm8k_questions(samples)
    alpaca = json.loads((samples / "llamafactory_demos" / "alpaca_en_demo.json").read_text())
    rows: list[dict[str, Any]] = [
        {
            "messages": [
                {"role": "user", "content": (a["instruction"] + "\n" + a["input"]).strip()},
                {"role": "assistant", "content": a["output"]},
            ]
        }
        for a in alpaca[:60]
    ]
    rows.insert(
        30,
        {
            "messages": [
                {"role": "system", "content": "You are a patient maths tutor."},
                {"role": "user", "content": "Can you help me with this? " + q[5]},
                {"role": "assistant", "content": "Sure. Let us go step by step."},
            ]
        },
    )
    chats = import_rows(workspace, tmp_path, "chats", rows)
    assert chats.kind == "conversation"
    result = run(workspace, {"eval": "gsm8k"}, "chats", "chats-clean")
    assert result.excluded is not None
    [dropped] = list(result.excluded.iter_rows())
    assert dropped["system"] == "You are a patient maths tutor."
    assert q[5] in dropped["messages"][0]["content"]
    [attr] = result.output.read_attribute("contamination").to_pylist()
    assert attr["eval_items"] == [item_of[q[5]]]


def test_short_eval_items_count_whole(workspace: Workspace, samples: Path, tmp_path: Path) -> None:
    """OpenBookQA stems are often shorter than 13 words: the whole stem is one n-gram
    ("There is most likely going to be fog around:", item 1129); stems under
    ``min_words`` ("Predators eat", item 880) are not indexed."""
    obqa = import_path(workspace, samples / "openbookqa" / "openbookqa.jsonl", "obqa").version
    assert obqa is not None
    docs = import_rows(
        workspace,
        tmp_path,
        "nature",
        [
            {"text": "On cold mornings there is most likely going to be fog around a marsh."},
            {"text": "Predators eat bunnies, and the fog around the lake lifted by noon."},
        ],
    )
    found = find_contamination(docs, obqa)
    assert [(f.eval_items, f.ngrams) for f in found] == [(["1129"], 1)]


def test_errors(workspace: Workspace, gsm8k: Version, web: Version) -> None:
    with pytest.raises(StoreError, match="no dataset named 'mmlu'"):
        run(workspace, {"eval": "mmlu"}, "web", "x")
    with pytest.raises(ValueError, match="web@1 holds document records, not eval_item"):
        run(workspace, {"eval": ["gsm8k", "web"]}, "web", "y")
    with pytest.raises(TypeError, match="mode must be drop or tag"):
        Decontaminate(eval="gsm8k", mode="flag")
    with pytest.raises(TypeError, match="fields must name"):
        Decontaminate(eval="gsm8k", fields=["answer"])
