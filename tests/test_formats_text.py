"""The ``document`` format on real pre-training text: C4, Dolma, RedPajama/Pile samples
from Data-Juicer; detection, conversion, dates, and bad rows."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.io.formats import chat, native, text
from gristmill.io.formats.base import Format, RowContext, RowError
from gristmill.records import Document, Kind, from_row

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
OURS: list[Format] = [*native.FORMATS, *chat.FORMATS, *text.FORMATS]
DOCUMENT = next(f for f in text.FORMATS if f.name == "document")
CTX = RowContext(file=Path("test.jsonl"), row_number=1)


def convert(f: Format, row: dict[str, Any]) -> dict[str, Any]:
    """``f.convert`` for formats that return a plain row (all of these do)."""
    out = f.convert(row, CTX)
    assert isinstance(out, dict)
    return out


TEXT_FILES = [
    "llamafactory_demos/c4_demo.jsonl",
    "dolma_cc_samples/cc_en_head-0091.jsonl",
    "dolma_cc_samples/cc_en_head-0174.jsonl",
    "dolma_cc_samples/provided_documents_000.json.gz",
    *(
        f"datajuicer_web_samples/{p.name}"
        for p in sorted((SAMPLES / "datajuicer_web_samples").glob("*.jsonl"))
    ),
]


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def best_format(rows: list[dict[str, Any]]) -> Format | None:
    score, best = max(((f.detect(rows[:50], Path("x")), f) for f in OURS), key=lambda s: s[0])
    return best if score > 0 else None


def to_document(converted: dict[str, Any]) -> Document:
    meta = converted.get("meta")
    row = {
        **converted,
        "id": "x",
        "origin": "import:test",
        "meta": json.dumps(meta) if meta else None,
    }
    record = from_row(Kind.DOCUMENT, row)
    assert isinstance(record, Document)
    return record


@pytest.mark.parametrize("rel", TEXT_FILES)
def test_real_text_files(rel: str) -> None:
    rows = load_jsonl(SAMPLES / rel)
    assert len(rows) >= 10
    assert best_format(rows) is DOCUMENT
    for row in rows:
        left = dict(row)
        record = to_document(convert(DOCUMENT, left))
        assert record.text == row["text"]
        assert "text" not in left


def test_dolma_dates_and_leftovers() -> None:
    rows = load_jsonl(SAMPLES / "dolma_cc_samples/cc_en_head-0174.jsonl")
    left = dict(rows[0])
    converted = convert(DOCUMENT, left)
    assert converted["created_at"] == datetime(2020, 6, 5, 4, 25, 29, tzinfo=UTC)
    # `added` stays (another date, for meta); the nested metadata is the engine's to keep.
    assert set(left) == {"id", "source", "added", "metadata"}
    assert converted["url"] is None and converted["title"] is None
    provided = load_jsonl(SAMPLES / "dolma_cc_samples/provided_documents_000.json.gz")
    for row in provided:
        when = convert(DOCUMENT, dict(row))["created_at"]
        assert when.tzinfo is not None


def test_added_used_when_created_is_unparseable() -> None:
    row = {"text": "t", "created": "sometime", "added": "2023-04-07T03:31:49.216968+00:00"}
    converted = convert(DOCUMENT, row)
    assert converted["created_at"] == datetime(2023, 4, 7, 3, 31, 49, 216968, tzinfo=UTC)
    assert row == {"created": "sometime"}


def test_plain_text_row_and_mapped_fields() -> None:
    assert DOCUMENT.detect([{"text": "file body"}], Path("a.txt")) >= 0.9
    row = {
        "text": "Body",
        "url": "https://example.org",
        "title": "T",
        "language": "en",
        "meta": '{"source": "c4"}',
    }
    converted = convert(DOCUMENT, row)
    assert row == {}
    record = to_document(converted)
    assert (record.url, record.title, record.language) == ("https://example.org", "T", "en")
    assert record.meta == {"source": "c4"}


def test_text_among_other_family_keys_scores_low() -> None:
    assert DOCUMENT.detect([{"text": "x", "label": 1}], Path("x")) <= 0.2
    assert DOCUMENT.detect([{"messages": []}], Path("x")) == 0


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"title": "no body"}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   \n"}, "text"),
        ({"text": ["a", "b"]}, "text"),
        ({"text": "ok", "url": 5}, "url"),
        ({"text": "ok", "language": {"en": 1}}, "language"),
    ],
)
def test_bad_document_rows(row: dict[str, Any], field: str) -> None:
    with pytest.raises(RowError) as info:
        convert(DOCUMENT, row)
    assert info.value.field == field
