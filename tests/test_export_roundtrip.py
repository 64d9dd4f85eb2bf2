"""Exports read back through gristmill's own importer: the storage-row formats are
lossless, and the chat formats give back the conversations they could express."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_export_fixtures import (
    documents,
    lima_conversations,
    make_version,
    preference_records,
    tricky_conversations,
)

from gristmill.io.export import export_version
from gristmill.io.ingest import ImportOptions, import_path
from gristmill.records.kinds import Conversation, Kind, RecordBase
from gristmill.store import Version, Workspace


def _reimport(tmp_path: Path, out: Path, name: str, fmt: str | None = None) -> Version:
    report = import_path(Workspace(tmp_path / "ws"), out, name, ImportOptions(format=fmt))
    assert report.version is not None and report.quarantined == 0, report.files
    return report.version


@pytest.mark.parametrize(
    ("kind", "records"),
    [
        (Kind.CONVERSATION, tricky_conversations() + lima_conversations(5)),
        (Kind.PREFERENCE, preference_records()),
        (Kind.DOCUMENT, documents()),
    ],
)
@pytest.mark.parametrize(
    ("fmt", "out"), [("jsonl", "x.jsonl"), ("parquet", "x.parquet"), ("hf", "x")]
)
def test_storage_exports_reimport_as_the_same_records(
    kind: Kind, records: list[RecordBase], fmt: str, out: str, tmp_path: Path
) -> None:
    version = make_version(tmp_path, "orig", kind, records)
    export_version(version, fmt, tmp_path / out)
    back = _reimport(tmp_path, tmp_path / out, "back")
    assert back.kind is kind
    assert list(back.iter_records()) == list(version.iter_records())


def _content(records: list[RecordBase]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    out = []
    for record in records:
        assert isinstance(record, Conversation)
        # Alpaca and ShareGPT have no per-message loss weights
        messages = [m.model_dump(exclude_none=True, exclude={"weight"}) for m in record.messages]
        out.append((record.system, messages))
    return out


@pytest.mark.parametrize(("fmt", "import_as"), [("alpaca", "alpaca"), ("sharegpt", "sharegpt")])
def test_chat_exports_reimport_to_the_same_conversations(
    fmt: str, import_as: str, tmp_path: Path
) -> None:
    records = lima_conversations(10) + [
        c for c in tricky_conversations() if c.id in {"plain", "system", "alpaca-input"}
    ]
    version = make_version(tmp_path, "orig", Kind.CONVERSATION, records)
    report = export_version(version, fmt, tmp_path / f"{fmt}.jsonl")
    assert not report.skipped
    back = _reimport(tmp_path, tmp_path / f"{fmt}.jsonl", "back", import_as)
    assert _content(list(back.iter_records())) == _content(list(version.iter_records()))
