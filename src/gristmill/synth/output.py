"""Writing a run's output: a new version (records + run card in the manifest), and its
failures twice over: a ``synth_failures`` attribute on the version and a JSONL file in
the workspace's quarantine folder, each row with the raw model text and the reason."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from gristmill.records.arrow import to_row
from gristmill.records.kinds import Kind, RecordBase
from gristmill.store import Version, VersionWriter, Workspace
from gristmill.synth.runner import Failure

FAILURES_ATTRIBUTE = "synth_failures"
_FAILURE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("step", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
        ("candidate", pa.int64()),
        ("attempts", pa.int64()),
    ]
)


@dataclass
class RunResult:
    version: Version
    card: dict[str, Any]
    failures: list[Failure]
    failures_file: Path | None


def write_run(
    workspace: Workspace,
    name: str,
    kind: Kind,
    records: Sequence[RecordBase],
    *,
    operation: str,
    params: dict[str, Any],
    parent: str | None,
    card: dict[str, Any],
    failures: Sequence[Failure],
) -> RunResult:
    """Commit ``records`` as a new version of ``name``; the card goes to the manifest's
    ``stats.run_card``, failures to the quarantine file and the attribute."""
    failures_file: Path | None = None
    if failures:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        failures_file = (
            workspace.quarantine_dir(name) / f"{operation}-{stamp}-{uuid.uuid4().hex[:6]}.jsonl"
        )
        with failures_file.open("wb") as fh:
            for f in failures:
                fh.write(orjson.dumps(f.to_dict()) + b"\n")
        card = {**card, "failures_file": str(failures_file)}
    with VersionWriter(
        workspace, name, kind, operation=operation, params=params, parent=parent
    ) as writer:
        rows = [to_row(r) for r in records]
        for i in range(0, len(rows), 1000):
            writer.write_rows(rows[i : i + 1000])
        writer.stats = {"run_card": card}
    version = writer.version
    assert version is not None
    if failures:
        table = pa.Table.from_pylist([f.to_dict() for f in failures], schema=_FAILURE_SCHEMA)
        version.write_attribute(
            FAILURES_ATTRIBUTE, table, operation=operation, params={"file": str(failures_file)}
        )
    return RunResult(version, card, list(failures), failures_file)


def read_failures(version: Version) -> list[dict[str, Any]]:
    """A run's failures (empty when it had none)."""
    if FAILURES_ATTRIBUTE not in version.attribute_names():
        return []
    rows: list[dict[str, Any]] = version.read_attribute(FAILURES_ATTRIBUTE).to_pylist()
    return rows
