"""What every command shares: the console, the workspace option, friendly errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

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


def workspace_from(ctx: click.Context) -> Workspace:
    """The workspace named by --workspace / $GRISTMILL_WORKSPACE / the folders above."""
    root: Path | None = ctx.find_root().obj.get("workspace") if ctx.find_root().obj else None
    try:
        return Workspace.find(root)
    except StoreError as exc:
        raise UserError(str(exc)) from exc
