"""Container readers: turn a file (JSONL, JSON, CSV/TSV, Parquet, HF `save_to_disk`,
plain text; gzip or zstd compressed) into a stream of parsed rows.

Readers never raise on bad content: a row that cannot be parsed is yielded with
its error and raw bytes, so the engine can quarantine it and the balance holds.
They also count the bytes they consume (for progress) and hash the file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import ijson
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHOLE_JSON_LIMIT = 256 * 1024 * 1024  # larger JSON arrays are parsed incrementally
TEXT_SUFFIXES = {".txt", ".md", ".text"}
CSV_FIELD_LIMIT = 1 << 30

ProgressFn = Callable[[int], None]
T = TypeVar("T")


@dataclass(slots=True)
class RawRow:
    """One row as read: ``value`` when parsed, else ``error`` and ``raw``."""

    number: int  # 1-based line (JSONL, CSV), item (JSON array) or row (Parquet)
    value: dict[str, Any] | None
    error: str | None = None
    raw: bytes | None = None


class HashingReader(io.RawIOBase):
    """Wraps a binary file: hashes and counts every byte read through it."""

    def __init__(self, raw: IO[bytes], progress: ProgressFn | None = None) -> None:
        self._raw = raw
        self._path = Path(raw.name) if isinstance(getattr(raw, "name", None), str) else None
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes_read += n
        if self._progress is not None and n:
            self._progress(n)
        return n

    def drain(self) -> None:
        """Read to the end so the hash covers the whole file (reopening it if a
        wrapper closed it early)."""
        if self._raw.closed:
            if self._path is None:
                return
            self._raw = self._path.open("rb")
            self._raw.seek(self.bytes_read)
            self._progress = None
        while True:
            data = self._raw.read(1 << 20)
            if not data:
                break
            self.sha256.update(data)
            self.bytes_read += len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def compression_of(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def logical_suffix(path: Path) -> str:
    """The suffix that says the content type, under any compression suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".gzip", ".zst", ".zstd"):
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


class OpenedFile:
    """A source file opened for streaming: decompressed bytes, with the hash and
    byte count of the file as stored."""

    def __init__(self, path: Path, progress: ProgressFn | None = None) -> None:
        self.path = path
        self.compression = compression_of(path)
        self.hasher = HashingReader(path.open("rb"), progress)
        buffered = io.BufferedReader(self.hasher, buffer_size=1 << 20)
        self.stream: IO[bytes]
        if self.compression == "gzip":
            self.stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        elif self.compression == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(buffered)
            self.stream = io.BufferedReader(reader, buffer_size=1 << 20)
        else:
            self.stream = buffered

    def finish(self) -> str:
        """Hash of the whole stored file (reads what the reader left)."""
        self.hasher.drain()
        self.hasher.close()
        return self.hasher.sha256.hexdigest()


# -- container detection ----------------------------------------------------------------


