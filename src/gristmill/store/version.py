"""One immutable dataset version: its rows (Parquet shards) and attributes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from gristmill.records.arrow import from_row, schema_for
from gristmill.records.kinds import Kind, RecordBase
from gristmill.store.errors import StoreError
from gristmill.store.manifest import AttributeInfo, Manifest

if TYPE_CHECKING:
    from gristmill.store.workspace import Workspace

ATTR_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class Version:
    def __init__(self, workspace: Workspace, path: Path) -> None:
        self.workspace = workspace
        self.path = path

    def __repr__(self) -> str:
        return f"Version({self.ref})"

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.read(self.path)

    @property
    def ref(self) -> str:
        return self.manifest.ref

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def number(self) -> int:
        return self.manifest.version

    @property
    def kind(self) -> Kind:
        return Kind(self.manifest.kind)

    @property
    def row_count(self) -> int:
        return self.manifest.row_count

    @property
    def schema(self) -> pa.Schema:
        return schema_for(self.kind)

    @property
    def shard_paths(self) -> list[Path]:
        return [self.path / s.path for s in self.manifest.shards]

    # -- reading rows -----------------------------------------------------------------

    def dataset(self) -> pads.Dataset:
        return pads.dataset(
            [str(p) for p in self.shard_paths], schema=self.schema, format="parquet"
        )

    def iter_batches(
        self, columns: list[str] | None = None, batch_size: int = 8192
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows in order, batch by batch (flat memory)."""
        for shard in self.shard_paths:
            reader = pq.ParquetFile(shard)
            yield from reader.iter_batches(batch_size=batch_size, columns=columns)

    def iter_rows(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        for batch in self.iter_batches(columns=columns):
            yield from batch.to_pylist()

    def iter_records(self) -> Iterator[RecordBase]:
        """Validated typed records (slower than rows; for APIs and checks)."""
        for row in self.iter_rows():
            yield from_row(self.kind, row)

    def table(self, columns: list[str] | None = None) -> pa.Table:
        if not self.shard_paths:
            return self.schema.empty_table()
        return self.dataset().to_table(columns=columns)

    # -- attributes -------------------------------------------------------------------

    @property
    def attributes_dir(self) -> Path:
        return self.path / "attributes"

    def attribute_names(self) -> list[str]:
        if not self.attributes_dir.is_dir():
            return []
        return sorted(p.stem for p in self.attributes_dir.glob("*.parquet"))

    def attribute_info(self, name: str) -> AttributeInfo:
        path = self.attributes_dir / f"{name}.json"
        if not path.is_file():
            known = ", ".join(self.attribute_names()) or "none"
            raise StoreError(f"{self.ref} has no attribute {name!r} (attributes: {known})")
        return AttributeInfo.model_validate_json(path.read_text())

    def attribute_path(self, name: str) -> Path:
        self.attribute_info(name)
        return self.attributes_dir / f"{name}.parquet"

    def read_attribute(self, name: str) -> pa.Table:
        return pq.read_table(self.attribute_path(name))

    def write_attribute(
        self,
        name: str,
        table: pa.Table,
        operation: str,
        params: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> AttributeInfo:
        """Attach per-record columns keyed by ``id``; the version's rows stay untouched."""
        if not name or set(name) - ATTR_NAME_CHARS:
            raise StoreError(f"invalid attribute name {name!r}")
        if "id" not in table.column_names:
            raise StoreError(f"attribute {name!r} needs an 'id' column keying it to records")
        target = self.attributes_dir / f"{name}.parquet"
        if target.exists() and not overwrite:
            raise StoreError(f"{self.ref} already has attribute {name!r} (pass overwrite)")
        self.attributes_dir.mkdir(exist_ok=True)
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(target)
        info = AttributeInfo(
            name=name,
            columns=[c for c in table.column_names if c != "id"],
            rows=table.num_rows,
            operation=operation,
            params=params or {},
        )
        (self.attributes_dir / f"{name}.json").write_text(info.model_dump_json(indent=2))
        return info

    def copy_attributes_from(
        self, source: Version, keep_ids: pa.Array | None = None, overwrite: bool = False
    ) -> None:
        """Every attribute of ``source`` onto this version, only the rows of ``keep_ids``
        when given, with the parameters that made it (``copied_from`` added): scores and
        labels travel with a sample or an annotated copy instead of being recomputed."""
        for name in source.attribute_names():
            info = source.attribute_info(name)
            table = source.read_attribute(name)
            if keep_ids is not None:
                table = table.filter(pc.is_in(table.column("id"), value_set=keep_ids))
            self.write_attribute(
                name,
                table,
                operation=info.operation,
                params={**info.params, "copied_from": source.ref},
                overwrite=overwrite,
            )

    # -- reports ----------------------------------------------------------------------

    @property
    def report_json(self) -> Path:
        return self.path / "report.json"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"
