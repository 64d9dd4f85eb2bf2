"""WARC files (``.warc``, ``.warc.gz``) as rows for import: one row per HTML page.

A crawl's WARC holds more than pages: ``warcinfo``, ``request``, ``metadata`` and
``revisit`` records, responses for images and scripts, redirects and errors. Only
``response`` records of an HTTP 2xx answer with an HTML body (``text/html`` or
``application/xhtml+xml``; a missing content type when the body starts like HTML)
become rows: ``{"text": <the HTML>, "url": WARC-Target-URI, "created_at": WARC-Date,
"meta": {warc_record_id, content_type, http_status}}``, which the ``document`` format
imports as is; ``extract_html`` in a pipeline then turns the HTML into text.

The other records are not rows, so skipping them loses no data and they do not
enter the ``read = kept + quarantined`` balance; they are counted by what they are
and the import's file report says so in its note. A WARC that breaks off is
reported, and everything before the break is kept: a ``.gz`` cut short, or a last
record declared longer than what is left of the file, quarantines that record as
truncated; a record that is not WARC at all gives an unreadable row saying after
which record.

Parsing is FastWARC's (Resiliparse), over the stream the import opened, so the file
is still hashed and its progress counted. The HTTP body is decoded (chunked
transfer, gzip content encoding) and turned to text with its declared charset, else
the one Resiliparse detects.
"""

from __future__ import annotations

import io
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from gristmill.io.containers import OpenedFile, RawRow

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
HTML_START = (b"<!doctype html", b"<html")


class _Source(io.RawIOBase):
    """The import's decompressed stream as FastWARC reads it: with ``tell`` (FastWARC
    asks for it at the start), and reads that stop, rather than fail, where the
    compressed file breaks off, so every record before the break is still read; the
    error is kept to report."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self._read1 = getattr(stream, "read1", stream.read)  # never waits for a full block
        self.position = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            return b""
        try:
            data: bytes = self._read1(size) if size and size > 0 else self._stream.read()
        except (EOFError, OSError, zlib.error) as exc:  # gzip and zstd streams that break off
            self.error = exc
            return b""
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class WarcRows:
    """The rows of one WARC file (an iterator of :class:`RawRow`); after the last,
    :attr:`skipped` counts the records that were not pages and :attr:`note` says so."""

    def __init__(self, opened: OpenedFile) -> None:
        self.source = _Source(opened.stream)
        self.skipped: Counter[str] = Counter()
        self._rows = self._read()

    def __iter__(self) -> Iterator[RawRow]:
        return self

    def __next__(self) -> RawRow:
        return next(self._rows)

    @property
    def note(self) -> str | None:
        if not self.skipped:
            return None
        total = sum(self.skipped.values())
        parts = ", ".join(f"{what} ×{n:,}" for what, n in self.skipped.most_common())
        return f"skipped {total:,} WARC records that are not HTML pages: {parts}"

    def _read(self) -> Iterator[RawRow]:
        """Rows one record behind the parser, so the last one can still be refused
        when the file turns out to end inside it."""
        number = 0
        pending: RawRow | None = None
        end_of_last = 0  # where the last record read should end, by its length
        problem: str | None = None
        try:
            for record in ArchiveIterator(self.source, parse_http=True, auto_decode="all"):
                number += 1
                end_of_last = record.stream_pos + record.content_length
                row = self._row(record)
                if row is not None:
                    if pending is not None:
                        yield pending
                    pending = RawRow(number, row)
        except OSError as exc:  # FastWARC: a record that is not WARC
            where = f"after record {number}" if number else "at the start"
            problem = f"broken WARC {where}: {exc}"
        if problem is None and (
            self.source.error is not None or end_of_last > self.source.position
        ):
            if pending is not None and pending.number == number and pending.value is not None:
                text = str(pending.value["text"])
                pending = RawRow(
                    number,
                    None,
                    f"the file ends inside WARC record {number} (truncated?)",
                    text.encode(),
                )
            else:
                problem = f"the file ends early, in or after WARC record {number} (truncated?)"
        if pending is not None:
            yield pending
        if problem is not None:
            yield RawRow(number + 1, None, problem, b"")

    def _row(self, record: WarcRecord) -> dict[str, Any] | None:
        """The row of a page, or None (counted in :attr:`skipped`) for anything else."""
        if record.record_type != WarcRecordType.response:
            self.skipped[str(record.record_type)] += 1
            return None
        if not record.is_http or record.http_headers is None:
            self.skipped["non-HTTP response"] += 1
            return None
        status = record.http_headers.status_code
        if status is None or not 200 <= status < 300:
            self.skipped[f"HTTP {status // 100 if status else '?'}xx"] += 1
            return None
        body = record.reader.read()
        content_type = (record.http_content_type or "").lower()
        if content_type not in HTML_TYPES and not (
            not content_type and body.lstrip()[:14].lower().startswith(HTML_START)
        ):
            self.skipped[content_type or "untyped response"] += 1
            return None
        if not body.strip():
            self.skipped["empty HTML"] += 1
            return None
        meta: dict[str, Any] = {"http_status": status}
        if record.record_id:
            meta["warc_record_id"] = record.record_id
        declared = record.http_headers.get("Content-Type")
        if declared:
            meta["content_type"] = declared
        row: dict[str, Any] = {"text": decode(body, record.http_charset), "meta": meta}
        url = record.headers.get("WARC-Target-URI")
        if url:
            row["url"] = url
        if record.record_date is not None:
            row["created_at"] = record.record_date.isoformat()
        return row


def decode(body: bytes, charset: str | None) -> str:
    """HTML bytes as text: the declared charset when Python knows it, else the one
    detected (uchardet and the page's meta tag); bad bytes never fail the row."""
    if charset:
        try:
            return bytes_to_str(body, charset, errors="replace")
        except (LookupError, UnicodeError):
            pass
    return bytes_to_str(body, detect_encoding(body) or "utf-8", errors="replace")


def read_warc(opened: OpenedFile) -> WarcRows:
    return WarcRows(opened)
