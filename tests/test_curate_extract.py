"""`extract_html` on pages built from real Dolma articles wrapped in navigation, a
cookie banner, ads, related links and a footer; and WARC import, from a crawl file
written with warcio (an independent writer) around the same pages."""

from __future__ import annotations

import gzip
import html
import io
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.curate.extract import ExtractHTML, looks_like_html
from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, parse_pipeline, run_pipeline
from gristmill.store import Version, Workspace

BOILERPLATE = [
    "Subscribe to our newsletter",
    "We use cookies to improve your experience",
    "Sponsored: get 50% off premium hosting",
    "Copyright 2024 Example Media Group",
    "Privacy policy",
]


def articles(samples: Path) -> list[dict[str, Any]]:
    """Real Common Crawl articles (Dolma): title, url and paragraphs."""
    path = samples / "dolma_cc_samples" / "cc_en_head-0091.jsonl"
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        {
            "title": docs[i]["metadata"]["title"],
            "url": docs[i]["metadata"]["url"],
            # white space inside a paragraph collapses in HTML, so compare it collapsed
            "paragraphs": [" ".join(p.split()) for p in docs[i]["text"].split("\n") if p.strip()],
        }
        for i in (5, 6, 8, 9)
    ]


def page(article: dict[str, Any], canonical: bool = True) -> str:
    e = html.escape
    nav = "".join(f'<li><a href="/{n.lower()}">{n}</a></li>' for n in ("Home", "News", "About"))
    body = "".join(f"<p>{e(p)}</p>" for p in article["paragraphs"])
    related = "".join(
        f'<li><a href="/story/{i}">Related story {i}: more from our archive</a></li>'
        for i in range(5)
    )
    link = f'<link rel="canonical" href="{e(article["url"])}">' if canonical else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{e(article['title'])}</title>{link}"
        "<script>window.dataLayer=[];function gtag(){dataLayer.push(arguments)}</script>"
        "<style>.ad{float:right}</style></head><body>"
        f"<header><div class='logo'>Example Media</div><nav><ul>{nav}</ul></nav></header>"
        f"<div class='cookie-banner'>{BOILERPLATE[1]}. Accept all cookies.</div>"
        f"<main><article><h1>{e(article['title'])}</h1>{body}</article></main>"
        f"<aside class='sidebar'><div class='ad'>{BOILERPLATE[2]} today only.</div>"
        f"<h3>Related</h3><ul>{related}</ul>"
        f"<form><label>{BOILERPLATE[0]}</label><input name='email'></form></aside>"
        f"<footer><p>{BOILERPLATE[3]}. All rights reserved.</p><a href='/p'>{BOILERPLATE[4]}</a>"
        f"<ul>{nav}</ul></footer></body></html>"
    )


NAV_ONLY = (
    "<html><head><title>Index</title></head><body><nav><ul><li><a href='/a'>Home</a></li>"
    "<li><a href='/b'>About</a></li><li><a href='/c'>Contact us</a></li></ul></nav>"
    "<footer>Copyright 2024. All rights reserved.</footer></body></html>"
)


def import_rows(workspace: Workspace, tmp: Path, name: str, rows: list[dict[str, Any]]) -> Version:
    path = tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_path(workspace, path, name)
    assert report.version is not None
    return report.version


def test_keeps_the_article_and_drops_the_boilerplate(samples: Path) -> None:
    step = ExtractHTML()
    for article in articles(samples):
        text, title, url = step.extract(page(article))
        for paragraph in article["paragraphs"]:
            assert paragraph in text  # every paragraph, whole and on its own line
        for junk in (*BOILERPLATE, "Related story", "Accept all cookies", "dataLayer"):
            assert junk not in text
        assert title == " ".join(article["title"].split())
        assert url == article["url"]


def test_html_sniffing() -> None:
    assert looks_like_html(NAV_ONLY) and looks_like_html("<p>one paragraph</p>")
    assert not looks_like_html("Plain text about 3 < 4 and a <3 heart.")


