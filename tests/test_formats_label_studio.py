"""Label Studio export formats on the real converter fixtures: media (boxes, polygons,
taxonomy), text (choices) and chat (chatmessage), plus the ``annotations`` attribute."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from gristmill.io.formats import RowContext, RowError, detect_format, get_format
from gristmill.io.formats.base import Converted
from gristmill.records import Conversation, Document, Media, RecordBase, from_row, rows_to_table

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "samples" / "label_studio_exports"
KIND = {
    "label-studio-media": "media",
    "label-studio-text": "document",
    "label-studio-chat": "conversation",
}
ATTRIBUTE_KEYS = {
    "annotator",
    "question",
    "type",
    "value",
    "origin",
    "annotation_id",
    "was_cancelled",
    "ground_truth",
}


def load(name: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads((EXPORTS / name).read_text(encoding="utf-8"))
    return tasks


def convert(name: str, task: dict[str, Any]) -> tuple[RecordBase, Converted, dict[str, Any]]:
    """Convert like the engine does (``id`` popped first); return the validated record,
    the raw ``Converted`` and what was left for ``meta``."""
    row = dict(task)
    row.pop("id", None)
    out = get_format(name).convert(row, RowContext(file=EXPORTS / "x.json", row_number=1))
    assert isinstance(out, Converted)
    storage = {**out.row, "id": "x", "origin": "import:test", "meta": None}
    assert rows_to_table(KIND[name], [storage]).num_rows == 1
    return from_row(KIND[name], storage), out, row


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("test_export_csv_csv_test.json", "label-studio-media"),
        ("test_export_json_min_data.json", "label-studio-media"),
        ("test_export_json_min_data_repeater.json", "label-studio-media"),
        ("test_export_csv_csv_test_history.json", "label-studio-text"),
        ("test_export_csv_csv_test2.json", "label-studio-text"),
        ("test_export_json_min_chat_data.json", "label-studio-chat"),
    ],
)
def test_every_export_detects_and_converts(file: str, expected: str) -> None:
    tasks = load(file)
    best, scores = detect_format(tasks, EXPORTS / file)
    assert best is not None and best.name == expected, scores
    assert dict(scores)[expected] >= 0.9
    for task in tasks:
        original = copy.deepcopy(task)
        _, out, _ = convert(expected, task)
        assert task == original  # the parsed row is not changed (the quarantine may need it)
        rows = out.attributes["annotations"]
        assert rows and all(set(r) == ATTRIBUTE_KEYS for r in rows)
        assert all(r["origin"].startswith(("human:", "model:")) for r in rows)
        assert all(isinstance(orjson.loads(r["value"]), dict) for r in rows)


def test_rectangles_with_predictions_and_reviews() -> None:
    task = load("test_export_csv_csv_test.json")[0]
    record, out, left = convert("label-studio-media", task)
    assert isinstance(record, Media)
    assert record.media_type == "image"
    assert record.uri == "https://data.heartex.net/open-images/train_0/mini/0030019819f25b28.jpg"
    (box,) = record.boxes
    assert box.label == "Car"
    assert (box.x, box.y, box.width, box.height) == pytest.approx(
        (4.8574, 11.6907, 92.51, 71.76), abs=1e-4
    )
    assert box.annotator == "human:hakan@heartex.com"
    meta = out.row["meta"]
    assert meta["coordinates"] == "percent" and meta["original_width"] == 768
    assert meta["reviews"][0]["accepted"] is False and meta["reviews"][0]["annotation"] == 7
    human, model = out.attributes["annotations"]
    assert (human["origin"], human["annotation_id"], human["question"]) == (
        "human:hakan@heartex.com",
        "7",
        "label",
    )
    assert model["origin"] == "model:model 0"
    assert orjson.loads(model["value"])["x"] == 3.63  # the prediction's box, not the human's
    # the other data fields (text, audio) and annotation bookkeeping stay for meta
    assert set(left["data"]) == {"text", "audio"}
    assert left["annotations"][0]["lead_time"] == 7.662
    assert "result" not in left["annotations"][0]


def test_polygon() -> None:
    record, _, _ = convert("label-studio-media", load("test_export_json_min_data.json")[0])
    assert isinstance(record, Media)
    (polygon,) = record.polygons
    assert polygon.label == "Airplane" and polygon.annotator == "human:1"
    assert polygon.points[0] == pytest.approx([44.4444, 48.2540], abs=1e-4)
    assert len(polygon.points) == 3


def test_repeater_box_and_taxonomy() -> None:
    record, _, left = convert(
        "label-studio-media", load("test_export_json_min_data_repeater.json")[0]
    )
    assert isinstance(record, Media)
    assert record.uri == "https://example.org/example1.jpeg"
    assert [b.label for b in record.boxes] == ["Document Title"]
    assert record.labels == ["Archaea"]
    assert len(left["data"]["images"]) == 3  # the other pages are kept


def test_text_choices_become_labels() -> None:
    record, out, _ = convert("label-studio-text", load("test_export_csv_csv_test_history.json")[0])
    assert isinstance(record, Document)
    assert record.text.startswith("Calif. wildfires")
    assert out.attributes["labels"] == [
        {"annotator": "human:sergei@heartex.test", "question": "sentiment", "label": "Positive"}
    ]


def test_text_from_the_annotated_field() -> None:
    record, _, left = convert("label-studio-text", load("test_export_csv_csv_test2.json")[0])
    assert isinstance(record, Document)
    assert record.text == "rawWork:spotify:publisher:WCPWW008648058000"  # to_name "$uri"
    assert record.title == "TAN BAI"
    assert "writers" in left["data"]


def test_chat_messages() -> None:
    record, out, left = convert("label-studio-chat", load("test_export_json_min_chat_data.json")[0])
    assert isinstance(record, Conversation)
    assert [m.role for m in record.messages] == ["user", "assistant", "user", "assistant"]
    assert record.messages[0].content == "hi"
    assert len(out.attributes["annotations"]) == 4
    assert "scenario_prompt" in left["data"]


def test_detection_follows_the_data() -> None:
    text_task = {
        "data": {"text": "a sentence", "image": "https://x.org/a.jpg"},
        "annotations": [
            {
                "result": [
                    {
                        "type": "choices",
                        "to_name": "text",
                        "from_name": "s",
                        "value": {"choices": ["Positive"]},
                    }
                ]
            }
        ],
    }
    best, _ = detect_format([text_task], Path("x.json"))
    assert best is not None and best.name == "label-studio-text"
    assert get_format("label-studio-text").detect([text_task], Path("x.json")) == 1.0
    assert get_format("label-studio-media").detect([text_task], Path("x.json")) == 0.0
    audio_task = {"data": {"audio": "s3://bucket/a.wav"}, "annotations": []}
    assert get_format("label-studio-media").detect([audio_task], Path("x.json")) == 1.0
    chat_task = {"data": {"chat": [{"role": "user", "content": "hi"}]}, "annotations": []}
    assert get_format("label-studio-chat").detect([chat_task], Path("x.json")) >= 0.9
    assert get_format("label-studio-text").detect([{"text": "plain"}], Path("x.json")) == 0.0


def test_audio_segments_and_transcripts() -> None:
    task = {
        "data": {"audio": "https://x.org/a.wav"},
        "annotations": [
            {
                "completed_by": {"id": 3},
                "result": [
                    {
                        "type": "labels",
                        "to_name": "audio",
                        "from_name": "spk",
                        "value": {"start": 0.5, "end": 2.0, "labels": ["Speech"]},
                    },
                    {
                        "type": "textarea",
                        "to_name": "audio",
                        "from_name": "tr",
                        "value": {"start": 0.5, "end": 2.0, "text": ["hello"]},
                    },
                ],
            }
        ],
    }
    record, _, _ = convert("label-studio-media", task)
    assert isinstance(record, Media) and record.media_type == "audio"
    assert [(s.label, s.start, s.end, s.annotator) for s in record.segments] == [
        ("Speech", 0.5, 2.0, "human:3")
    ]
    assert [(t.text, t.start) for t in record.transcripts] == [("hello", 0.5)]


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "label-studio-media",
        {"data": {"text": "no media"}, "annotations": []},
        "data",
        "no image, audio or video",
    ),
    ("label-studio-media", {"annotations": []}, "data", "missing"),
    (
        "label-studio-media",
        {
            "data": {"image": "/a.png"},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "rectanglelabels",
                            "to_name": "image",
                            "value": {"x": 1, "y": "?", "width": 1, "height": 1},
                        }
                    ]
                }
            ],
        },
        "annotations[0].result[0].value.y",
        "number",
    ),
    (
        "label-studio-media",
        {"data": {"image": "/a.png"}, "annotations": [{"result": "oops"}]},
        "annotations[0].result",
        "expected a list",
    ),
    ("label-studio-text", {"data": {"text": "  "}, "annotations": []}, "data.text", "empty text"),
    (
        "label-studio-chat",
        {
            "data": {"chat": []},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "chatmessage",
                            "value": {"chatmessage": {"role": "user", "content": ""}},
                        }
                    ]
                }
            ],
        },
        "annotations[0].result[0].value.chatmessage.content",
        "empty text",
    ),
    (
        "label-studio-chat",
        {
            "data": {"chat": []},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "chatmessage",
                            "value": {"chatmessage": {"role": "robot", "content": "x"}},
                        }
                    ]
                }
            ],
        },
        "annotations[0].result[0].value.chatmessage.role",
        "unknown role",
    ),
    (
        "label-studio-chat",
        {"data": {"x": "y"}, "annotations": []},
        "annotations",
        "no chat messages",
    ),
]


@pytest.mark.parametrize(("name", "task", "field", "reason"), BAD)
def test_bad_tasks_name_the_field(name: str, task: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(RowError) as info:
        get_format(name).convert(task, RowContext(file=Path("x.json"), row_number=1))
    assert info.value.field == field
    assert reason in info.value.reason


def test_media_ignores_results_about_other_fields() -> None:
    task = {
        "data": {"image": "https://x.org/a.jpg", "text": "caption"},
        "annotations": [
            {
                "completed_by": 5,
                "result": [
                    {
                        "type": "choices",
                        "to_name": "text",
                        "from_name": "q",
                        "value": {"choices": ["Off-topic"]},
                    },
                    {
                        "type": "choices",
                        "to_name": "image",
                        "from_name": "c",
                        "value": {"choices": ["Cat"]},
                    },
                ],
            }
        ],
    }
    record, out, _ = convert("label-studio-media", task)
    assert isinstance(record, Media) and record.labels == ["Cat"]
    assert len(out.attributes["annotations"]) == 2  # both judgements are kept as attributes
