"""Eval-set formats: benchmark rows that become ``eval_item`` records (an input, the
reference answers, optional choices and a grader spec the evaluator runs).

Each benchmark keeps its own shape on disk; here they converge so one runner can score
any of them. Worked solutions, later turns and other context go to ``meta``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from gristmill.io.formats.base import (
    Format,
    Row,
    RowContext,
    RowError,
    as_number,
    is_object_list,
    pop_path,
    require_list,
    require_str,
    share_where,
)
from gristmill.records.kinds import Kind

LETTERS = "ABCDEFGHIJ"


def grader(kind: str) -> str:
    """A grader spec in storage form (JSON text)."""
    return orjson.dumps({"type": kind}).decode()


def eval_row(
    text: str,
    references: list[str],
    *,
    grader_spec: str,
    tags: list[str],
    choices: list[str] | None = None,
    answer_index: int | None = None,
) -> Row:
    """An eval item's content fields in storage form."""
    return {
        "input": text,
        "references": references,
        "choices": choices or [],
        "answer_index": answer_index,
        "grader": grader_spec,
        "tags": tags,
    }


def _text(value: Any, field: str, allow_empty: bool = False) -> str:
    """A string field; numbers are accepted as text (CSV readers may type ``0`` as int)."""
    if value is None:
        raise RowError("missing required field", field)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RowError(f"expected a string, got {type(value).__name__}", field)
    if not allow_empty and not value.strip():
        raise RowError("empty text", field)
    return value


# -- GSM8K ----------------------------------------------------------------------------------

_GSM8K_FINAL = re.compile(r"####\s*([^\n]*?)\s*$")


class GSM8K(Format):
    name = "gsm8k"
    kind = Kind.EVAL_ITEM
    description = (
        'GSM8K: {"question", "answer"} where the worked answer ends with "#### <number>"; '
        "the number is the reference, the solution is kept in meta."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("question"), str)
                and isinstance(r.get("answer"), str)
                and _GSM8K_FINAL.search(r["answer"]) is not None
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        question = require_str(row, "question")
        answer = require_str(row, "answer")
        match = _GSM8K_FINAL.search(answer)
        if match is None:
            raise RowError("answer does not end with '#### <number>'", "answer")
        final = match.group(1).replace(",", "")  # "1,600" → "1600": numeric_match compares numbers
        if as_number(final) is None:
            raise RowError(f"final answer {match.group(1)!r} is not a number", "answer")
        out = eval_row(question, [final], grader_spec=grader("numeric_match"), tags=["gsm8k"])
        out["meta"] = {"solution": answer}
        return out


# -- MMLU (header-less CSV) -----------------------------------------------------------------

MMLU_COLUMNS = frozenset(f"col{i}" for i in range(6))
_MMLU_SPLIT = re.compile(r"_(test|dev|val|train)$")


def mmlu_subject(file: Path) -> str:
    """``high_school_us_history_test.csv`` → ``high_school_us_history``."""
    return _MMLU_SPLIT.sub("", file.name.split(".", 1)[0])