def is_hf_disk(path: Path) -> bool:
    return path.is_dir() and (
        (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    )


def container_of(path: Path) -> str | None:
    """jsonl, json, csv, tsv, parquet, text, warc, hf-disk; None if not a data file."""
    if is_hf_disk(path):
        return "hf-disk"
    suffix = logical_suffix(path)
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return _json_or_jsonl(path)
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix == ".warc":
        return "warc"
    return None


def _json_or_jsonl(path: Path) -> str:
    """A .json file holding one object per line is JSONL; otherwise one JSON value."""
    opened = OpenedFile(path)
    try:
        head = opened.stream.read(1 << 16)
    finally:
        opened.stream.close()
    text = head.lstrip()
    if text.startswith(b"["):
        return "json"
    first_line = text.split(b"\n", 1)[0].strip()
    try:
        orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return "json"
    return "jsonl" if b"\n" in text.strip() else "json"


# -- readers --------------------------------------------------------------------------------


def _parse_object(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return None, f"invalid UTF-8 at byte {uexc.start}"
        return None, f"broken JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


JSONL_BLOCK_BYTES = 8 << 20


@dataclass(slots=True)
class Block:
    """Whole lines of a JSONL file: where they start and how many there are."""

    first_line: int
    data: bytes
    lines: int  # lines in data (a last line without newline counts)


def split_blocks(stream: IO[bytes], block_bytes: int = JSONL_BLOCK_BYTES) -> Iterator[Block]:
    """Blocks of whole lines over a byte stream; the last may end without a newline."""
    line = 1
    carry = b""
    while True:
        chunk = stream.read(block_bytes)
        if not chunk:
            break
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n")
        if cut == -1:
            carry = data
            continue
        block, carry = data[: cut + 1], data[cut + 1 :]
        newlines = block.count(b"\n")
        yield Block(line, block, newlines)
        line += newlines
    if carry:
        yield Block(line, carry, carry.count(b"\n") + 1)


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``items`` in a thread, ``depth`` ahead: file reads, decompression and
    hashing release the GIL, so they overlap with the consumer's parsing."""
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                q.put((True, item))
        except BaseException as exc:
            q.put((False, exc))
            return
        q.put((False, None))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    while True:
        ok, item = q.get()
        if not ok:
            thread.join()
            if item is not None:
                raise item
            return
        yield item


def rows_of_block(block: bytes, first_line: int) -> Iterator[RawRow]:
    """Parse each line of a JSONL block; blank lines hold no row and are skipped."""
    lines = block.split(b"\n")
    last = len(lines) - 1
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        value, error = _parse_object(line)
        if error is None:
            yield RawRow(first_line + offset, value)
            continue
        if offset == last:
            error += " (the file ends inside this line: truncated?)"
        yield RawRow(first_line + offset, None, error, line.rstrip(b"\r"))


def read_jsonl(opened: OpenedFile) -> Iterator[RawRow]:
    """One JSON object per line."""
    for block in split_blocks(opened.stream):
        yield from rows_of_block(block.data, block.first_line)


def read_json(opened: OpenedFile, size: int) -> Iterator[RawRow]:
    """A JSON array of objects (each item a row) or a single object (one row)."""
    if size <= WHOLE_JSON_LIMIT:
        data = opened.stream.read()
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield from _salvage_array(data, str(exc))
            return
        if isinstance(value, dict):
            yield RawRow(1, value)
            return
        if not isinstance(value, list):
            yield RawRow(
                1, None, f"expected a JSON array or object, got {type(value).__name__}", data
            )
            return
        for i, item in enumerate(value, start=1):
            if isinstance(item, dict):
                yield RawRow(i, item)
            else:
                yield RawRow(
                    i,
                    None,
                    f"expected a JSON object, got {type(item).__name__}",
                    orjson.dumps(item),
                )
        return
    yield from _stream_array(opened.stream)


def _stream_array(stream: IO[bytes]) -> Iterator[RawRow]:
    """Incremental parse of a huge JSON array: memory holds one item at a time."""
    number = 0
    try:
        for item in ijson.items(stream, "item", use_float=True):
            number += 1
            if isinstance(item, dict):
                yield RawRow(number, item)
            else:
                yield RawRow(number, None, "expected a JSON object", orjson.dumps(item))
    except ijson.JSONError as exc:
        yield RawRow(
            number + 1, None, f"broken JSON after item {number}: {exc} (truncated file?)", b""
        )


def _salvage_array(data: bytes, error: str) -> Iterator[RawRow]:
    """The whole file did not parse: keep every complete item before the break and
    quarantine the rest as one row, with the position of the break."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        error = f"invalid UTF-8 at byte {exc.start}"
    number = 0
    try:
        for item in ijson.items(io.BytesIO(data), "item", use_float=True):
            number += 1
            if isinstance(item, dict):
                yield RawRow(number, item)
            else:
                yield RawRow(number, None, "expected a JSON object", orjson.dumps(item))
    except (ijson.JSONError, UnicodeDecodeError):
        pass
    consumed = _offset_after_items(data, number)
    tail = data[consumed:]
    where = f"after item {number}" if number else "at the start"
    yield RawRow(number + 1, None, f"broken JSON {where}: {error}", tail)


def _offset_after_items(data: bytes, items: int) -> int:
    """Byte offset just after the ``items``-th complete top-level array item."""
    if items == 0:
        return 0
    depth = 0
    in_string = False
    escaped = False
    seen = 0
    for i, byte in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
            continue
        if byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
        elif byte in (0x5D, 0x7D):
            depth -= 1
            if depth == 1:
                seen += 1
                if seen == items:
                    return i + 1
    return len(data)


HEADER_CELL = re.compile(r"^[A-Za-z_][\w .\-/()]{0,63}$")


def looks_like_header(cells: list[str]) -> bool:
    """Header cells are short identifier-like names, all different."""
    return (
        bool(cells)
        and len(set(cells)) == len(cells)
        and all(HEADER_CELL.match(c.strip()) and not c.strip().endswith("?") for c in cells)
    )


def read_csv(opened: OpenedFile, delimiter: str, header: bool | None) -> Iterator[RawRow]:
    """Rows keyed by the header, or ``col0..colN`` when the file has none.
    ``header=None`` guesses from the first row."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    text = io.TextIOWrapper(opened.stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    names: list[str] | None = None
    number = 0
    line_start = 1
    for cells in reader:
        number = line_start
        line_start = reader.line_num + 1
        if names is None:
            has_header = looks_like_header(cells) if header is None else header
            if has_header:
                names = [c.strip() for c in cells]
                continue
            names = [f"col{i}" for i in range(len(cells))]
        if not any(c.strip() for c in cells):
            continue
        raw = delimiter.join(cells).encode("utf-8", "surrogateescape")
        if any("\udc80" <= ch <= "\udcff" for c in cells for ch in c):
            yield RawRow(number, None, "invalid UTF-8 in this row", raw)
            continue
        if len(cells) != len(names):
            yield RawRow(number, None, f"expected {len(names)} columns, found {len(cells)}", raw)
            continue
        yield RawRow(number, dict(zip(names, cells, strict=True)))
    text.detach()  # leave the byte stream open for hashing


def _arrow_rows(batches: Iterator[pa.RecordBatch], start: int = 1) -> Iterator[RawRow]:
    number = start - 1
    for batch in batches:
        for row in batch.to_pylist():
            number += 1
            yield RawRow(number, row)


def read_parquet(path: Path) -> Iterator[RawRow]:
    yield from _arrow_rows(pq.ParquetFile(path).iter_batches(batch_size=4096))


def hf_arrow_files(path: Path) -> list[tuple[str | None, Path]]:
    """(split, arrow file) pairs of a `save_to_disk` folder (Dataset or DatasetDict)."""
    if (path / "dataset_dict.json").is_file():
        splits = orjson.loads((path / "dataset_dict.json").read_bytes()).get("splits", [])
        out: list[tuple[str | None, Path]] = []
        for split in splits:
            out.extend((split, f) for _, f in hf_arrow_files(path / split))
        return out
    state = orjson.loads((path / "state.json").read_bytes())
    return [(None, path / f["filename"]) for f in state.get("_data_files", [])]


def read_hf_disk(path: Path) -> Iterator[RawRow]:
    """HF datasets' `save_to_disk` folders are Arrow IPC streams; the split, if any,
    is kept as a ``split`` field (it ends up in ``meta``)."""
    number = 0
    for split, arrow_file in hf_arrow_files(path):
        with arrow_file.open("rb") as f:
            reader = ipc.open_stream(f)
            for raw in _arrow_rows(iter(reader), start=number + 1):
                number = raw.number
                if split is not None and raw.value is not None:
                    raw.value.setdefault("split", split)
                yield raw


def read_text(opened: OpenedFile, lines: bool = False) -> Iterator[RawRow]:
    """A plain-text file is one document, or with ``lines`` one per non-blank line
    (corpora like one-article-per-line Wikipedia dumps)."""
    if lines:
        for number, line in enumerate(opened.stream, start=1):
            if not line.strip():
                continue
            try:
                yield RawRow(number, {"text": line.decode("utf-8").rstrip("\r\n")})
            except UnicodeDecodeError as exc:
                yield RawRow(number, None, f"invalid UTF-8 at byte {exc.start}", line)
        return
    data = opened.stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield RawRow(1, None, f"invalid UTF-8 at byte {exc.start}", data)
        return
    yield RawRow(1, {"text": text})
