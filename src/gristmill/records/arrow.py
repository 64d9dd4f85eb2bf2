"""Arrow schemas derived from the record models, and conversion between rows and models.

A *row* is the plain-dict form stored in Parquet: the model's fields, with ``meta``
as JSON text. Readers build rows directly (fast path) and the models validate them
where a typed view is wanted (quality checks, SDK, tests).
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Literal, Union

import orjson
import pyarrow as pa
from pydantic import BaseModel

from gristmill.records.kinds import RECORD_MODELS, Kind, RecordBase

JSON_TEXT_FIELDS = frozenset({"meta"})
COMMON_FIELDS = tuple(RecordBase.model_fields)


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """Map a field annotation to (arrow type, nullable)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner, _ = _arrow_type(args[0])
        return inner, True
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner, _ = _arrow_type(item)
        return pa.list_(inner), False
    if origin is dict:
        return pa.string(), False  # JSON text
    if origin is Literal:
        return pa.string(), False
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return pa.struct(_fields(annotation)), False
        if issubclass(annotation, Enum) or annotation is str:
            return pa.string(), False
        if annotation is bool:
            return pa.bool_(), False
        if annotation is int:
            return pa.int64(), False
        if annotation is float:
            return pa.float64(), False
        if annotation is datetime:
            return pa.timestamp("us", tz="UTC"), False
    raise TypeError(f"no Arrow type for annotation {annotation!r}")


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    out = []
    for name, info in model.model_fields.items():
        arrow_type, _ = _arrow_type(info.annotation)
        out.append(pa.field(name, arrow_type))  # all nullable: validation lives in the models
    return out


@cache
def schema_for(kind: Kind | str) -> pa.Schema:
    """The Parquet schema of a record kind."""
    model = RECORD_MODELS[Kind(kind)]
    return pa.schema(_fields(model), metadata={b"gristmill.kind": str(Kind(kind)).encode()})


def dumps_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def to_row(record: RecordBase) -> dict[str, Any]:
    """Model → storage row."""
    row = record.model_dump(mode="python")
    row["meta"] = dumps_json(row["meta"]) if row["meta"] else None
    if row.get("task_category") is not None:
        row["task_category"] = str(row["task_category"])
    return row


def _drop_nones(value: Any) -> Any:
    """Arrow fills absent struct fields with None; drop those so models see defaults."""
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


def from_row(kind: Kind | str, row: dict[str, Any]) -> RecordBase:
    """Storage row → validated model (raises pydantic.ValidationError)."""
    data = _drop_nones(row)
    meta = data.get("meta")
    data["meta"] = orjson.loads(meta) if meta else {}
    return RECORD_MODELS[Kind(kind)].model_validate(data)


def rows_to_table(kind: Kind | str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows → Arrow table with the kind's schema (missing fields become null)."""
    return pa.Table.from_pylist(rows, schema=schema_for(kind))


def content_columns(kind: Kind | str) -> list[str]:
    """Columns that hold the record's content (not identity or lineage)."""
    return [f.name for f in schema_for(kind) if f.name not in COMMON_FIELDS]
