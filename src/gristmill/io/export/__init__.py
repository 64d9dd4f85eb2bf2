"""Export a dataset version to the files trainers and tools read.

``export_version(version, fmt, out, options)`` streams the version batch by batch
(flat memory), optionally assigns each record to a split (``io.splits``), converts
it with the format's exporter, and writes one file (or one file per split in the
folder ``out``). Records a format cannot express are counted per reason in the
returned :class:`ExportReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from gristmill.io.export import llamafactory, openai_chat, storage, trl
from gristmill.io.export.base import (
    Exporter,
    ExportOptions,
    ExportReport,
    Form,
    RecordExporter,
    Skipped,
    StorageExporter,
)
from gristmill.io.export.sinks import DEFAULT_SPLIT, Sink
from gristmill.io.splits import Splitter
from gristmill.records.arrow import from_row
from gristmill.records.kinds import Kind
from gristmill.store.version import Version

__all__ = [
    "ExportOptions",
    "ExportReport",
    "Exporter",
    "Form",
    "all_exporters",
    "export_version",
    "exporters_for",
    "get_exporter",
]

Progress = Callable[[int], None]


def all_exporters() -> list[Exporter]:
    return [*trl.EXPORTERS, *openai_chat.EXPORTERS, *llamafactory.EXPORTERS, *storage.EXPORTERS]


def get_exporter(name: str) -> Exporter:
    for exporter in all_exporters():
        if exporter.name == name:
            return exporter
    known = ", ".join(e.name for e in all_exporters())
    raise ValueError(f"unknown export format {name!r}; formats: {known}")


def exporters_for(kind: Kind | str) -> list[Exporter]:
    """The formats that take datasets of ``kind``."""
    return [e for e in all_exporters() if Kind(kind) in e.forms]


def check_fit(exporter: Exporter, kind: Kind, form: Form | None) -> Form | None:
    """The form the export will use; ValueError naming the formats that fit if none."""
    if kind not in exporter.forms:
        fitting = ", ".join(e.name for e in exporters_for(kind))
        takes = ", ".join(str(k) for k in exporter.kinds)
        raise ValueError(
            f"format {exporter.name} takes {takes} datasets, not {kind}; "
            f"formats that fit a {kind} dataset: {fitting}"
        )
    return exporter.resolve_form(kind, form)


def export_version(
    version: Version,
    fmt: str | Exporter,
    out: Path | str,
    options: ExportOptions | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``version`` in format ``fmt`` to ``out`` (a file, or a folder with one file
    per split when ``options.split`` is set); ``progress`` gets each batch's record count."""
    options = options or ExportOptions()
    exporter = get_exporter(fmt) if isinstance(fmt, str) else fmt
    kind = version.kind
    form = check_fit(exporter, kind, options.form)
    splitter = Splitter(kind, options.split) if options.split else None
    split_names = splitter.names if splitter else None
    report = ExportReport(
        source=version.ref, kind=kind, format=exporter.name, form=form, out=Path(out)
    )
    report.rows_written = dict.fromkeys(split_names or [DEFAULT_SPLIT], 0)
    schema = exporter.output_schema(kind) if isinstance(exporter, StorageExporter) else None
    sink = Sink(exporter.container, Path(out), split_names, options.overwrite, schema)
    try:
        for read in version.iter_batches():
            batch = _drop_excluded(read, options.exclude, report) if options.exclude else read
            names = splitter.assign(batch) if splitter else [DEFAULT_SPLIT] * batch.num_rows
            if isinstance(exporter, StorageExporter):
                _write_storage(exporter, kind, batch, names, sink, report)
            elif isinstance(exporter, RecordExporter):
                _write_records(exporter, kind, form, options, batch, names, sink, report)
            else:
                raise TypeError(f"{exporter.name} is neither a record nor a storage exporter")
            report.records_read += read.num_rows
            if progress is not None:
                progress(read.num_rows)
        report.records_per_split = (
            dict(splitter.sizes) if splitter else {DEFAULT_SPLIT: report.records_read}
        )
        report.files = sink.commit()
    except BaseException:
        sink.abort()
        raise
    return report


def _drop_excluded(
    batch: pa.RecordBatch, exclude: Mapping[str, str], report: ExportReport
) -> pa.RecordBatch:
    """Leave out the records ``exclude`` names, counting each under its reason."""
    ids = batch.column("id").to_pylist()
    keep = [i not in exclude for i in ids]
    if all(keep):
        return batch
    for record_id, kept in zip(ids, keep, strict=True):
        if not kept:
            report.skipped[exclude[record_id]] += 1
    return batch.filter(pa.array(keep))


def _write_storage(
    exporter: StorageExporter,
    kind: Kind,
    batch: pa.RecordBatch,
    names: list[str],
    sink: Sink,
    report: ExportReport,
) -> None:
    splits = list(dict.fromkeys(names))
    for split in splits:
        part = batch if len(splits) == 1 else batch.filter(pa.array([n == split for n in names]))
        out = exporter.batch(part, kind)
        if isinstance(out, pa.RecordBatch):
            sink.write_batch(split, out)
        else:
            sink.write_rows(split, out)
        report.rows_written[split] += part.num_rows


def _write_records(
    exporter: RecordExporter,
    kind: Kind,
    form: Form | None,
    options: ExportOptions,
    batch: pa.RecordBatch,
    names: list[str],
    sink: Sink,
    report: ExportReport,
) -> None:
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    for row, split in zip(batch.to_pylist(), names, strict=True):
        try:
            record = from_row(kind, row)
        except ValidationError:
            report.skipped[f"does not validate as a {kind} record"] += 1
            continue
        for output in exporter.convert(record, form, options):
            if isinstance(output, Skipped):
                report.skipped[output.reason] += output.count
            else:
                rows_by_split.setdefault(split, []).append(output)
    for split, rows in rows_by_split.items():
        sink.write_rows(split, rows)
        report.rows_written[split] += len(rows)
