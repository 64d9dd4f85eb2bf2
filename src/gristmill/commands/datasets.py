"""Workspace verbs: init, ls, show, head, log, diff, rm, query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import orjson
import pyarrow as pa
from rich.table import Table

from gristmill.commands.common import UserError, console, friendly_errors, workspace_from
from gristmill.store import Workspace
from gristmill.store.diff import diff_versions
from gristmill.store.query import run_query


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@click.command("init")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@friendly_errors
def init_cmd(path: Path) -> None:
    """Make a workspace folder (datasets, quarantine)."""
    ws = Workspace.init(path)
    console.print(f"workspace ready at [bold]{ws.root.resolve()}[/]")


@click.command("ls")
@click.pass_context
@friendly_errors
def ls_cmd(ctx: click.Context) -> None:
    """List datasets with their latest version, kind and size."""
    ws = workspace_from(ctx)
    names = ws.dataset_names()
    if not names:
        console.print("no datasets yet: `gristmill import FILE --as NAME`")
        return
    table = Table()
    for col in ("dataset", "latest", "versions", "kind", "rows", "size", "made by"):
        table.add_column(col)
    for name in names:
        versions = ws.versions(name)
        latest = versions[-1].manifest
        size = sum(s.bytes for s in latest.shards)
        table.add_row(
            name,
            f"@{latest.version}",
            str(len(versions)),
            latest.kind,
            f"{latest.row_count:,}",
            _human_bytes(size),
            latest.operation,
        )
    console.print(table)


@click.command("show", short_help="A version's manifest: kind, rows, parent, sources.")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
@friendly_errors
def show_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show a version's manifest: kind, rows, parent, operation, sources, attributes."""
    version = workspace_from(ctx).version(ref)
    m = version.manifest
    if as_json:
        click.echo(m.model_dump_json(indent=2))
        return
    console.print(f"[bold]{m.ref}[/]  {m.kind}, {m.row_count:,} rows, {len(m.shards)} shard(s)")
    console.print(
        f"  made by {m.operation} on {m.created_at:%Y-%m-%d %H:%M:%S} UTC by {m.created_by}"
    )
    console.print(f"  parent: {m.parent or '-'}")
    if m.params:
        console.print(f"  params: {json.dumps(m.params, default=str)}")
    for src in m.sources:
        console.print(
            f"  source: {src.path} ({src.format}, sha256 {src.sha256[:12]}…, "
            f"read {src.rows_read:,} = kept {src.kept:,} + quarantined {src.quarantined:,})"
        )
    if m.stats:
        console.print(f"  stats: {json.dumps(m.stats, default=str)}")
    attrs = version.attribute_names()
    console.print(f"  attributes: {', '.join(attrs) if attrs else '-'}")
    console.print(f"  path: {version.path}")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("meta"), str):
        out["meta"] = orjson.loads(out["meta"])
    return out


@click.command("head")
@click.argument("ref")
@click.option("-n", "count", default=5, show_default=True, help="How many records.")
@click.pass_context
@friendly_errors
def head_cmd(ctx: click.Context, ref: str, count: int) -> None:
    """Print the first records of a version as JSON lines."""
    version = workspace_from(ctx).version(ref)
    for i, row in enumerate(version.iter_rows()):
        if i >= count:
            break
        click.echo(orjson.dumps(_jsonable(row), default=str).decode())


@click.command("log")
@click.argument("ref")
@click.pass_context
@friendly_errors
def log_cmd(ctx: click.Context, ref: str) -> None:
    """Lineage: this version, its parents, back to the source files."""
    ws = workspace_from(ctx)
    chain = list(ws.lineage(ref))
    for m in chain:
        console.print(
            f"[bold]{m.ref}[/] {m.kind} {m.row_count:,} rows  ← {m.operation} "
            f"{json.dumps(m.params, default=str)}  ({m.created_at:%Y-%m-%d %H:%M} by {m.created_by})"
        )
        for src in m.sources:
            console.print(f"    from {src.path} sha256:{src.sha256[:16]} ({src.format})")
    if chain and chain[-1].parent:
        console.print(f"    parent {chain[-1].parent} no longer exists in this workspace")


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.pass_context
@friendly_errors
def diff_cmd(ctx: click.Context, old: str, new: str) -> None:
    """Compare two versions by record id: added, removed, changed."""
    ws = workspace_from(ctx)
    d = diff_versions(ws.version(old), ws.version(new))
    console.print(f"[bold]{d.old} → {d.new}[/]")
    console.print(
        f"  added {d.added:,}   removed {d.removed:,}   changed {d.changed:,}   unchanged {d.unchanged:,}"
    )
    for label, ids in (
        ("added", d.sample_added),
        ("removed", d.sample_removed),
        ("changed", d.sample_changed),
    ):
        if ids:
            console.print(f"  e.g. {label}: {', '.join(ids)}")


@click.command("rm", short_help="Delete a version or a dataset (asks first).")
@click.argument("ref")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@friendly_errors
def rm_cmd(ctx: click.Context, ref: str, yes: bool) -> None:
    """Delete a version (NAME@N) or a whole dataset (NAME), after confirmation."""
    ws = workspace_from(ctx)
    if "@" in ref:
        targets = [ws.version(ref).ref]
    else:
        targets = [v.ref for v in ws.versions(ref)]
        if not targets:
            raise UserError(f"no dataset named {ref!r}")
    if not yes and not click.confirm(f"delete {', '.join(targets)}?", default=False):
        console.print("nothing deleted")
        return
    removed = ws.remove(ref)
    console.print(f"deleted {', '.join(removed)}")


@click.command("query", short_help="SQL over every version and attribute (DuckDB).")
@click.argument("sql")
@click.option("--limit", default=50, show_default=True, help="Rows to print (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@click.pass_context
@friendly_errors
def query_cmd(ctx: click.Context, sql: str, limit: int, as_json: bool) -> None:
    """SQL with DuckDB. Views: NAME (latest), "NAME@N", "NAME@N/ATTRIBUTE"."""
    import duckdb

    ws = workspace_from(ctx)
    try:
        result = run_query(ws, sql)
    except duckdb.Error as exc:
        raise UserError(f"query failed: {exc}") from exc
    rows = result.slice(0, limit) if limit else result
    if as_json:
        for row in rows.to_pylist():
            click.echo(orjson.dumps(row, default=str).decode())
        return
    _print_table(rows)
    if limit and result.num_rows > limit:
        console.print(f"[dim]{result.num_rows - limit:,} more rows (--limit 0 for all)[/]")


def _print_table(table: pa.Table) -> None:
    out = Table()
    for name in table.column_names:
        out.add_column(name, overflow="fold", max_width=60)
    for row in table.to_pylist():
        out.add_row(*(_cell(v) for v in row.values()))
    console.print(out)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "…"


COMMANDS: list[click.Command] = [
    init_cmd,
    ls_cmd,
    show_cmd,
    head_cmd,
    log_cmd,
    diff_cmd,
    rm_cmd,
    query_cmd,
]
