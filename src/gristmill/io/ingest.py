"""Import files into a new dataset version, losslessly.

For every input file: pick the container reader, detect the row format from the
first rows (or take ``--format``), convert row by row, and stream the records into
Parquet shards. A row that cannot become a record goes to the quarantine file with
its file, line and reason; the balance ``read = kept + quarantined`` always holds
and is checked before the version is committed.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import duckdb
import orjson
import pyarrow as pa

from gristmill.io import containers, fastpath
from gristmill.io.containers import OpenedFile, RawRow
from gristmill.io.formats import (
    Converted,
    Format,
    RowContext,
    RowError,
    detect_format,
    get_format,
)
from gristmill.records.arrow import rows_to_table, schema_for
from gristmill.records.ids import content_id
from gristmill.records.kinds import Kind
from gristmill.store import SourceFile, Version, VersionWriter, Workspace

TIMESTAMP_FIELDS = ("created_at", "created", "timestamp", "tstamp")
ProgressFn = Callable[[int], None]


@dataclass
class ImportOptions:
    format: str | None = None  # force one format for every file
    field_map: dict[str, str] = field(default_factory=dict)  # rename fields first
    header: bool | None = None  # CSV/TSV: None guesses
    text_lines: bool = False  # text files: one document per line, not per file
    include: list[str] = field(default_factory=list)  # folders: file-name globs to take
    batch_rows: int = 4096
    sample_rows: int = 50
    fast: bool = True  # vectorised path for clean JSONL blocks (io/fastpath.py)
    block_bytes: int = containers.JSONL_BLOCK_BYTES


@dataclass
class FilePlan:
    path: Path
    name: str  # path relative to the import root, as recorded in `source`
    container: str | None
    format: Format | None
    scores: list[tuple[str, float]]
    size: int
    problem: str | None = None  # why the whole file is refused


@dataclass
class FileReport:
    name: str
    container: str | None
    format: str | None
    rows_read: int = 0
    kept: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_problem: str | None = None  # "file:line: reason" of the first bad row
    note: str | None = None
    sha256: str | None = None
    bytes: int = 0
    fast_rows: int = 0  # rows that went through the vectorised path


@dataclass
class ImportReport:
    name: str
    kind: Kind | None
    files: list[FileReport]
    version: Version | None
    quarantine_path: Path | None
    duplicate_ids: int = 0  # ids that occur more than once
    duplicate_id_rows: int = 0  # rows carrying such ids
    duplicate_examples: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def reasons(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.reasons)
        return total

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.kept + self.quarantined


class Quarantine:
    """Rows an import refused, one JSON object per line, opened on first use."""

    def __init__(self, folder: Path, stamp: str) -> None:
        self.path = folder / f"{stamp}.jsonl"
        self._file: IO[bytes] | None = None
        self.count = 0

    def add(
        self,
        file: str,
        number: int,
        reason: str,
        *,
        raw: bytes | None = None,
        row: dict[str, Any] | None = None,
        format: str | None = None,
        field: str | None = None,
    ) -> None:
        entry: dict[str, Any] = {"file": file, "line": number, "reason": reason}
        if field is not None:
            entry["field"] = field
        if format is not None:
            entry["format"] = format
        if row is not None:
            entry["row"] = row
        elif raw is not None:
            try:
                entry["raw"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                entry["raw_base64"] = base64.b64encode(raw).decode()
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(orjson.dumps(entry, default=str) + b"\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# -- planning ------------------------------------------------------------------------------


def collect_files(path: Path, include: list[str] | None = None) -> list[Path]:
    """The data files under ``path`` (itself if a file), sorted; hidden files skipped.
    In a folder, ``include`` globs (on the file name) keep only matching files."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file() or containers.is_hf_disk(path):
        return [path]
    out: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_file() and include and not any(fnmatch(child.name, g) for g in include):
            continue
        out.extend(collect_files(child, include))
    return out