def test_step_in_a_pipeline(workspace: Workspace, samples: Path, tmp_path: Path) -> None:
    arts = articles(samples)
    plain = "A plain text document, already extracted, with no tags at all."
    rows = [
        {"text": page(arts[0])},
        {"text": page(arts[1], canonical=False), "url": "https://mirror.example.org/x"},
        {"text": page(arts[2]), "title": "Kept title"},
        {"text": NAV_ONLY},
        {"text": plain},
    ]
    import_rows(workspace, tmp_path, "pages", rows)
    result = run_pipeline(
        workspace, parse_pipeline(["extract_html"]), "pages", "text", RunOptions(workers=1)
    )
    out = list(result.output.iter_rows())
    assert len(out) == 4
    first, second, third, fourth = out
    assert all(p in first["text"] for p in arts[0]["paragraphs"]) and "<p>" not in first["text"]
    assert (first["title"], first["url"]) == (" ".join(arts[0]["title"].split()), arts[0]["url"])
    assert second["url"] == "https://mirror.example.org/x"  # the record's own url stays
    assert (third["title"], third["url"]) == ("Kept title", arts[2]["url"])
    assert fourth["text"] == plain  # not HTML: kept as it is
    (stats,) = result.stats
    assert stats.dropped == {"no main content": 1}
    assert stats.counters == {
        "pages extracted": 3,
        "titles set": 2,
        "urls set": 2,
        "not HTML, kept": 1,
    }
    assert result.excluded is not None
    [excluded] = list(result.excluded.iter_rows())
    assert excluded["text"] == NAV_ONLY  # dropped records keep their HTML

    strict = run_pipeline(
        workspace,
        parse_pipeline([{"extract_html": {"non_html": "drop"}}]),
        "pages",
        "strict",
        RunOptions(workers=1),
    )
    assert strict.stats[0].dropped == {"no main content": 1, "not HTML": 1}


# -- WARC import ------------------------------------------------------------------------------

WARC_DATE = "2024-03-01T12:00:00Z"


def latin1(article: dict[str, Any]) -> dict[str, Any]:
    """The article as a Latin-1 site serves it (curly quotes become '?'), with accents."""
    paragraphs = [p.encode("latin-1", "replace").decode("latin-1") for p in article["paragraphs"]]
    return dict(article, paragraphs=[*paragraphs, "Café crème à Zürich."])


