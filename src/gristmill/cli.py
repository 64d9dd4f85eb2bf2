"""One command line: ``gristmill <verb>``."""

from __future__ import annotations

from pathlib import Path

import click

from gristmill import __version__
from gristmill.commands import curate, datasets, export, ingest, models, report, sample


class PipelineOrder(click.Group):
    """List verbs in the order of the work (init, import, …, export), not A-Z."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=PipelineOrder,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


ORDER = [
    "init",
    "import",
    "formats",
    "ls",
    "show",
    "head",
    "log",
    "diff",
    "query",
    "report",
    "curate",
    "score",
    "sample",
    "export",
    "models",
    "rm",
]
_commands = {
    c.name: c
    for m in (datasets, ingest, export, report, curate, sample, models)
    for c in m.COMMANDS
}
for _name in [*ORDER, *sorted(set(_commands) - set(ORDER))]:
    if _name in _commands:
        cli.add_command(_commands[_name])


def main() -> None:
    cli()
