"""``gristmill report``: the data-quality report of a dataset version, or the change
between two versions."""

from __future__ import annotations

from pathlib import Path

import click

from gristmill.commands.common import console, friendly_errors, progress_bars, workspace_from
from gristmill.store import Version, parse_ref


def _compare_ref(name: str, spec: str) -> str:
    """'2', 'v2' or '@2' → NAME@2; anything with a name ('other@3', 'other') as is."""
    bare = spec.removeprefix("@").removeprefix("v")
    return f"{name}@{bare}" if bare.isdigit() else spec


def _comparison_path(a: Version, b: Version) -> Path:
    suffix = f"v{a.number}" if a.name == b.name else f"{a.name}-v{a.number}"
    return b.path / f"report-vs-{suffix}.html"


@click.command("report")
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "--compare",
    nargs=2,
    metavar="V1 V2",
    default=None,
    help="Compare two versions (numbers of NAME, or full NAME@N refs): change per metric. "
    "Stored reports are reused when made with the same options.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML report (default: report.html in the version folder).",
)
@click.option(
    "--stale-days",
    type=click.IntRange(min=0),
    default=365,
    show_default=True,
    help="Records older than this many days count as stale.",
)
@click.option(
    "--tokenizer",
    default=None,
    metavar="PATH",
    help="A local tokenizer.json (or a folder holding one) for token counts; "
    r"default: the regex tokenizer \w+|[^\w\s].",
)
@click.pass_context
@friendly_errors
def report(
    ctx: click.Context,
    ref: str,
    compare: tuple[str, str] | None,
    html_path: Path | None,
    stale_days: int,
    tokenizer: str | None,
) -> None:
    """Data-quality report of NAME[@VERSION]: errors, completeness, coherence,
    freshness, duplicates, lengths, languages, categories and PII rate.

    Writes report.json and report.html into the version folder and prints a summary.
    Definitions of every metric: docs/quality.md.
    """
    from gristmill.quality import (
        ReportOptions,
        build_report,
        compare_reports,
        load_or_build_report,
        render_html,
        save_report,
    )
    from gristmill.quality.terminal import print_comparison, print_report

    workspace = workspace_from(ctx)
    options = ReportOptions(stale_days=stale_days, tokenizer=tokenizer or "regex")

    if compare is None:
        version = workspace.version(ref)
        with progress_bars(remaining=True) as bars:
            advance = bars(f"[bold]report {version.ref}", version.row_count)
            result = build_report(version, options, progress=advance)
        save_report(version, result)
        target = html_path or version.report_html
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_html(result), encoding="utf-8")
        print_report(result, console)
        console.print(f"[dim]report: {version.report_json}[/]")
        console.print(f"[dim]html:   {target}[/]")
        return

    name, _ = parse_ref(ref)
    versions = [workspace.version(_compare_ref(name, spec)) for spec in compare]
    reports = []
    for version in versions:
        with progress_bars(remaining=True) as bars:
            advance = bars(f"[bold]report {version.ref}", version.row_count)
            result, built = load_or_build_report(version, options, progress=advance)
        if built:
            version.report_html.write_text(render_html(result), encoding="utf-8")
            console.print(f"[dim]computed and stored the report of {version.ref}[/]")
        else:
            console.print(f"[dim]using the stored report of {version.ref}[/]")
        reports.append(result)
    comparison = compare_reports(reports[0], reports[1])
    print_comparison(comparison, console)
    target = html_path or _comparison_path(versions[0], versions[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(reports[1], comparison), encoding="utf-8")
    console.print(f"[dim]html:   {target}[/]")


COMMANDS: list[click.Command] = [report]
