"""The terminal summary of a report and of a comparison (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gristmill.quality import fmt
from gristmill.quality.compare import HEADLINE_GROUPS
from gristmill.quality.model import (
    PIIStats,
    QualityReport,
    Reason,
    ReportComparison,
    Share,
)

TOP = 5


def _reasons_table(title: str, reasons: list[Reason], records: int) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("reason")
    table.add_column("records", justify="right")
    table.add_column("share", justify="right")
    table.add_column("examples", style="dim")
    for r in reasons[:TOP]:
        table.add_row(
            r.reason,
            fmt.count(r.count),
            fmt.rate(r.count / records if records else 0),
            ", ".join(r.examples),
        )
    if len(reasons) > TOP:
        table.add_row(f"... {len(reasons) - TOP} more", "", "", "")
    return table


def _mix(shares: list[Share]) -> str:
    shown = ", ".join(f"{s.value} {fmt.rate(s.rate)}" for s in shares[:TOP])
    return shown + (", ..." if len(shares) > TOP else "")


def _pii_detail(pii: PIIStats) -> str:
    found = [t for t in pii.types if t.records]
    shown = ", ".join(f"{t.type} {fmt.rate(t.rate)}" for t in found)
    return f"{fmt.count(pii.records)} records, {fmt.count(pii.matches)} matches" + (
        f"; {shown}" if shown else ""
    )


def _pii_tables(pii: PIIStats) -> list[Table]:
    """Records and matches per type with masked examples; records and matches per part."""
    types = Table(title="PII by type (matches masked)", title_justify="left", show_edge=False)
    for col in ("type", "records", "share", "matches", "examples"):
        types.add_column(col, justify="right" if col in ("records", "share", "matches") else "left")
    types.columns[-1].style = "dim"
    for t in pii.types:
        if t.records:
            types.add_row(
                t.type,
                fmt.count(t.records),
                fmt.rate(t.rate),
                fmt.count(t.matches),
                ", ".join(f"{e.id} ({e.part}: {e.masked})" for e in t.examples),
            )
    parts = Table(title="PII by part", title_justify="left", show_edge=False)
    for col in ("part", "records", "share", "matches per type"):
        parts.add_column(col, justify="right" if col in ("records", "share") else "left")
    for p in pii.parts:
        if p.records:
            counts = ", ".join(f"{k} {fmt.count(v)}" for k, v in p.matches.items() if v)
            parts.add_row(p.part, fmt.count(p.records), fmt.rate(p.rate), counts)
    return [types, parts]


def print_report(report: QualityReport, console: Console) -> None:
    """Headline metrics, then the top reasons, the lengths and the mixes."""
    n = report.records
    f = report.freshness
    d = report.duplicates
    c = report.coherence
    head = Table(
        title=f"Data quality of {report.ref} ({report.kind}, {fmt.count(n)} records)",
        title_justify="left",
        show_header=False,
    )
    head.add_column("metric", style="bold")
    head.add_column("value", justify="right")
    head.add_column("detail", style="dim")
    head.add_row(
        "error rate", fmt.rate(report.errors.rate), f"{fmt.count(report.errors.records)} records"
    )
    head.add_row(
        "completeness",
        fmt.rate(report.completeness.overall_rate),
        f"all required fields: {fmt.rate(report.completeness.required_complete_rate)}",
    )
    several = c.prompts_with_several_answers
    head.add_row(
        "coherence index",
        fmt.rate(c.index),
        f"{fmt.count(c.records_with_problems)} records with problems"
        + (
            f"; {several.groups} prompts with several answers"
            if report.kind == "conversation"
            else ""
        ),
    )
    head.add_row(
        "exact duplicates",
        fmt.rate(d.rate),
        f"{fmt.count(d.duplicate_records)} records in {fmt.count(d.duplicate_groups)} groups; "
        f"{fmt.count(d.duplicate_ids)} duplicate ids",
    )
    head.add_row(
        "median age",
        fmt.value(f.median_age_days, "days"),
        f"{fmt.rate(f.stale_rate)} older than {f.stale_days} d; {fmt.count(f.undated)} undated; "
        f"{fmt.count(f.import_stamped)} stamped at import",
    )
    record = report.length("record")
    if record is not None:
        head.add_row(
            "record length",
            f"{fmt.value(record.tokens.p50, 'tokens')} tok",
            f"median; p95 {fmt.value(record.tokens.p95, 'tokens')} tok, "
            f"{fmt.value(record.chars.p50, 'chars')} chars median",
        )
    if report.pii is not None:
        head.add_row("PII rate", fmt.rate(report.pii.rate), _pii_detail(report.pii))
    head.add_row("languages", "", _mix(report.languages))
    head.add_row("task categories", "", _mix(report.task_categories))
    head.add_row("domains", "", _mix(report.domains))
    head.add_row("origins", "", _mix(report.origins))
    console.print(head)
    if report.errors.reasons:
        console.print(_reasons_table("Top error reasons", report.errors.reasons, n))
    if c.problems:
        console.print(_reasons_table("Consistency problems", c.problems, n))
    if report.pii is not None and report.pii.records:
        for table in _pii_tables(report.pii):
            console.print(table)
    lengths = Table(
        title=f"Lengths in tokens ({report.tokenizer})", title_justify="left", show_edge=False
    )
    for col in ("part", "count", "p5", "p50", "p95", "max", "mean"):
        lengths.add_column(col, justify="left" if col == "part" else "right")
    for s in report.lengths:
        t = s.tokens
        lengths.add_row(
            s.part,
            fmt.count(t.count),
            *(fmt.value(v, "tokens") for v in (t.p5, t.p50, t.p95, t.max, t.mean)),
        )
    console.print(lengths)


def print_comparison(comparison: ReportComparison, console: Console, details: bool = True) -> None:
    """The change per metric; detail rows (reasons, fields, mixes) only where changed."""
    table = Table(
        title=f"Quality change {comparison.a} → {comparison.b}",
        title_justify="left",
        show_edge=False,
    )
    for col in ("group", "metric", comparison.a, comparison.b, "change"):
        table.add_column(col, justify="right" if col not in ("group", "metric") else "left")
    for c in comparison.changes:
        if c.group not in HEADLINE_GROUPS and (not details or c.delta == 0):
            continue
        improved = c.improved
        style = "" if improved is None else ("green" if improved else "red")
        change = fmt.delta(c.delta, c.unit)
        table.add_row(
            c.group,
            c.metric,
            fmt.value(c.a, c.unit),
            fmt.value(c.b, c.unit),
            f"[{style}]{change}[/]" if style else change,
        )
    console.print(table)
    if comparison.options_differ:
        console.print(
            "[yellow]note:[/] the two reports used different options (stale days, tokenizer)"
        )