def open_rows(
    path: Path, container: str, options: ImportOptions, progress: ProgressFn | None = None
) -> tuple[Iterator[RawRow], Callable[[], str]]:
    """Rows of one file and a function that returns the file's sha256 when done."""
    if container == "parquet":
        return containers.read_parquet(path), lambda: _sha256_of(path)
    if container == "hf-disk":
        return containers.read_hf_disk(path), lambda: _sha256_of_folder(path)
    opened = OpenedFile(path, progress)
    rows: Iterator[RawRow]
    if container == "jsonl":
        rows = containers.read_jsonl(opened)
    elif container == "json":
        rows = containers.read_json(opened, path.stat().st_size)
    elif container in ("csv", "tsv"):
        rows = containers.read_csv(opened, "," if container == "csv" else "\t", options.header)
    elif container == "text":
        rows = containers.read_text(opened, options.text_lines)
    elif container == "warc":
        from gristmill.io.warc import read_warc  # FastWARC loads only for WARC files

        rows = read_warc(opened)
    else:
        raise ValueError(f"unknown container {container!r}")
    return rows, opened.finish


def _sha256_of(path: Path) -> str:
    opened = OpenedFile(path)
    return opened.finish()


def _sha256_of_folder(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode())
        digest.update(bytes.fromhex(_sha256_of(f)))
    return digest.hexdigest()


def apply_map(row: dict[str, Any], field_map: dict[str, str]) -> dict[str, Any]:
    if not field_map:
        return row
    return {field_map.get(k, k): v for k, v in row.items()}


def plan_file(path: Path, root: Path, options: ImportOptions) -> FilePlan:
    name = path.relative_to(root.parent).as_posix() if path != root else path.name
    size = (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )
    container = containers.container_of(path)
    if container is None:
        suffix = path.suffix or "(no suffix)"
        return FilePlan(path, name, None, None, [], size, f"unsupported file type {suffix}")
    if options.format is not None:
        return FilePlan(path, name, container, get_format(options.format), [], size)
    rows, _ = open_rows(path, container, options)
    sample: list[dict[str, Any]] = []
    for raw in rows:
        if raw.value is not None:
            sample.append(apply_map(raw.value, options.field_map))
            if len(sample) >= options.sample_rows:
                break
    if not sample:
        return FilePlan(path, name, container, None, [], size)
    fmt, scores = detect_format(sample, path)
    problem = None
    if fmt is None:
        keys = sorted({k for r in sample for k in r})[:12]
        problem = (
            f"no known format fits (fields: {', '.join(keys)}); "
            "name one with --format or rename fields with --map"
        )
    return FilePlan(path, name, container, fmt, scores, size, problem)


def choose_kind(plans: list[FilePlan]) -> Kind | None:
    """The kind most of the data maps to, by bytes (a folder's small SOURCE.md or README
    does not outvote the data file beside it); the first file wins a tie."""
    usable = [p for p in plans if p.format is not None and p.problem is None]
    if not usable:
        return None
    weight: Counter[Kind] = Counter()
    for p in usable:
        assert p.format is not None
        weight[p.format.kind] += max(p.size, 1)
    best = max(weight.values())
    return next(p.format.kind for p in usable if p.format and weight[p.format.kind] == best)