class MMLU(Format):
    name = "mmlu"
    kind = Kind.EVAL_ITEM
    description = (
        "MMLU header-less CSV (col0..col5: question, A, B, C, D, answer letter); "
        "the subject comes from the file name."
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                set(r) == MMLU_COLUMNS
                and isinstance(r["col5"], str)
                and r["col5"].strip() in ("A", "B", "C", "D")
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        if "col0" not in row:
            raise RowError("missing required field", "col0")
        question = _text(row.pop("col0"), "col0")
        choices: list[str] = []
        for i in range(1, 5):
            key = f"col{i}"
            if key not in row:
                raise RowError("missing required field", key)
            choices.append(_text(row.pop(key), key, allow_empty=True))
        letter = require_str(row, "col5").strip().upper()
        if len(letter) != 1 or letter not in "ABCD":
            raise RowError(f"answer must be one of A, B, C, D, got {letter!r}", "col5")
        index = LETTERS.index(letter)
        subject = mmlu_subject(ctx.file)
        return eval_row(
            question,
            [choices[index]],
            grader_spec=grader("multiple_choice"),
            tags=["mmlu", subject],
            choices=choices,
            answer_index=index,
        )


# -- OpenBookQA (and ARC, which shares the schema) -------------------------------------------


class OpenBookQA(Format):
    name = "openbookqa"
    kind = Kind.EVAL_ITEM
    description = (
        'OpenBookQA / ARC: {"id", "question": {"stem", "choices": [{text, label}]}, "answerKey"}.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                isinstance(r.get("question"), dict)
                and isinstance(r["question"].get("stem"), str)
                and is_object_list(r["question"].get("choices"), "label")
                and isinstance(r.get("answerKey"), str)
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        stem = _text(pop_path(row, "question.stem"), "question.stem")
        raw_choices = pop_path(row, "question.choices")
        if not isinstance(raw_choices, list) or not raw_choices:
            raise RowError("expected a non-empty list of choices", "question.choices")
        choices: list[str] = []
        labels: list[str] = []
        for i, choice in enumerate(raw_choices):
            where = f"question.choices[{i}]"
            if not isinstance(choice, dict):
                raise RowError(f"expected an object, got {type(choice).__name__}", where)
            choices.append(_text(choice.get("text"), f"{where}.text"))
            labels.append(_text(choice.get("label"), f"{where}.label"))
        key = require_str(row, "answerKey").strip()
        if key not in labels:
            raise RowError(f"{key!r} is not one of the choice labels {labels}", "answerKey")
        index = labels.index(key)
        out = eval_row(
            stem,
            [choices[index]],
            grader_spec=grader("multiple_choice"),
            tags=["openbookqa"],
            choices=choices,
            answer_index=index,
        )
        if labels != list(LETTERS[: len(labels)]):
            out["meta"] = {"choice_labels": labels}  # e.g. ARC's "1".."4"
        return out


# -- MT-Bench (FastChat question files) --------------------------------------------------------


class MTBench(Format):
    name = "mt-bench"
    kind = Kind.EVAL_ITEM
    description = (
        'FastChat MT-Bench / Vicuna-Bench questions: {"question_id", "category", '
        '"turns": [...], "reference"?}; judged by a model.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        return share_where(
            sample,
            lambda r: (
                "question_id" in r
                and isinstance(r.get("category"), str)
                and isinstance(r.get("turns"), list)
                and all(isinstance(t, str) for t in r["turns"])
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        """The first turn is the input; ``meta.turns`` holds the turns after it and
        ``meta.turn_references`` the references for those later turns."""
        turns = require_list(row, "turns")
        texts = [_text(t, f"turns[{i}]") for i, t in enumerate(turns)]
        category = require_str(row, "category")
        reference = row.pop("reference", None)
        if isinstance(reference, str):
            reference = [reference]
        if reference is not None and not isinstance(reference, list):
            raise RowError(
                f"expected a list of strings, got {type(reference).__name__}", "reference"
            )
        refs = [
            _text(r, f"reference[{i}]", allow_empty=True) for i, r in enumerate(reference or [])
        ]
        out = eval_row(
            texts[0], refs[:1], grader_spec=grader("model_graded"), tags=["mt-bench", category]
        )
        meta: Row = {}
        if len(texts) > 1:
            meta["turns"] = texts[1:]
        if len(refs) > 1:
            meta["turn_references"] = refs[1:]
        if meta:
            out["meta"] = meta
        return out


# -- generic ---------------------------------------------------------------------------------

_REFERENCE_KEYS = ("references", "target", "answer")


class GenericEvalItem(Format):
    name = "eval-item"
    kind = Kind.EVAL_ITEM
    description = (
        'Generic eval items: {"input", "references"|"target"|"answer", "choices"?, '
        '"grader"?, "tags"?}; an integer target with choices is the answer index.'
    )

    def detect(self, sample: list[Row], file: Path) -> float:
        # 0.9: a loose signature, so a named benchmark format wins when both fit.
        return 0.9 * share_where(
            sample,
            lambda r: (
                isinstance(r.get("input"), str)
                and any(k in r for k in _REFERENCE_KEYS)
                and "instruction" not in r
                and "output" not in r
            ),
        )

    def convert(self, row: Row, ctx: RowContext) -> Row:
        text = require_str(row, "input")
        choices: list[str] = []
        if "choices" in row:
            raw = require_list(row, "choices")
            choices = [_text(c, f"choices[{i}]", allow_empty=True) for i, c in enumerate(raw)]
        key = next((k for k in _REFERENCE_KEYS if k in row), None)
        if key is None:
            raise RowError("missing required field", "references")
        references, index = _references(row.pop(key), key, choices)
        if "answer_index" in row:
            raw_index = row.pop("answer_index")
            if not isinstance(raw_index, int) or isinstance(raw_index, bool):
                raise RowError("expected an integer", "answer_index")
            index = raw_index
        if index is not None and choices and not 0 <= index < len(choices):
            raise RowError(f"index {index} is out of range for {len(choices)} choices", key)
        spec = row.pop("grader", None)
        if spec is None:
            spec_text = grader("multiple_choice" if choices else "exact_match")
        elif isinstance(spec, str | dict):
            spec_text = spec if isinstance(spec, str) else orjson.dumps(spec).decode()
        else:
            raise RowError("expected a grader name, JSON text or object", "grader")
        tags = row.pop("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise RowError("expected a list of strings", "tags")
        return eval_row(
            text,
            references,
            grader_spec=spec_text,
            tags=tags,
            choices=choices,
            answer_index=index,
        )


def _references(value: Any, key: str, choices: list[str]) -> tuple[list[str], int | None]:
    """A reference value → (references, answer index). An integer with choices is an
    index; a letter or a choice's text with choices also gives the index."""
    if isinstance(value, int) and not isinstance(value, bool) and choices:
        if not 0 <= value < len(choices):
            raise RowError(f"index {value} is out of range for {len(choices)} choices", key)
        return [choices[value]], value
    if isinstance(value, list):
        return [_text(v, f"{key}[{i}]") for i, v in enumerate(value)], None
    text = _text(value, key)
    if choices:
        if text in choices:
            return [text], choices.index(text)
        letter = text.strip().upper()
        if len(letter) == 1 and letter in LETTERS[: len(choices)]:
            index = LETTERS.index(letter)
            return [choices[index]], index
    return [text], None


FORMATS: list[Format] = [GSM8K(), MMLU(), OpenBookQA(), MTBench(), GenericEvalItem()]
