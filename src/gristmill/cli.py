"""One command line: ``gristmill <verb>``."""

from __future__ import annotations

from pathlib import Path

import click

from gristmill import __version__
from gristmill.commands import datasets, export, ingest, report


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace folder (default: $GRISTMILL_WORKSPACE, else the nearest one above).",
)
@click.version_option(__version__, prog_name="gristmill")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """gristmill turns raw material into data to train and judge LLMs."""
    ctx.obj = {"workspace": workspace}


for module in (datasets, ingest, export, report):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    cli()
