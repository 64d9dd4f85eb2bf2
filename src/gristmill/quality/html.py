"""The self-contained HTML report: inline CSS, plots as base64 PNG, no external assets.

One file that can be mailed or attached to a ticket and opens anywhere offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from importlib import resources
from string import Template

from gristmill.quality import fmt, plots
from gristmill.quality.compare import HEADLINE_GROUPS
from gristmill.quality.model import (
    GroupStats,
    MetricChange,
    PIIStats,
    QualityReport,
    Reason,
    ReportComparison,
    Share,
    Summary,
)

PERCENTILE_FIELDS = ("min", "p5", "p25", "p50", "p75", "p95", "p99", "max", "mean")


def _template() -> Template:
    text = resources.files("gristmill.quality").joinpath("report.html").read_text("utf-8")
    return Template(text)


def _e(x: object) -> str:
    return escape(str(x))


def _img(uri: str | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{uri}">' if uri else ""


def _table(head: list[str], rows: Iterable[list[str]], numeric: Iterable[int] = ()) -> str:
    """Cells are HTML already (escape before); ``numeric`` columns align right."""
    nums = set(numeric)
    th = "".join(
        f'<th class="n">{h}</th>' if i in nums else f"<th>{h}</th>" for i, h in enumerate(head)
    )
    body = []
    for row in rows:
        tds = []
        for i, cell in enumerate(row):
            cls = (
                ' class="n"'
                if i in nums
                else (' class="ids"' if cell.startswith("<!--ids-->") else "")
            )
            tds.append(f"<td{cls}>{cell}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    if not body:
        return '<p class="muted">none</p>'
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ids(ids: list[str]) -> str:
    return "<!--ids-->" + _e(", ".join(ids))


def _bar(rate: float) -> str:
    return f'<span class="bar" style="width:{max(1, round(rate * 120))}px"></span>'


def _reasons(reasons: list[Reason], records: int) -> str:
    return _table(
        ["reason", "records", "share", "example ids"],
        (
            [
                _e(r.reason),
                fmt.count(r.count),
                fmt.rate(r.count / records if records else 0),
                _ids(r.examples),
            ]
            for r in reasons
        ),
        numeric=(1, 2),
    )


def _groups(title: str, stats: GroupStats) -> str:
    examples = "; ".join(", ".join(g) for g in stats.examples)
    return (
        f"<h3>{_e(title)}</h3><p>{fmt.count(stats.groups)} groups, {fmt.count(stats.records)} records"
        + (f' <span class="muted">e.g. {_e(examples)}</span>' if examples else "")
        + "</p>"
    )


def _shares(shares: list[Share]) -> str:
    return _table(
        ["value", "records", "share", ""],
        ([_e(s.value), fmt.count(s.count), fmt.rate(s.rate), _bar(s.rate)] for s in shares),
        numeric=(1, 2),
    )


def _summary_row(name: str, s: Summary) -> list[str]:
    return [_e(name), *(fmt.value(getattr(s, f), "tokens") for f in PERCENTILE_FIELDS)]


def _cards(report: QualityReport) -> str:
    f = report.freshness
    cards = [
        (fmt.count(report.records), "records"),
        (fmt.rate(report.errors.rate), "error rate"),
        (fmt.rate(report.completeness.overall_rate), "completeness"),
        (fmt.rate(report.coherence.index), "coherence index"),
        (fmt.rate(report.duplicates.rate), "exact duplicates"),
        (fmt.value(f.median_age_days, "days"), "median age"),
        (fmt.rate(f.stale_rate), f"older than {f.stale_days} d"),
        (report.languages[0].value if report.languages else "—", "main language"),
    ]
    if report.pii is not None:
        cards.insert(5, (fmt.rate(report.pii.rate), "PII rate"))  # after duplicates
    inner = "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for v, k in cards
    )
    return f'<div class="cards">{inner}</div>'


def _pii(pii: PIIStats | None, n: int) -> list[str]:
    """The PII section: rate, a bar per type, masked examples, and the rate per part."""
    if pii is None:
        return [
            "<h2>PII</h2>",
            '<p class="muted">Not measured (a report written before the PII rate was).</p>',
        ]
    shares = [Share(value=t.type, count=t.records, rate=t.rate) for t in pii.types if t.records]
    types = [t.type for t in pii.types]
    return [
        "<h2>PII</h2>",
        f"<p>{fmt.count(pii.records)} of {fmt.count(n)} records ({fmt.rate(pii.rate)}) contain "
        f"personal data or a secret: {fmt.count(pii.matches)} matches. Examples show the record "
        "id and the match masked, never the value.</p>",
        _img(plots.share_bars("Records containing each PII type", shares), "pii bar chart"),
        _table(
            ["type", "records", "share", "matches", "", "examples (part: masked match)"],
            (
                [
                    _e(t.type),
                    fmt.count(t.records),
                    fmt.rate(t.rate),
                    fmt.count(t.matches),
                    _bar(t.rate),
                    _ids([f"{x.id} ({x.part}: {x.masked})" for x in t.examples]),
                ]
                for t in pii.types
            ),
            numeric=(1, 2, 3),
        ),
        "<h3>By part</h3>",
        _table(
            ["part", "texts", "records", "share", *map(_e, types)],
            (
                [
                    _e(p.part),
                    fmt.count(p.texts),
                    fmt.count(p.records),
                    fmt.rate(p.rate),
                    *(fmt.count(p.matches.get(t, 0)) for t in types),
                ]
                for p in pii.parts
            ),
            numeric=range(1, 4 + len(types)),
        ),
        f'<p class="note">Detectors: {_e(pii.method)}.</p>',
    ]


def _change_row(c: MetricChange) -> list[str]:
    improved = c.improved
    cls = "" if improved is None else (' class="good"' if improved else ' class="bad"')
    return [
        _e(c.group),
        _e(c.metric),
        fmt.value(c.a, c.unit),
        fmt.value(c.b, c.unit),
        f"<span{cls}>{_e(fmt.delta(c.delta, c.unit))}</span>",
    ]


def comparison_section(comparison: ReportComparison) -> str:
    """The change per metric from ``a`` to ``b``: headline metrics always, details
    (reasons, fields, mixes) only where they changed."""
    rows = [c for c in comparison.changes if c.group in HEADLINE_GROUPS or c.delta != 0]
    rates = [
        c
        for c in comparison.changes
        if c.unit == "rate" and c.group in HEADLINE_GROUPS and c.a is not None and c.b is not None
    ]
    chart = plots.paired_bars(
        "Headline rates",
        [c.metric for c in rates],
        [c.a or 0.0 for c in rates],
        [c.b or 0.0 for c in rates],
        (comparison.a, comparison.b),
    )
    note = (
        '<p class="note bad">The two reports were computed with different options '
        "(stale days, tokenizer or language window); some deltas reflect that.</p>"
        if comparison.options_differ
        else ""
    )
    return (
        f"<h2>Comparison: {_e(comparison.a)} → {_e(comparison.b)}</h2>{note}"
        + _img(chart, "comparison of headline rates")
        + _table(
            ["group", "metric", _e(comparison.a), _e(comparison.b), "change"],
            (_change_row(c) for c in rows),
            numeric=(2, 3, 4),
        )
    )


def report_body(report: QualityReport) -> str:
    """The sections of one report (no page wrapper)."""
    n = report.records
    out: list[str] = [
        f"<h1>Data quality: {_e(report.ref)}</h1>",
        f'<p class="meta">{_e(report.kind)} · {fmt.count(n)} records · computed '
        f"{_e(report.created_at.strftime('%Y-%m-%d %H:%M UTC'))} in {report.seconds:.1f} s · "
        f"gristmill {_e(report.gristmill_version)} · tokens: {_e(report.tokenizer)}</p>",
        _cards(report),
    ]

    e = report.errors
    out += [
        "<h2>Errors</h2>",
        f"<p>{fmt.count(e.records)} of {fmt.count(n)} records ({fmt.rate(e.rate)}) fail validation "
        "or a check of their kind. A record may have several reasons.</p>",
        _reasons(e.reasons, n),
    ]

    c = report.completeness
    out += [
        "<h2>Completeness</h2>",
        f"<p>Overall {fmt.rate(c.overall_rate)} of declared fields filled; "
        f"{fmt.rate(c.required_complete_rate)} of records have every required field.</p>",
        _table(
            ["field", "", "present", "rate", "", "what counts"],
            (
                [
                    _e(f.field),
                    "required" if f.required else '<span class="muted">expected</span>',
                    fmt.count(f.present),
                    fmt.rate(f.rate),
                    _bar(f.rate),
                    f'<span class="muted">{_e(f.description)}</span>',
                ]
                for f in c.fields
            ),
            numeric=(2, 3),
        ),
    ]

    h = report.coherence
    out += [
        "<h2>Coherence</h2>",
        f"<p>Coherence index {fmt.rate(h.index)}: {fmt.count(h.records_with_problems)} records "
        "have at least one consistency problem.</p>",
        _reasons(h.problems, n),
    ]
    if h.language_pairs:
        out += ["<h3>Language mismatches (user → assistant)</h3>", _shares(h.language_pairs)]
    if h.conflicts.groups:
        out.append(_groups("Same key, different answers", h.conflicts))
    if report.kind == "conversation":
        out.append(
            _groups(
                "Prompts with several answers (first user turn)", h.prompts_with_several_answers
            )
        )

    f = report.freshness
    out += [
        "<h2>Freshness</h2>",
        _img(plots.age_histogram(f.histogram, f.stale_days), "age histogram"),
        _table(
            ["metric", "value"],
            [
                ["records with created_at", fmt.count(f.dated)],
                ["records without", fmt.count(f.undated)],
                ["stamped at import (no source timestamp)", fmt.count(f.import_stamped)],
                ["in the future", fmt.count(f.future)],
                ["oldest", _e(f.oldest.date() if f.oldest else "—")],
                ["newest", _e(f.newest.date() if f.newest else "—")],
                ["median age", fmt.value(f.median_age_days, "days")],
                ["90th percentile age", fmt.value(f.p90_age_days, "days")],
                [
                    f"older than {f.stale_days} days",
                    f"{fmt.count(f.stale_records)} ({fmt.rate(f.stale_rate)})",
                ],
            ],
            numeric=(1,),
        ),
    ]

    d = report.duplicates
    out += [
        "<h2>Duplicates</h2>",
        f"<p>{fmt.count(d.duplicate_records)} records ({fmt.rate(d.rate)}) repeat an earlier record's "
        f"content, in {fmt.count(d.duplicate_groups)} groups. {fmt.count(d.duplicate_ids)} records reuse "
        f"an id ({fmt.count(d.duplicate_id_groups)} ids).</p>",
        f'<p class="note">Content columns: {_e(", ".join(d.content_columns))}. Method: {_e(d.method)}.</p>',
    ]
    if d.examples:
        out.append(_table(["duplicate group (ids)"], ([_ids(g)] for g in d.examples)))
    if d.id_examples:
        out.append(f'<p class="muted">Duplicated ids, e.g.: {_e(", ".join(d.id_examples))}</p>')

    out += _pii(report.pii, n)

    out += [
        "<h2>Lengths</h2>",
        f'<p class="note">Tokens: {_e(report.tokenizer)}. Percentiles are nearest-rank.</p>',
        "<h3>Tokens</h3>",
        _table(
            ["part", *PERCENTILE_FIELDS],
            (_summary_row(s.part, s.tokens) for s in report.lengths),
            numeric=range(1, 10),
        ),
        _img(plots.length_histograms(report.lengths, "tokens"), "token length histograms"),
        "<h3>Characters</h3>",
        _table(
            ["part", *PERCENTILE_FIELDS],
            (_summary_row(s.part, s.chars) for s in report.lengths),
            numeric=range(1, 10),
        ),
        _img(plots.length_histograms(report.lengths, "chars"), "character length histograms"),
    ]
    if report.structure:
        out += [
            "<h3>Structure</h3>",
            _table(
                ["per record", *PERCENTILE_FIELDS],
                (_summary_row(k, s) for k, s in report.structure.items()),
                numeric=range(1, 10),
            ),
        ]

    for title, shares in (
        ("Languages", report.languages),
        ("Task categories", report.task_categories),
        ("Domains", report.domains),
        ("Origins", report.origins),
        ("Sources", report.sources),
    ):
        out += [
            f"<h2>{title}</h2>",
            _img(plots.share_bars(title, shares), f"{title.lower()} bar chart"),
            _shares(shares),
        ]
    out.append(
        '<p class="note">Definitions of every metric: docs/quality.md in the gristmill repository.</p>'
    )
    return "\n".join(out)


def render_html(report: QualityReport, comparison: ReportComparison | None = None) -> str:
    """A complete, self-contained HTML page for ``report`` (with the comparison first,
    when given)."""
    body = (comparison_section(comparison) if comparison else "") + report_body(report)
    title = f"gristmill report {report.ref}" + (f" vs {comparison.a}" if comparison else "")
    return _template().substitute(title=escape(title), body=body)