# -- converting ----------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 text or epoch seconds/milliseconds → aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class RowBuilder:
    """Turns parsed rows of one file into storage rows of the dataset's kind."""

    def __init__(self, fmt: Format, kind: Kind, plan: FilePlan, now: datetime) -> None:
        self.fmt = fmt
        self.kind = kind
        self.columns = frozenset(schema_for(kind).names)
        self.source = plan.name
        self.origin = f"import:{plan.path.name}"
        self.now = now
        self.ctx = RowContext(file=plan.path, row_number=0)

    def build(
        self, value: dict[str, Any], number: int
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        row = dict(value)
        raw_id = row.pop("id", None)
        self.ctx.row_number = number
        converted = self.fmt.convert(row, self.ctx)
        attributes: dict[str, list[dict[str, Any]]] = {}
        if isinstance(converted, Converted):
            attributes = converted.attributes
            record = converted.row
        else:
            record = converted
        unknown = record.keys() - self.columns
        if unknown:
            raise RuntimeError(
                f"format {self.fmt.name} produced fields {sorted(unknown)} that "
                f"{self.kind} records do not have (a bug in the format)"
            )
        if record.get("created_at") is None:
            for key in TIMESTAMP_FIELDS:
                if key in row:
                    stamp = parse_timestamp(row[key])
                    if stamp is not None:
                        record["created_at"] = stamp
                        del row[key]
                        break
            else:
                record["created_at"] = self.now
        elif not isinstance(record["created_at"], datetime):
            record["created_at"] = parse_timestamp(record["created_at"]) or self.now
        meta = record.get("meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        for key, item in row.items():
            meta.setdefault(key, item)
        record["meta"] = (
            orjson.dumps(meta, default=str, option=orjson.OPT_SORT_KEYS).decode() if meta else None
        )
        record_id = record.get("id", raw_id)
        if record_id is None or record_id == "":
            record_id = content_id(self.kind, record)
        elif not isinstance(record_id, str):
            record_id = str(record_id)
        record["id"] = record_id
        if record.get("source") is None:  # native rows keep their first source
            record["source"] = self.source
            record["source_row"] = number
        if record.get("origin") is None:
            record["origin"] = self.origin
        return record, attributes


# -- the import ----------------------------------------------------------------------------


def import_path(
    workspace: Workspace,
    path: Path | str,
    name: str,
    options: ImportOptions | None = None,
    progress: ProgressFn | None = None,
    on_plan: Callable[[list[FilePlan], Kind | None], None] | None = None,
) -> ImportReport:
    """Import a file or folder as a new version of dataset ``name``."""
    options = options or ImportOptions()
    root = Path(path)
    files = collect_files(root, options.include)
    if not files:
        raise FileNotFoundError(f"{root}: no files to import (include: {options.include})")
    plans = [plan_file(f, root, options) for f in files]
    kind = get_format(options.format).kind if options.format else choose_kind(plans)
    if on_plan is not None:
        on_plan(plans, kind)
    now = datetime.now(UTC)
    quarantine = Quarantine(workspace.quarantine_dir(name), now.strftime("%Y%m%dT%H%M%S%fZ"))
    reports: list[FileReport] = []
    attributes: dict[str, list[dict[str, Any]]] = {}
    if kind is None:
        for plan in plans:
            reports.append(_refuse_file(plan, quarantine, plan.problem or "empty file", options))
        quarantine.close()
        return ImportReport(
            name, None, reports, None, quarantine.path if quarantine.count else None
        )

    params = {
        "path": str(root),
        "format": options.format,
        "map": options.field_map,
        "header": options.header,
        "text_lines": options.text_lines,
        "include": options.include,
    }
    writer = VersionWriter(
        workspace, name, kind, operation="import", params=params, background=True
    )
    try:
        for plan in plans:
            report = _import_file(
                plan, kind, writer, quarantine, attributes, options, progress, now
            )
            reports.append(report)
        quarantine.close()
        result = ImportReport(
            name, kind, reports, None, quarantine.path if quarantine.count else None
        )
        if not result.balanced:  # pragma: no cover - a bug, never a user error
            raise RuntimeError(f"import lost rows: {result.rows_read} read != kept + quarantined")
        if result.kept == 0:
            writer.abort()
            return result
        writer.sources = [
            SourceFile(
                path=str(p.path.resolve()),
                sha256=r.sha256 or "",
                bytes=r.bytes,
                format=r.format or "",
                rows_read=r.rows_read,
                kept=r.kept,
                quarantined=r.quarantined,
            )
            for p, r in zip(plans, reports, strict=True)
        ]
        shard_paths = writer.finish_data()
        _check_duplicate_ids(shard_paths, result)
        writer.stats = {
            "rows_read": result.rows_read,
            "kept": result.kept,
            "quarantined": result.quarantined,
            "reasons": dict(result.reasons),
            "duplicate_ids": result.duplicate_ids,
            "duplicate_id_rows": result.duplicate_id_rows,
            "quarantine": str(result.quarantine_path) if result.quarantine_path else None,
        }
        version = writer.commit()
    except BaseException:
        writer.abort()
        quarantine.close()
        raise
    for attr, rows in attributes.items():
        version.write_attribute(attr, pa.Table.from_pylist(rows), operation="import", params=params)
        result.attributes.append(attr)
    result.version = version
    return result


def _refuse_file(
    plan: FilePlan, quarantine: Quarantine, reason: str, options: ImportOptions
) -> FileReport:
    """Every row of a file that cannot be imported goes to the quarantine."""
    report = FileReport(plan.name, plan.container, plan.format.name if plan.format else None)
    if plan.container is None:
        report.rows_read = report.quarantined = 1
        report.reasons[reason] += 1
        report.first_problem = f"{plan.name}: {reason}"
        quarantine.add(plan.name, 0, reason)
        return report
    rows, finish = open_rows(plan.path, plan.container, options)
    report.bytes = plan.size
    for raw in rows:
        report.rows_read += 1
        report.quarantined += 1
        why = raw.error or reason
        report.reasons[_reason_key(why)] += 1
        if report.first_problem is None:
            report.first_problem = f"{plan.name}:{raw.number}: {why}"
        quarantine.add(plan.name, raw.number, why, raw=raw.raw, row=raw.value)
    report.sha256 = finish()
    if report.rows_read == 0:
        report.note = "empty file: no rows"
    return report


def _reason_key(reason: str) -> str:
    """Group reasons for the summary: drop the variable detail after the first colon
    of JSON parser messages."""
    for prefix in ("broken JSON", "invalid UTF-8", "expected a JSON object"):
        if reason.startswith(prefix):
            return prefix
    return reason


def _import_file(
    plan: FilePlan,
    kind: Kind,
    writer: VersionWriter,
    quarantine: Quarantine,
    attributes: dict[str, list[dict[str, Any]]],
    options: ImportOptions,
    progress: ProgressFn | None,
    now: datetime,
) -> FileReport:
    if plan.problem is not None or plan.format is None or plan.container is None:
        report = _refuse_file(
            plan, quarantine, plan.problem or "no rows to detect a format", options
        )
        if progress:
            progress(plan.size)
        return report
    if plan.format.kind != kind:
        reason = (
            f"format {plan.format.name} makes {plan.format.kind} records but this dataset "
            f"holds {kind}; import this file under another name"
        )
        report = _refuse_file(plan, quarantine, reason, options)
        if progress:
            progress(plan.size)
        return report

    report = FileReport(plan.name, plan.container, plan.format.name)
    builder = RowBuilder(plan.format, kind, plan, now)
    batch: list[dict[str, Any]] = []
    numbers: list[int] = []
    originals: list[dict[str, Any]] = []

    def reject(number: int, reason: str, **kw: Any) -> None:
        report.quarantined += 1
        report.reasons[_reason_key(reason)] += 1
        if report.first_problem is None:
            report.first_problem = f"{plan.name}:{number}: {reason}"
        quarantine.add(plan.name, number, reason, format=builder.fmt.name, **kw)

    def flush() -> None:
        report.kept += _write_batch(writer, kind, batch, numbers, originals, reject)
        batch.clear()
        numbers.clear()
        originals.clear()

    def take(raw: RawRow) -> None:
        report.rows_read += 1
        if raw.value is None:
            reject(raw.number, raw.error or "unreadable row", raw=raw.raw)
            return
        value = apply_map(raw.value, options.field_map)
        try:
            record, attrs = builder.build(value, raw.number)
        except RowError as exc:
            reject(raw.number, str(exc), row=raw.value, field=exc.field)
            return
        batch.append(record)
        numbers.append(raw.number)
        originals.append(raw.value)
        for attr, attr_rows in attrs.items():
            attributes.setdefault(attr, []).extend({"id": record["id"], **r} for r in attr_rows)
        if len(batch) >= options.batch_rows:
            flush()

    if plan.container == "jsonl" and options.fast and plan.format.name in fastpath.CONVERTERS:
        opened = OpenedFile(plan.path, progress)
        for block in containers.prefetch(
            containers.split_blocks(opened.stream, options.block_bytes)
        ):
            table = fastpath.parse_block(block.data, block.lines)
            storage = None
            if table is not None:
                if options.field_map:
                    table = table.rename_columns(
                        [options.field_map.get(c, c) for c in table.column_names]
                    )
                storage = fastpath.convert_block(
                    plan.format.name,
                    table,
                    source=builder.source,
                    origin=builder.origin,
                    first_line=block.first_line,
                    now=now,
                )
            if storage is None:
                for raw in containers.rows_of_block(block.data, block.first_line):
                    take(raw)
                continue
            flush()
            writer.write_table(storage)
            report.rows_read += storage.num_rows
            report.kept += storage.num_rows
            report.fast_rows += storage.num_rows
        finish = opened.finish
    else:
        rows, finish = open_rows(plan.path, plan.container, options, progress)
        for raw in rows:
            take(raw)
        report.note = getattr(rows, "note", None)  # WARC: the records that are not rows
    flush()
    report.sha256 = finish()
    report.bytes = plan.size
    if report.rows_read == 0:
        report.note = "empty file: no rows"
    if plan.container in ("parquet", "hf-disk") and progress:
        progress(plan.size)
    return report


def _write_batch(
    writer: VersionWriter,
    kind: Kind,
    batch: list[dict[str, Any]],
    numbers: list[int],
    originals: list[dict[str, Any]],
    reject: Callable[..., None],
) -> int:
    """Write a batch; if Arrow refuses it, find the offending rows one by one."""
    if not batch:
        return 0
    try:
        writer.write_table(rows_to_table(kind, batch))
        return len(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    good: list[dict[str, Any]] = []
    for record, number, original in zip(batch, numbers, originals, strict=True):
        try:
            rows_to_table(kind, [record])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
            reject(number, f"does not fit the {kind} schema: {exc}", row=original)
            continue
        good.append(record)
    if good:
        writer.write_table(rows_to_table(kind, good))
    return len(good)


def _check_duplicate_ids(shards: list[Path], result: ImportReport) -> None:
    """Duplicate ids are reported (never merged): count them with DuckDB, which
    spills to disk, so memory stays flat however many ids there are."""
    if not shards:
        return
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in shards) + "]"
    spill = tempfile.mkdtemp(prefix="gristmill-dups-")
    con = duckdb.connect()
    con.execute("SET memory_limit = '128MB'")  # spill to disk rather than grow
    con.execute("SET threads = 1")
    con.execute(f"SET temp_directory = '{spill}'")
    try:
        # 8-byte hashes first (small), then the real ids of the colliding hashes only
        con.execute(
            f"CREATE TEMP TABLE cand AS SELECT hash(id) AS h FROM read_parquet({files}) "
            "GROUP BY h HAVING count(*) > 1"
        )
        con.execute(
            f"CREATE TEMP TABLE dup AS SELECT id, count(*) AS n, "
            "min_by(source || ':' || source_row, source_row) AS first, "
            "max_by(source || ':' || source_row, source_row) AS last "
            f"FROM read_parquet({files}) WHERE hash(id) IN (SELECT h FROM cand) "
            "GROUP BY id HAVING count(*) > 1"
        )
        row = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM dup").fetchone()
        if row is None or not row[0]:
            return
        result.duplicate_ids, result.duplicate_id_rows = int(row[0]), int(row[1])
        examples = con.execute(
            "SELECT id, n, first, last FROM dup ORDER BY n DESC, id LIMIT 5"
        ).fetchall()
        result.duplicate_examples = [f"{i} ×{n} ({a} … {b})" for i, n, a, b in examples]
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def balance_line(report: ImportReport) -> str:
    return f"read {report.rows_read:,} = kept {report.kept:,} + quarantined {report.quarantined:,}"
