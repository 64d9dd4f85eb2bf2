"""`gristmill curate`: run a pipeline over a dataset, explain exclusions, list steps."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    friendly_errors,
    progress_bars,
    workspace_from,
)
from gristmill.pipeline import RunOptions, explain, load_pipeline, run_pipeline
from gristmill.pipeline.run import RunResult, WorkerDied
from gristmill.pipeline.spec import known_steps


def print_result(result: RunResult) -> None:
    table = Table(title=f"curate → {result.output.ref}")
    for col in ("step", "in", "kept", "dropped", "why (top reasons)", "counts", "seconds"):
        table.add_column(col, overflow="fold")
    for s in result.stats:
        dropped = sum(s.dropped.values())
        top = sorted(s.dropped.items(), key=lambda kv: -kv[1])[:3]
        why = "; ".join(f"{n:,} {r}" for r, n in top)
        counts = "; ".join(f"{n:,} {k}" for k, n in sorted(s.counters.items()))
        table.add_row(
            s.name,
            f"{s.rows_in:,}",
            f"{s.rows_out:,}",
            f"{dropped:,}",
            why,
            counts,
            f"{s.seconds:.2f}",
        )
    console.print(table)
    source_rows = result.stats[0].rows_in if result.stats else result.output.row_count
    console.print(
        f"[bold green]{result.output.ref}[/]: kept {result.output.row_count:,} of {source_rows:,}"
        + (
            f"; dropped records in {result.excluded.ref} (attribute `exclusion`)"
            if result.excluded
            else ""
        )
    )
    if result.attributes:
        console.print(f"attributes on {result.output.ref}: {', '.join(result.attributes)}")
    if result.resumed and not result.already_done:
        console.print(f"resumed: {result.resumed} of {result.tasks} tasks were already finished")
    if result.already_done:
        console.print(
            "[dim]this exact run had finished before; nothing was recomputed (--fresh to redo)[/]"
        )


@click.command("curate", short_help="Run a curation pipeline (YAML) over a dataset.")
@click.argument(
    "pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option("--input", "input_ref", help="Dataset to curate (NAME or NAME@N).")
@click.option("--output", "output", help="Dataset name for the kept records.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=min(2, os.cpu_count() or 1), show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option(
    "--rows-per-task", type=int, default=20_000, show_default=True, help="Task size (resume unit)."
)
@click.option(
    "--fresh", is_flag=True, help="Forget finished tasks of an earlier run of this command."
)
@click.option(
    "--explain",
    "explain_id",
    default=None,
    metavar="ID",
    help="Say which step dropped record ID, and why.",
)
@click.option("--steps", "list_steps", is_flag=True, help="List the steps a pipeline can use.")
@click.option(
    "--report",
    "with_report",
    is_flag=True,
    help="Then compare the quality of the result with its input.",
)
@click.pass_context
@friendly_errors
def curate_cmd(
    ctx: click.Context,
    pipeline: Path | None,
    input_ref: str | None,
    output: str | None,
    executor: str,
    workers: int,
    address: str | None,
    rows_per_task: int,
    fresh: bool,
    explain_id: str | None,
    list_steps: bool,
    with_report: bool,
) -> None:
    """Run PIPELINE (YAML: `steps: [{name: {params}}, ...]`) over --input, writing --output
    and --output.excluded. A killed run resumes when the same command runs again."""
    if list_steps:
        table = Table()
        table.add_column("step")
        table.add_column("kinds")
        table.add_column("what it does", overflow="fold")
        for name, cls in known_steps(("gristmill.curate",)).items():
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            table.add_row(name, ", ".join(str(k) for k in cls.kinds), doc)
        console.print(table)
        return
    workspace = workspace_from(ctx)
    if explain_id is not None:
        hits = explain(workspace, explain_id)
        if not hits:
            console.print(f"{explain_id} was not dropped by any curation run in this workspace")
            return
        for hit in hits:
            console.print(
                f"{explain_id}: dropped by [bold]{hit['step']}[/] ({hit['reason']}) when "
                f"{hit['input']} was curated into {hit['curated']}; the record is in {hit['dataset']}"
            )
        return
    if pipeline is None or not input_ref or not output:
        raise UserError("give a PIPELINE file, --input and --output (or --explain ID, or --steps)")
    spec = load_pipeline(pipeline)
    options = RunOptions(
        executor=executor,
        workers=workers,
        ray_address=address,
        rows_per_task=rows_per_task,
        fresh=fresh,
    )
    with progress_bars() as bars:
        try:
            result = run_pipeline(workspace, spec, input_ref, output, options, bars.update)
        except WorkerDied as exc:
            raise UserError(str(exc)) from exc
    print_result(result)
    parent = result.output.manifest.parent
    if with_report and parent:
        from gristmill.commands.report import report

        ctx.invoke(report, ref=result.output.ref, compare=(parent, result.output.ref))
    elif parent:
        console.print(
            f"quality beside the input: gristmill report {result.output.name} "
            f"--compare {parent} {result.output.ref}"
        )


COMMANDS: list[click.Command] = [curate_cmd]