def write_crawl(path: Path, arts: list[dict[str, Any]], compress: bool) -> None:
    """A crawl as a crawler writes it: warcinfo, then per URL a request and a response,
    with HTML pages (one Latin-1, one gzip-encoded), an image, a redirect, a 404 page
    and a metadata record."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=compress)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test crawler"}))

    def exchange(url: str, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        request = StatusAndHeaders(
            "GET / HTTP/1.1", [("Host", url.split("/")[2])], is_http_request=True
        )
        writer.write_record(
            writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=request)
        )
        response = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                http_headers=response,
                warc_headers_dict={"WARC-Date": WARC_DATE},
            )
        )

    exchange(
        arts[0]["url"],
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8")],
        page(arts[0]).encode(),
    )
    latin = latin1(arts[1])
    exchange(
        arts[1]["url"],
        "200 OK",
        [("Content-Type", "text/html; charset=ISO-8859-1")],
        page(latin).encode("latin-1", "replace"),
    )
    exchange(
        arts[2]["url"],
        "200 OK",
        [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        gzip.compress(page(arts[2]).encode()),
    )
    exchange("http://example.com/logo.png", "200 OK", [("Content-Type", "image/png")], b"\x89PNG")
    exchange("http://example.com/old", "301 Moved Permanently", [("Location", "/new")], b"")
    exchange("http://example.com/gone", "404 Not Found", [("Content-Type", "text/html")], b"<p>x")
    writer.write_record(
        writer.create_warc_record(
            arts[0]["url"],
            "metadata",
            payload=io.BytesIO(b"outlinks: 12"),
            warc_content_type="application/warc-fields",
        )
    )
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.warc"])
def test_warc_import(workspace: Workspace, samples: Path, tmp_path: Path, name: str) -> None:
    arts = articles(samples)
    path = tmp_path / name
    write_crawl(path, arts, compress=name.endswith(".gz"))
    report = import_path(workspace, path, "web")
    assert report.version is not None and report.kind == "document"
    assert (report.rows_read, report.kept, report.quarantined) == (3, 3, 0)
    [file] = report.files
    assert file.format == "document" and file.container == "warc"
    assert file.note == (
        "skipped 11 WARC records that are not HTML pages: request ×6, warcinfo ×1, "
        "image/png ×1, HTTP 3xx ×1, HTTP 4xx ×1, metadata ×1"
    )
    rows = list(report.version.iter_rows())
    assert [r["url"] for r in rows] == [a["url"] for a in arts[:3]]
    assert all(r["created_at"] == datetime(2024, 3, 1, 12, tzinfo=UTC) for r in rows)
    assert all(r["text"].startswith("<!DOCTYPE html>") for r in rows)
    assert "Café crème à Zürich." in rows[1]["text"]  # decoded with its declared charset
    meta = json.loads(rows[0]["meta"])
    assert meta["http_status"] == 200 and meta["warc_record_id"].startswith("<urn:uuid:")

    result = run_pipeline(
        workspace, parse_pipeline(["extract_html"]), "web", "web-text", RunOptions(workers=1)
    )
    texts = [r["text"] for r in result.output.iter_rows()]
    for text, article in zip(texts, [arts[0], latin1(arts[1]), arts[2]], strict=True):
        assert article["paragraphs"][0] in text and "Related story" not in text


def gzip_members(data: bytes) -> list[int]:
    """Where each gzip member starts (warcio writes one per record)."""
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        member = zlib.decompressobj(31)
        member.decompress(data[offset:])
        offset = len(data) - len(member.unused_data)
    return starts


@pytest.mark.parametrize(
    ("record", "kept", "reason", "line"),
    [  # cut in the middle of record 5 (the 2nd page) or 6 (a request)
        (5, 1, "the file ends inside WARC record 5 (truncated?)", 5),
        (6, 2, "the file ends early, in or after WARC record 6 (truncated?)", 7),
    ],
)
def test_truncated_warc_keeps_what_came_before(
    workspace: Workspace,
    samples: Path,
    tmp_path: Path,
    record: int,
    kept: int,
    reason: str,
    line: int,
) -> None:
    """Every page before the break is kept; the one the file ends in is quarantined."""
    whole = tmp_path / "whole.warc.gz"
    write_crawl(whole, articles(samples), compress=True)
    data = whole.read_bytes()
    members = gzip_members(data)
    assert len(members) == 14
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: (members[record - 1] + members[record]) // 2])
    report = import_path(workspace, cut, "cut")
    assert report.balanced and (report.kept, report.quarantined) == (kept, 1)
    assert dict(report.reasons) == {reason: 1}
    assert report.quarantine_path is not None
    [entry] = [json.loads(line) for line in report.quarantine_path.read_text().splitlines()]
    assert entry["line"] == line


def test_uncompressed_warc_cut_in_a_record(
    workspace: Workspace, samples: Path, tmp_path: Path
) -> None:
    arts = articles(samples)
    whole = tmp_path / "whole.warc"
    write_crawl(whole, arts, compress=False)
    data = whole.read_bytes()
    cut = tmp_path / "cut.warc"
    cut.write_bytes(data[: data.index(arts[1]["paragraphs"][0][:30].encode()) + 50])
    report = import_path(workspace, cut, "cut")
    assert (report.kept, report.quarantined) == (1, 1)
    assert dict(report.reasons) == {"the file ends inside WARC record 5 (truncated?)": 1}


def test_not_a_warc(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "notes.warc"
    path.write_text("These are my notes, not a web archive.\n")
    report = import_path(workspace, path, "notes")
    assert report.version is None and report.quarantined == 1
    assert report.files[0].first_problem == (
        "notes.warc:1: broken WARC at the start: Invalid WARC header"
    )


def test_cli_import(
    run_cli: Callable[..., Result], samples: Path, tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "crawl.warc.gz"
    write_crawl(path, articles(samples), compress=True)
    result = run_cli("import", str(path), "--as", "web")
    assert result.exit_code == 0, result.output
    assert "wrote web@1" in result.output
    assert workspace.version("web").row_count == 3
