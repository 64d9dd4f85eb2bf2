"""Eval-set and agent-trace import formats on real samples (GSM8K, MMLU, OpenBookQA,
MT-Bench, tau-bench)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from gristmill.io.formats import RowContext, RowError, detect_format, get_format
from gristmill.io.formats.base import Converted
from gristmill.records import AgentTrace, EvalItem, from_row, rows_to_table

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
GSM8K = SAMPLES / "gsm8k" / "test.jsonl"
OBQA = SAMPLES / "openbookqa" / "openbookqa.jsonl"
MT_BENCH = SAMPLES / "fastchat_mtbench" / "mt_bench_question.jsonl"
VICUNA = SAMPLES / "fastchat_mtbench" / "vicuna_bench_question.jsonl"
TAU = SAMPLES / "tau_bench_trajectories" / "gpt-4o-airline.json.gz"
TAU_FEW_SHOT = SAMPLES / "tau_bench_trajectories" / "MockAirlineDomainEnv-few_shot.jsonl"
MMLU_FILES = sorted((SAMPLES / "mmlu_subset").glob("*/*.csv"))


def load(path: Path) -> list[dict[str, Any]]:
    """JSON array or JSONL, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_mmlu(path: Path) -> list[dict[str, Any]]:
    """Header-less CSV → the ``col0..col5`` dicts a CSV reader yields without a header."""
    with path.open(newline="", encoding="utf-8") as f:
        return [{f"col{i}": v for i, v in enumerate(rec)} for rec in csv.reader(f)]


def convert(name: str, row: dict[str, Any], file: Path = Path("x.jsonl")) -> dict[str, Any]:
    out = get_format(name).convert(row, RowContext(file=file, row_number=1))
    return out.row if isinstance(out, Converted) else out


def convert_file(name: str, kind: str, rows: list[dict[str, Any]], file: Path) -> list[Any]:
    """Convert and validate every row (no bad rows expected in these files); also
    check the storage rows fit the Arrow schema."""
    converted = [convert(name, dict(r), file) for r in rows]
    storage = [
        {**r, "id": str(i), "origin": "import:test", "meta": None} for i, r in enumerate(converted)
    ]
    assert rows_to_table(kind, storage).num_rows == len(rows)
    return [from_row(kind, row) for row in storage]


def assert_detects(rows: list[dict[str, Any]], file: Path, expected: str) -> None:
    best, scores = detect_format(rows[:50], file)
    assert best is not None and best.name == expected, scores
    assert dict(scores)[expected] >= 0.9


# -- GSM8K -----------------------------------------------------------------------------------


def test_gsm8k() -> None:
    raw = load(GSM8K)
    assert_detects(raw, GSM8K, "gsm8k")
    items = convert_file("gsm8k", "eval_item", raw, GSM8K)
    assert len(items) == 1319
    for item, row in zip(items, raw, strict=True):
        assert isinstance(item, EvalItem)
        final = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert item.references == [final]
        assert item.tags == ["gsm8k"] and json.loads(item.grader) == {"type": "numeric_match"}
    first = convert("gsm8k", dict(raw[0]))
    assert first["references"] == ["18"]
    assert first["meta"]["solution"].endswith("#### 18")
    comma = next(r for r in raw if "#### 1,600" in r["answer"])
    assert convert("gsm8k", dict(comma))["references"] == ["1600"]


# -- MMLU ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MMLU_FILES, ids=lambda p: p.name)
def test_mmlu(path: Path) -> None:
    raw = load_mmlu(path)
    assert_detects(raw, path, "mmlu")
    subject = path.name.rsplit("_", 1)[0]
    items = convert_file("mmlu", "eval_item", raw, path)
    for item, row in zip(items, raw, strict=True):
        assert isinstance(item, EvalItem)
        assert item.answer_index == "ABCD".index(row["col5"])
        assert item.choices == [row["col1"], row["col2"], row["col3"], row["col4"]]
        assert item.references == [item.choices[item.answer_index]]
        assert item.tags == ["mmlu", subject]
        assert json.loads(item.grader) == {"type": "multiple_choice"}


def test_mmlu_detects_only_its_shape() -> None:
    mmlu = get_format("mmlu")
    with_header = [{"question": "q", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "A"}]
    assert mmlu.detect(with_header, Path("x.csv")) == 0
    not_a_letter = [{f"col{i}": v for i, v in enumerate(["q", "1", "2", "3", "4", "E"])}]
    assert mmlu.detect(not_a_letter, Path("x.csv")) == 0


# -- OpenBookQA, MT-Bench ---------------------------------------------------------------------


def test_openbookqa() -> None:
    raw = load(OBQA)
    assert_detects(raw, OBQA, "openbookqa")
    items = convert_file("openbookqa", "eval_item", raw, OBQA)
    assert len(items) == 500
    for item, row in zip(items, raw, strict=True):
        assert isinstance(item, EvalItem)
        assert item.answer_index == "ABCD".index(row["answerKey"])
        assert item.input == row["question"]["stem"]
        assert item.references == [item.choices[item.answer_index]]


@pytest.mark.parametrize("path", [MT_BENCH, VICUNA], ids=lambda p: p.name)
def test_mt_bench(path: Path) -> None:
    raw = load(path)
    assert_detects(raw, path, "mt-bench")
    items = convert_file("mt-bench", "eval_item", raw, path)
    assert len(items) == 80
    for item, row in zip(items, raw, strict=True):
        assert isinstance(item, EvalItem)
        assert item.input == row["turns"][0]
        assert item.tags == ["mt-bench", row["category"]]
        assert json.loads(item.grader) == {"type": "model_graded"}
        assert item.references == row.get("reference", [])[:1]
    if path == MT_BENCH:
        row = dict(raw[0])
        out = convert("mt-bench", row)
        assert out["meta"]["turns"] == raw[0]["turns"][1:]
        assert row == {"question_id": 81}  # left for meta


