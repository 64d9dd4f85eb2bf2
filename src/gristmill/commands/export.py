"""``gristmill export``: write a dataset version in a trainer's or tool's format."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    err_console,
    friendly_errors,
    workspace_from,
)
from gristmill.io.export import ExportOptions, ExportReport, Form, all_exporters, export_version
from gristmill.io.splits import PROMPT, SplitSpec, parse_split
from gristmill.records.kinds import Kind
from gristmill.records.pairs import PairOptions, PairStrategy, RejectedChoice
from gristmill.store import Version


def _formats_help() -> str:
    lines = ["\b", "Formats (kinds they take):"]
    for exporter in all_exporters():
        kinds = ", ".join(exporter.kinds) if len(exporter.kinds) < len(Kind) else "any kind"
        lines.append(f"  {exporter.name:<22} {exporter.description} [{kinds}]")
    return "\n".join(lines)


def print_report(report: ExportReport) -> None:
    """The report as rich tables: records in, rows out and the file per split, then the
    skips by reason."""
    form = f" ({report.form})" if report.form else ""
    table = Table(title=f"{report.source} → {report.format}{form}", title_justify="left")
    table.add_column("split")
    table.add_column("records", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("file")
    files = report.files if len(report.files) == len(report.rows_written) else []
    for i, (split, rows) in enumerate(report.rows_written.items()):
        records = report.records_per_split.get(split, 0)
        table.add_row(
            split, f"{records:,}", f"{rows:,}", str(files[i]) if files else str(report.out)
        )
    console.print(table)
    if report.skipped:
        skipped = Table(title="skipped", title_justify="left")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, count in report.skipped.most_common():
            skipped.add_row(reason, f"{count:,}")
        console.print(skipped)
    console.print(
        f"{report.records_read:,} records read, {report.total_written:,} rows written, "
        f"{sum(report.skipped.values()):,} skipped"
    )


@click.command(
    "export",
    short_help="Write a version in a training format (TRL, OpenAI, HF, ...).",
    epilog=_formats_help(),
)
@click.argument("ref", metavar="NAME[@VERSION]")
@click.option(
    "--format",
    "-f",
    "fmt",
    required=True,
    type=click.Choice([e.name for e in all_exporters()]),
    help="Output format (see the list below).",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file; a folder with one file per split when --split is given "
    "(always a folder for hf).",
)
@click.option(
    "--conversational/--standard",
    "conversational",
    default=None,
    help="TRL form: message lists, or plain single-turn text (records that cannot be "
    "plain text are skipped and counted). Default: conversational where it applies.",
)
@click.option(
    "--split",
    "split_text",
    default=None,
    metavar="NAME=FRAC,...",
    help="Split into e.g. train=0.9,validation=0.1 (fractions add up to 1).",
)
@click.option("--seed", default=0, show_default=True, help="Seed for splits and --rejected random.")
@click.option(
    "--group-by",
    default=PROMPT,
    show_default=True,
    help="Group kept on one side of a split: prompt, a column, meta.KEY, or a SQL expression.",
)
@click.option(
    "--pairs",
    type=click.Choice([s.value for s in PairStrategy]),
    default=None,
    help="Preference pairs from ranks or ratings (default: ranks where two or more "
    "candidates are ranked, else ratings).",
)
@click.option(
    "--rejected",
    type=click.Choice([r.value for r in RejectedChoice]),
    default=RejectedChoice.WORST.value,
    show_default=True,
    help="Rejected candidate: the worst, or a seeded random one strictly below the chosen.",
)
@click.option(
    "--dimension", default=None, help="Rate pairs (and thresholds) on this dimension only."
)
@click.option(
    "--label-threshold",
    type=float,
    default=None,
    help="trl-unpaired: label candidates without a label as desirable when their mean "
    "rating is at least this.",
)
@click.option(
    "--decontaminate-against",
    "decontaminate",
    multiple=True,
    metavar="EVAL",
    help="Leave out records sharing a word 13-gram with an item of this eval dataset "
    "(repeatable); they are counted as skipped.",
)
@click.option(
    "--refuse-contaminated",
    is_flag=True,
    help="With --decontaminate-against: write nothing if any record is contaminated.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.pass_context
@friendly_errors
def export_command(
    ctx: click.Context,
    ref: str,
    fmt: str,
    out: Path,
    conversational: bool | None,
    split_text: str | None,
    seed: int,
    group_by: str,
    pairs: str | None,
    rejected: str,
    dimension: str | None,
    label_threshold: float | None,
    decontaminate: tuple[str, ...],
    refuse_contaminated: bool,
    overwrite: bool,
) -> None:
    """Export NAME[@VERSION] in a training or tool format."""
    ws = workspace_from(ctx)
    version = ws.version(ref)
    if refuse_contaminated and not decontaminate:
        raise UserError("--refuse-contaminated needs --decontaminate-against EVAL")
    exclude = contaminated(version, [ws.version(e) for e in decontaminate])
    if exclude and refuse_contaminated:
        first = ", ".join(sorted(exclude)[:5])
        raise UserError(
            f"{len(exclude)} records of {version.ref} hold eval items (first: {first}); "
            f"nothing written. `gristmill eval contamination {version.ref} "
            f"{' '.join(decontaminate)}` lists the collisions"
        )
    form = (
        None
        if conversational is None
        else (Form.CONVERSATIONAL if conversational else Form.STANDARD)
    )
    options = ExportOptions(
        form=form,
        pairs=PairOptions(
            strategy=None if pairs is None else PairStrategy(pairs),
            rejected=RejectedChoice(rejected),
            dimension=dimension,
            seed=seed,
        ),
        label_threshold=label_threshold,
        split=SplitSpec(parse_split(split_text), seed, group_by) if split_text else None,
        overwrite=overwrite,
        exclude=exclude,
    )
    progress = Progress(
        TextColumn("[bold]exporting[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task: TaskID | None = None

    def advance(records: int) -> None:
        # started on the first batch, so errors found before any row is read print alone
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(version.ref, total=version.row_count)
        progress.advance(task, records)

    try:
        report = export_version(version, fmt, out, options, progress=advance)
    finally:
        if task is not None:  # stopping a bar that never started prints a blank line
            progress.stop()
    print_report(report)


def contaminated(version: Version, evals: list[Version]) -> dict[str, str]:
    """Record id → "contaminated: <eval>" (the first eval given that holds one of its
    items), in one pass over the training set (the curate step's rule)."""
    if not evals:
        return {}
    from gristmill.curate.decontaminate import find_contamination

    return {c.record_id: f"contaminated: {c.evals[0]}" for c in find_contamination(version, evals)}


COMMANDS: list[click.Command] = [export_command]
