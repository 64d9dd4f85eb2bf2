"""What every command shares: the console, the workspace option, friendly errors,
progress bars."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gristmill.store import StoreError, Workspace

# Piped or captured output gets wide lines, so file:line messages are not folded.
_WIDTH = None if sys.stdout.isatty() else max(160, int(os.environ.get("COLUMNS", "0") or 0))
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """An error the user can fix; printed without a traceback, exit code 1."""

    def show(self, file: Any = None) -> None:
        err_console.print(f"[bold red]error:[/] {self.message}", soft_wrap=True)  # never folded


def friendly_errors(fn: F) -> F:
    """Turn store and value errors into one clear line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (StoreError, FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def model_errors() -> Iterator[None]:
    """Turn a model error (a server down, a backend missing) into one clear line; a
    ``with`` block or a decorator (``@model_errors()``)."""
    from gristmill.models.errors import ModelError  # the models package loads only when used

    try:
        yield
    except ModelError as exc:
        raise UserError(str(exc)) from exc


class Bars:
    """Bars on one progress display. ``bars(description, total)`` adds one and returns
    what advances it by n; ``bars.update(label, done, total)`` sets the bar named
    ``label`` (added on first use), the stages' ``on_progress`` callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._labels: dict[str, TaskID] = {}

    def __call__(self, description: str, total: int | None) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)
        return lambda n: self.progress.advance(task, n)

    def update(self, label: str, done: int, total: int) -> None:
        if label not in self._labels:
            self._labels[label] = self.progress.add_task(label, total=total)
        self.progress.update(self._labels[label], completed=done)


@contextlib.contextmanager
def progress_bars(out: Console | None = None, *, remaining: bool = False) -> Iterator[Bars]:
    """A transient progress display (on ``out``, default the console): description,
    bar, done/total, elapsed (and time remaining)."""
    columns: list[ProgressColumn] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console if out is None else out, transient=True) as progress:
        yield Bars(progress)


def workspace_from(ctx: click.Context) -> Workspace:
    """The workspace named by --workspace / $GRISTMILL_WORKSPACE / the folders above."""
    root: Path | None = ctx.find_root().obj.get("workspace") if ctx.find_root().obj else None
    try:
        return Workspace.find(root)
    except StoreError as exc:
        raise UserError(str(exc)) from exc