# -- generic eval items ------------------------------------------------------------------------


def test_generic_eval_item() -> None:
    rows = [{"input": "2+2?", "choices": ["3", "4"], "target": 1}]
    assert_detects(rows, Path("x.jsonl"), "eval-item")
    item = convert("eval-item", dict(rows[0]))
    assert (item["answer_index"], item["references"]) == (1, ["4"])
    letter = convert("eval-item", {"input": "2+2?", "choices": ["3", "4"], "answer": "B"})
    assert letter["answer_index"] == 1
    free = convert(
        "eval-item", {"input": "Capital of France?", "references": ["Paris"], "tags": ["geo"]}
    )
    assert free["references"] == ["Paris"] and json.loads(free["grader"]) == {"type": "exact_match"}
    from_row("eval_item", {**free, "id": "x", "origin": "import:test", "meta": None})


# -- tau-bench ---------------------------------------------------------------------------------


def test_tau_bench_trajectories() -> None:
    raw = load(TAU)
    assert_detects(raw, TAU, "tau-bench")
    traces = convert_file("tau-bench", "agent_trace", raw, TAU)
    assert len(traces) == 200
    assert all(isinstance(t, AgentTrace) for t in traces)
    outcomes = [t.outcome for t in traces]
    assert outcomes.count("success") == 84 and outcomes.count("failure") == 116
    failed = next(t for t in traces if t.outcome == "failure")
    assert failed.reward == 0.0 and failed.failure_labels == []
    first = traces[0]
    assert first.task.startswith("You are mia_li_3668.")
    assert (first.steps[0].type, first.steps[0].role) == ("message", "system")
    calls = {s.call_id: s for s in first.steps if s.type == "tool_call"}
    assert calls and all(
        s.tool_name and isinstance(orjson.loads(s.arguments or ""), dict) for s in calls.values()
    )
    results = [s for s in first.steps if s.type == "tool_result"]
    assert results and all(r.call_id in calls for r in results)
    meta = convert("tau-bench", dict(raw[0]))["meta"]
    assert meta["actions"][0]["name"] == "book_reservation"


def test_tau_bench_few_shot() -> None:
    raw = load(TAU_FEW_SHOT)
    assert_detects(raw, TAU_FEW_SHOT, "tau-bench-few-shot")
    traces = convert_file("tau-bench-few-shot", "agent_trace", raw, TAU_FEW_SHOT)
    assert len(traces) == 19
    first = traces[0]
    assert isinstance(first, AgentTrace)
    assert first.task == "Hi, I need to cancel my flights from MCO to CLT, please."
    assert [s.type for s in first.steps[3:5]] == ["tool_call", "tool_result"]
    assert first.steps[4].content == "Error: user not found"
    assert first.outcome is None and first.reward is None
    multiline = next(s for t in traces for s in t.steps if s.content and "\n- **" in s.content)
    assert multiline.role == "assistant"  # continuation lines stay with their turn


# -- bad rows -------------------------------------------------------------------------------------

MSG = {"role": "user", "content": "hi"}

BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("gsm8k", {"question": "q", "answer": "no final line"}, "answer", "####"),
    ("gsm8k", {"question": "q", "answer": "x\n#### about ten"}, "answer", "not a number"),
    ("gsm8k", {"question": "", "answer": "#### 1"}, "question", "empty text"),
    (
        "mmlu",
        {"col0": "q", "col1": "a", "col2": "b", "col3": "c", "col4": "d", "col5": "E"},
        "col5",
        "one of A, B, C, D",
    ),
    ("mmlu", {"col0": "q", "col1": "a", "col2": "b", "col3": "c", "col5": "A"}, "col4", "missing"),
    (
        "openbookqa",
        {"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}]}, "answerKey": "B"},
        "answerKey",
        "not one of the choice labels",
    ),
    (
        "openbookqa",
        {"question": {"stem": "q", "choices": [{"label": "A"}]}, "answerKey": "A"},
        "question.choices[0].text",
        "missing",
    ),
    ("openbookqa", {"question": "q", "answerKey": "A"}, "question", "expected an object"),
    (
        "mt-bench",
        {"question_id": 1, "category": "x", "turns": ["ok", ""]},
        "turns[1]",
        "empty text",
    ),
    ("mt-bench", {"question_id": 1, "category": "x", "turns": []}, "turns", "empty list"),
    ("eval-item", {"input": "q", "choices": ["a"], "target": 3}, "target", "out of range"),
    ("eval-item", {"references": ["a"]}, "input", "missing"),
    (
        "tau-bench",
        {"task_id": 1, "reward": 1.0, "info": {"task": {}}, "traj": [MSG]},
        "info.task.instruction",
        "missing",
    ),
    (
        "tau-bench",
        {"task_id": 1, "reward": "high", "info": {"task": {"instruction": "do"}}, "traj": [MSG]},
        "reward",
        "number",
    ),
    (
        "tau-bench",
        {
            "task_id": 1,
            "reward": 1,
            "info": {"task": {"instruction": "do"}},
            "traj": [MSG, {"content": "x"}],
        },
        "traj[1].role",
        "missing",
    ),
    (
        "tau-bench-few-shot",
        {"messages_display": "assistant: hello"},
        "messages_display",
        "no user turn",
    ),
]


@pytest.mark.parametrize(("name", "row", "field", "reason"), BAD)
def test_bad_rows_name_the_field(name: str, row: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(RowError) as info:
        convert(name, json.loads(json.dumps(row)))
    assert info.value.field == field
    assert reason in info.value.reason
