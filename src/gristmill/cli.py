"""One command line: ``gristmill <verb>``."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from gristmill import __version__

# Each module of gristmill.commands holds a COMMANDS list; a stage's module joins the
# command line by existing (its optional dependencies import lazily inside commands).
COMMAND_MODULES = (
    "datasets",
    "ingest",
    "export",
    "report",
    "curate",
    "sample",
    "annotate",
    "synth",
    "train",
    "evals",
    "models",
)


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
    "serve",
    "project",
    "synth",
    "export",
    "train",
    "eval",
    "models",
    "rm",
]


def _load_commands() -> dict[str, click.Command]:
    commands: dict[str, click.Command] = {}
    for module in COMMAND_MODULES:
        full = f"gristmill.commands.{module}"
        try:
            loaded = importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name == full:  # a stage not built in this checkout
                continue
            raise
        for command in loaded.COMMANDS:
            assert command.name is not None
            commands[command.name] = command
    return commands


_commands = _load_commands()
for _name in [*ORDER, *sorted(set(_commands) - set(ORDER))]:
    if _name in _commands:
        cli.add_command(_commands[_name])


def main() -> None:
    cli()
