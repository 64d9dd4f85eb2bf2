"""The storage rows themselves, plus a ``kind`` field, in three containers: native
JSONL, Parquet, and an HF ``datasets`` ``save_to_disk`` folder. All three re-import
as the same records.

Native JSONL writes ``meta`` as a JSON object (not the JSON text it is in storage)
and ``created_at`` as ISO 8601 text, so each line validates straight into its record
model. Parquet and HF keep the storage schema's types (``meta`` stays JSON text).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import pyarrow as pa

from gristmill.io.export.base import ALL_KINDS, Container, FormsByKind, StorageExporter
from gristmill.records.kinds import Kind


def native_row(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    """Storage row → native JSONL object: ``kind`` first, ``meta`` as an object."""
    meta = row.get("meta")
    return {"kind": str(kind), **row, "meta": orjson.loads(meta) if meta else {}}


class NativeJSONL(StorageExporter):
    name = "jsonl"
    description = (
        "gristmill native JSONL: storage rows + kind, meta as an object; re-imports losslessly"
    )
    example = '{"kind": "document", "id": "d1", "source": "web", "created_at": "2024-01-01T00:00:00+00:00", "origin": "import:web", "meta": {}, "text": "The sky is blue.", ...}'
    forms: ClassVar[FormsByKind] = dict.fromkeys(ALL_KINDS, ())

    def batch(self, batch: pa.RecordBatch, kind: Kind) -> pa.RecordBatch | list[dict[str, Any]]:
        return [native_row(kind, row) for row in batch.to_pylist()]


class Parquet(StorageExporter):
    name = "parquet"
    description = "Parquet of the storage rows (+ kind)"
    example = "(columnar) kind, id, source, created_at, origin, meta (JSON text), content fields"
    forms: ClassVar[FormsByKind] = dict.fromkeys(ALL_KINDS, ())
    container = Container.PARQUET


class HFDataset(StorageExporter):
    name = "hf"
    description = "HF datasets save_to_disk folder of the storage rows (+ kind)"
    example = "(folder) datasets.load_from_disk(OUT) → kind + the storage rows"
    forms: ClassVar[FormsByKind] = dict.fromkeys(ALL_KINDS, ())
    container = Container.HF


EXPORTERS: list[StorageExporter] = [NativeJSONL(), Parquet(), HFDataset()]
