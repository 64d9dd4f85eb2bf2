"""`gristmill import` and `gristmill formats`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from gristmill.commands.common import UserError, console, friendly_errors, workspace_from
from gristmill.io.formats import all_formats
from gristmill.io.ingest import (
    FilePlan,
    ImportOptions,
    ImportReport,
    balance_line,
    import_path,
)
from gristmill.records.kinds import Kind


def parse_map(value: str | None) -> dict[str, str]:
    """'old=new,old2=new2' → {'old': 'new', 'old2': 'new2'}."""
    if not value:
        return {}
    out: dict[str, str] = {}
    for part in value.split(","):
        old, sep, new = part.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UserError(f"--map expects old=new pairs separated by commas, got {part!r}")
        out[old.strip()] = new.strip()
    return out


def _print_plan(plans: list[FilePlan], kind: Kind | None) -> None:
    for plan in plans:
        if plan.problem:
            console.print(f"  [yellow]{plan.name}[/]: {plan.problem}")
        elif plan.format is None:
            console.print(f"  [yellow]{plan.name}[/]: no rows")
        else:
            runner_up = ", ".join(f"{n} {s:.2f}" for n, s in plan.scores[1:3])
            why = f" (next: {runner_up})" if runner_up else ""
            how = (
                "given by --format"
                if not plan.scores
                else f"detected, score {plan.scores[0][1]:.2f}{why}"
            )
            console.print(
                f"  {plan.name}: [bold]{plan.format.name}[/] → {plan.format.kind} "
                f"[dim]({plan.container}; {how})[/]"
            )
    if kind is not None:
        console.print(f"  dataset kind: [bold]{kind}[/]")


def print_report(report: ImportReport) -> None:
    table = Table(title=f"import into {report.name}", show_lines=False)
    for col in ("file", "format", "read", "kept", "quarantined", "first problem"):
        table.add_column(col, overflow="fold")
    for f in report.files:
        table.add_row(
            f.name,
            f.format or "-",
            f"{f.rows_read:,}",
            f"{f.kept:,}",
            f"{f.quarantined:,}",
            f.first_problem or f.note or "",
        )
    console.print(table)
    colour = "green" if report.balanced else "red"
    console.print(f"[{colour}]{balance_line(report)}[/]")
    if report.reasons:
        console.print("quarantine reasons:")
        for reason, count in report.reasons.most_common(8):
            console.print(f"  {count:>8,}  {reason}")
    if report.quarantine_path:
        console.print(f"quarantined rows (with file, line and reason): {report.quarantine_path}")
    if report.duplicate_ids:
        console.print(
            f"[yellow]duplicate ids: {report.duplicate_ids:,} ids on {report.duplicate_id_rows:,} "
            "rows (kept, not merged)[/]"
        )
        for example in report.duplicate_examples:
            console.print(f"  {example}")
    if report.attributes:
        console.print(f"attributes: {', '.join(report.attributes)}")
    if report.version is not None:
        console.print(
            f"[bold green]wrote {report.version.ref}[/] ({report.kept:,} {report.kind} records) "
            f"at {report.version.path}"
        )


@click.command("import", short_help="Import a file or folder as a new dataset version.")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--as", "name", required=True, help="Dataset name to create a new version of.")
@click.option(
    "--format", "fmt", default=None, help="Row format (skip detection); see `gristmill formats`."
)
@click.option("--map", "field_map", default=None, help="Rename fields first: old=new,old2=new2.")
@click.option(
    "--header/--no-header",
    default=None,
    help="CSV/TSV: the first row is (not) a header (default: guess).",
)
@click.option(
    "--include",
    multiple=True,
    help="Folders: only files whose name matches this glob (repeatable).",
)
@click.option("--lines", is_flag=True, help="Text files: one document per line, not per file.")
@click.pass_context
@friendly_errors
def import_cmd(
    ctx: click.Context,
    path: Path,
    name: str,
    fmt: str | None,
    field_map: str | None,
    header: bool | None,
    lines: bool,
    include: tuple[str, ...],
) -> None:
    """Import a file or folder (JSONL, JSON, CSV/TSV, Parquet, HF save_to_disk, text; gzip/zstd)."""
    workspace = workspace_from(ctx)
    options = ImportOptions(
        format=fmt,
        field_map=parse_map(field_map),
        header=header,
        text_lines=lines,
        include=list(include),
    )
    console.print(f"importing [bold]{path}[/] as [bold]{name}[/]")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading", total=None)

        def on_plan(plans: list[FilePlan], kind: Kind | None) -> None:
            progress.stop()
            _print_plan(plans, kind)
            progress.update(task, total=sum(p.size for p in plans))
            progress.start()

        report = import_path(
            workspace,
            path,
            name,
            options,
            progress=lambda n: progress.advance(task, n),
            on_plan=on_plan,
        )
    print_report(report)
    if report.version is None:
        raise UserError(f"nothing imported from {path}: no row became a record (see above)")


@click.command("formats", short_help="List the import formats and the kind each makes.")
def formats_cmd() -> None:
    """List the row formats `import` detects, with the record kind each makes."""
    table = Table()
    table.add_column("format")
    table.add_column("kind")
    table.add_column("what it reads", overflow="fold")
    for fmt in all_formats():
        table.add_row(fmt.name, str(fmt.kind), fmt.description)
    console.print(table)


COMMANDS: list[click.Command] = [import_cmd, formats_cmd]
