"""Vectorised import of clean JSONL blocks for the most common formats.

Pyarrow's JSON reader parses a block of lines in C++; if the block has exactly the
simple shape a format's row converter would accept without a single complaint, the
storage table is built column-wise here. Anything else (a bad row, an unusual field,
a type the reader inferred differently) returns None and the block goes through
the row-by-row path, which owns every quarantine decision. The two paths must give
identical rows; tests/test_fastpath.py checks that on real and broken data.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from gristmill.records.arrow import content_columns, schema_for
from gristmill.records.ids import content_id
from gristmill.records.kinds import Kind

TIMESTAMP_FIELDS = frozenset({"created_at", "created", "timestamp", "tstamp", "added"})
PLAIN_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
CANONICAL_ROLES = ("system", "user", "assistant", "tool")

Converter = Callable[[pa.Table], dict[str, pa.Array] | None]


PARSE_BLOCK_BYTES = 1 << 20  # pyarrow parses these in parallel threads


def parse_block(block: bytes, lines: int) -> pa.Table | None:
    """Parse a block of ``lines`` JSONL lines; None if pyarrow refuses it or the row
    count differs (blank lines), so that line numbers stay exact."""
    try:
        table = pajson.read_json(
            io.BytesIO(block), read_options=pajson.ReadOptions(block_size=PARSE_BLOCK_BYTES)
        )
        table.validate(full=True)  # catches invalid UTF-8, which the reader lets through
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    return table if table.num_rows == lines else None


def _blank(strings: pa.Array) -> pa.Array:
    return pc.or_(pc.equal(pc.utf8_length(strings), 0), pc.utf8_is_space(strings))


def _leftover_meta(table: pa.Table, used: set[str]) -> list[str | None] | None:
    """JSON text of the unused columns per row (sorted keys, like the row path), or
    None when a column is not plain enough to reproduce the row path exactly."""
    names = sorted(n for n in table.column_names if n not in used)
    if not names:
        return [None] * table.num_rows
    columns = []
    for name in names:
        column = table.column(name)
        if column.type not in PLAIN_TYPES or column.null_count:
            return None
        columns.append(column.to_pylist())
    return [
        orjson.dumps(dict(zip(names, values, strict=True))).decode()
        for values in zip(*columns, strict=True)
    ]


def _openai(table: pa.Table) -> dict[str, pa.Array] | None:
    """``{"messages": [{"role", "content"}], ...plain fields}`` → conversation columns."""
    if "messages" not in table.column_names or "tools" in table.column_names:
        return None
    messages = table.column("messages").combine_chunks()
    mtype = messages.type
    if not (pa.types.is_list(mtype) and pa.types.is_struct(mtype.value_type)):
        return None
    struct_type = mtype.value_type
    if sorted(f.name for f in struct_type) != ["content", "role"]:
        return None
    if any(struct_type.field(n).type != pa.string() for n in ("role", "content")):
        return None
    if messages.null_count or pc.any(pc.equal(pc.list_value_length(messages), 0)).as_py():
        return None
    items = messages.flatten()
    if items.null_count:
        return None
    roles = items.field("role")
    contents = items.field("content")
    if roles.null_count or contents.null_count:
        return None
    if not pc.all(pc.is_in(roles, value_set=pa.array(CANONICAL_ROLES))).as_py():
        return None
    first = np.zeros(len(items), dtype=bool)
    offsets = messages.offsets.to_numpy()
    first[offsets[:-1] - offsets[0]] = True  # lists are non-empty (checked above)
    is_first = pa.array(first)
    is_system = pc.equal(roles, "system")
    lead_system = pc.and_(is_first, is_system)
    # the row path rejects blank turns, except tool results and a leading system prompt
    exempt = pc.or_(pc.equal(roles, "tool"), lead_system)
    if pc.any(pc.and_(_blank(contents), pc.invert(exempt))).as_py():
        return None
    # a row whose only message is a system prompt is rejected by the row path
    first_roles = pc.list_element(messages, 0).field("role")
    lengths = pc.list_value_length(messages)
    if pc.any(pc.and_(pc.equal(first_roles, "system"), pc.equal(lengths, 1))).as_py():
        return None
    lifted = pc.equal(first_roles, "system")
    first_content = pc.list_element(messages, 0).field("content")
    system = pc.if_else(
        pc.and_(lifted, pc.invert(_blank(first_content))),
        first_content,
        pa.scalar(None, pa.string()),
    )
    keep = pc.invert(lead_system)
    kept_roles = roles.filter(keep)
    kept_contents = contents.filter(keep)
    new_lengths = pc.subtract(lengths, pc.cast(lifted, pa.int32()))
    new_offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(new_lengths).cast(pa.int32())]
    )
    message_type = schema_for(Kind.CONVERSATION).field("messages").type
    n = len(kept_roles)
    fields = []
    for field in message_type.value_type:
        if field.name == "role":
            fields.append(kept_roles)
        elif field.name == "content":
            fields.append(kept_contents)
        else:
            fields.append(pa.nulls(n, field.type))
    struct = pa.StructArray.from_arrays(fields, fields=list(message_type.value_type))
    new_messages = pa.ListArray.from_arrays(new_offsets, struct, type=message_type)
    return {"system": system, "messages": new_messages}


def _document(table: pa.Table) -> dict[str, pa.Array] | None:
    """``{"text", "url"?, "title"?, "language"?, ...plain fields}`` → document columns."""
    if "text" not in table.column_names or "meta" in table.column_names:
        return None
    text = table.column("text").combine_chunks()
    if text.type != pa.string() or text.null_count or pc.any(_blank(text)).as_py():
        return None
    out: dict[str, pa.Array] = {"text": text}
    for key in ("url", "title", "language"):
        if key in table.column_names:
            column = table.column(key).combine_chunks()
            if column.type not in (pa.string(), pa.null()):
                return None
            column = column.cast(pa.string())
            out[key] = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    return out


CONVERTERS: dict[str, tuple[Kind, Converter]] = {
    "openai": (Kind.CONVERSATION, _openai),
    "document": (Kind.DOCUMENT, _document),
}


def convert_block(
    format_name: str,
    table: pa.Table,
    *,
    source: str,
    origin: str,
    first_line: int,
    now: datetime,
) -> pa.Table | None:
    """A storage table for a parsed block, or None to use the row path."""
    entry = CONVERTERS.get(format_name)
    if entry is None or TIMESTAMP_FIELDS & set(table.column_names):
        return None
    kind, converter = entry
    columns = converter(table)
    if columns is None:
        return None
    meta = _leftover_meta(table, {"id", *columns})
    if meta is None:
        return None
    n = table.num_rows
    schema = schema_for(kind)
    data: dict[str, pa.Array] = {}
    for field in schema:
        if field.name in columns:
            data[field.name] = columns[field.name]
        else:
            data[field.name] = pa.nulls(n, field.type)
    data["meta"] = pa.array(meta, pa.string())
    data["source"] = pa.array([source] * n, pa.string())
    data["source_row"] = pa.array(range(first_line, first_line + n), pa.int64())
    data["origin"] = pa.array([origin] * n, pa.string())
    data["created_at"] = pa.array([now] * n, schema.field("created_at").type)
    ids = _ids(table, kind, data)
    if ids is None:
        return None
    data["id"] = ids
    return pa.table(data, schema=schema)


def _ids(table: pa.Table, kind: Kind, data: dict[str, pa.Array]) -> pa.Array | None:
    """Source ids as text; content ids (the same function as the row path) otherwise."""
    if "id" in table.column_names:
        ids = table.column("id").combine_chunks()
        if ids.type not in (pa.string(), pa.int64()) or ids.null_count:
            return None
        ids = ids.cast(pa.string())
        if pc.any(pc.equal(ids, "")).as_py():
            return None
        return ids
    content = pa.table({k: v for k, v in data.items() if k in content_columns(kind)})
    return pa.array([content_id(kind, row) for row in content.to_pylist()], pa.string())


def _content_names(kind: Kind) -> set[str]:
    from gristmill.records.arrow import content_columns

    return set(content_columns(kind))
