"""`gristmill serve`, `gristmill user`, `gristmill project`: the annotation app.

gristmill serve --port 8000                        # SQLite in the workspace
gristmill serve --db postgresql+psycopg://u:p@host/db
gristmill user add alice --role annotator --password-stdin
gristmill project create reviews --from amazon@1 --questions q.yaml --overlap 3
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson
import yaml
from rich.table import Table

from gristmill.commands.common import (
    UserError,
    console,
    err_console,
    friendly_errors,
    workspace_from,
)

if TYPE_CHECKING:
    from gristmill.server.deps import AppState

ROLE_CHOICE = click.Choice(["owner", "admin", "reviewer", "annotator"])
db_option = click.option(
    "--db",
    "db_url",
    default=None,
    envvar="GRISTMILL_DB",
    help="Database URL: sqlite:///path or postgresql+psycopg://user:pass@host/db "
    "(default: $GRISTMILL_DB, else <workspace>/app.sqlite).",
)


def _state(ctx: click.Context, db_url: str | None) -> AppState:
    from gristmill.server.app import open_state

    return open_state(workspace_from(ctx), db_url)


@click.command("serve", short_help="Run the annotation web app.")
@click.option(
    "--workspace",
    "-w",
    "workspace_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace folder (same as `gristmill --workspace W serve`).",
)
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--demo", is_flag=True, help="Seed demo projects (HH-RLHF, LIMA) and a demo login.")
@click.pass_context
@friendly_errors
def serve(
    ctx: click.Context,
    workspace_dir: Path | None,
    db_url: str | None,
    host: str,
    port: int,
    demo: bool,
) -> None:
    """Serve the data trainers' app (pages and the REST API; OpenAPI at /docs)."""
    from gristmill.server.app import create_app
    from gristmill.server.app import serve as run_server
    from gristmill.store import Workspace

    workspace = Workspace(workspace_dir) if workspace_dir else workspace_from(ctx)
    if demo:
        from gristmill.server.demo import seed_demo

        path, username, password = seed_demo(workspace, db_url)
        console.print(f"demo: open http://{host}:{port}{path}")
        console.print(f"demo login: [bold]{username}[/] / [bold]{password}[/]")
    app = create_app(workspace, db_url)
    console.print(f"gristmill app on http://{host}:{port}  (database: {app.state.gm.db_url})")
    run_server(app, host, port)


# -- users ----------------------------------------------------------------------------


@click.group("user", short_help="Users of the annotation app.")
def user() -> None:
    """Add users, list them, and issue API tokens."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, default="annotator", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@db_option
@click.pass_context
@friendly_errors
def user_add(
    ctx: click.Context, name: str, role: str, password_stdin: bool, db_url: str | None
) -> None:
    """Create user NAME (without a password they can use API tokens only)."""
    from gristmill.server.auth import create_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UserError("no password on stdin")
    st = _state(ctx, db_url)
    with st.tx() as conn:
        create_user(conn, name, role, password)
    console.print(f"added user {name} ({role}){'' if password else ', API tokens only'}")


@user.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="A name for the token.")
@db_option
@click.pass_context
@friendly_errors
def user_token(ctx: click.Context, name: str, label: str, db_url: str | None) -> None:
    """Print a new API token for NAME (for the SDK: Client(url, token))."""
    from gristmill.server.auth import new_api_token, user_id

    st = _state(ctx, db_url)
    with st.tx() as conn:
        uid = user_id(conn, name)
        if uid is None:
            raise UserError(f"no user {name!r}; add one with `gristmill user add {name}`")
        token = new_api_token(conn, uid, label)
    click.echo(token)


@user.command("ls")
@db_option
@click.pass_context
@friendly_errors
def user_ls(ctx: click.Context, db_url: str | None) -> None:
    """List users and their global roles."""
    import sqlalchemy as sa

    from gristmill.annotate.tables import users

    st = _state(ctx, db_url)
    with st.tx() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
    table = Table("user", "role", "password", "active")
    for r in rows:
        table.add_row(r.username, r.role, "yes" if r.password_hash else "no", str(r.active))
    console.print(table)


# -- projects -------------------------------------------------------------------------


def _read_structured(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{what}: cannot read {path}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML/JSON: {exc}") from exc


def read_gold(path: Path) -> dict[str, dict[str, Any]]:
    """Gold answers: JSONL/JSON rows ``{"record_id": ..., "values": {question: value}}``
    (or the questions as top-level keys beside ``record_id``/``id``)."""
    text = path.read_text()
    rows: list[tuple[int, Any]]
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = list(enumerate(orjson.loads(text), start=1))
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((n, orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise UserError(f"{path}:{n}: not JSON: {exc}") from exc
    gold: dict[str, dict[str, Any]] = {}
    for n, row in rows:
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected an object")
        rid = row.get("record_id", row.get("id"))
        if rid is None:
            raise UserError(f"{path}:{n}: missing record_id")
        values = row.get("values")
        if values is None:
            values = {k: v for k, v in row.items() if k not in ("record_id", "id")}
        if not isinstance(values, dict) or not values:
            raise UserError(f"{path}:{n}: no answers given")
        gold[str(rid)] = values
    return gold


@click.group("project", short_help="Annotation projects: create, list, members, export.")
def project() -> None:
    """Create projects from dataset versions and manage them."""


@project.command("create")
@click.argument("name")
@click.option("--from", "dataset_ref", required=True, metavar="DATASET@N")
@click.option(
    "--questions",
    "questions_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON list of questions (see docs/annotate.md).",
)
@click.option("--guidelines", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overlap", type=int, default=1, show_default=True, help="Answers per record.")
@click.option(
    "--gold-from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL of gold answers: {record_id, values}.",
)
@click.option(
    "--gold-rate",
    type=float,
    default=None,
    help="Share of tasks that are gold (default 0.1 with --gold-from, else 0).",
)
@click.option(
    "--order-by",
    default=None,
    metavar="ATTR[:asc]",
    help="Order by an attribute (highest first), e.g. uncertainty.",
)
@click.option("--random-order", is_flag=True, help="Seeded random order.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N records.")
@click.option("--no-suggestions", is_flag=True, help="Do not show suggestions to annotators.")
@click.option(
    "--suggest-from",
    default=None,
    metavar="MODEL|attribute:NAME",
    help="Pre-fill suggestions from a model (smollm2, openai:…) or an attribute.",
)
@click.option("--owner", default=None, help="User who owns the project (default: none).")
@db_option
@click.pass_context
@friendly_errors
def project_create(
    ctx: click.Context,
    name: str,
    dataset_ref: str,
    questions_file: Path,
    guidelines: Path | None,
    overlap: int,
    gold_from: Path | None,
    gold_rate: float | None,
    order_by: str | None,
    random_order: bool,
    seed: int,
    limit: int | None,
    no_suggestions: bool,
    suggest_from: str | None,
    owner: str | None,
    db_url: str | None,
) -> None:
    """Create project NAME from a dataset version with a set of questions."""
    import sqlalchemy as sa

    from gristmill.annotate import suggestions as sugg
    from gristmill.annotate.projects import Project, create_project, iter_views
    from gristmill.annotate.questions import parse_questions
    from gristmill.annotate.tables import items
    from gristmill.server.auth import user_id

    if order_by and random_order:
        raise UserError("choose --order-by or --random-order, not both")
    questions = _read_structured(questions_file, "--questions")
    try:
        parse_questions(questions)
    except ValueError as exc:
        raise UserError(f"{questions_file}: {exc}") from exc
    gold = read_gold(gold_from) if gold_from else None
    settings = {
        "overlap": overlap,
        "gold_rate": gold_rate if gold_rate is not None else (0.1 if gold else 0.0),
        "order": f"attribute:{order_by}" if order_by else ("random" if random_order else "dataset"),
        "seed": seed,
        "show_suggestions": not no_suggestions,
    }
    st = _state(ctx, db_url)
    with st.tx() as conn:
        owner_id = None
        if owner:
            owner_id = user_id(conn, owner)
            if owner_id is None:
                raise UserError(f"no user {owner!r}")
        pid = create_project(
            conn,
            st.workspace,
            name=name,
            questions=questions,
            dataset_ref=dataset_ref,
            guidelines=guidelines.read_text() if guidelines else "",
            settings=settings,
            gold=gold,
            created_by=owner_id,
            limit=limit,
        )
        proj = Project.load(conn, pid)
        n = conn.execute(sa.select(sa.func.count()).where(items.c.project_id == pid)).scalar_one()
    assert proj is not None
    console.print(
        f"project {pid} [bold]{name}[/]: {n} records from {proj.dataset_ref}, "
        f"{len(proj.questions)} questions, overlap {overlap}"
    )
    if suggest_from:
        with st.tx() as conn:
            views = list(iter_views(conn, pid))
        err_console.print(f"[dim]suggestions from {suggest_from} for {len(views)} records…[/]")
        rows = sugg.generate(st.workspace, proj, suggest_from, views, cache=st.model_cache)
        with st.tx() as conn:
            stored = sugg.store(conn, proj, rows)
        console.print(f"stored {stored} suggestions from {suggest_from}")


def _project(st: AppState, ref: str) -> Any:
    import sqlalchemy as sa

    from gristmill.annotate.projects import Project
    from gristmill.annotate.tables import projects

    with st.tx() as conn:
        pid = conn.execute(
            sa.select(projects.c.id).where(
                projects.c.name == ref if not ref.isdigit() else projects.c.id == int(ref)
            )
        ).scalar()
        proj = Project.load(conn, pid) if pid is not None else None
    if proj is None:
        raise UserError(f"no project {ref!r}; see `gristmill project ls`")
    return proj


@project.command("ls")
@db_option
@click.pass_context
@friendly_errors
def project_ls(ctx: click.Context, db_url: str | None) -> None:
    """List projects with their progress."""
    import sqlalchemy as sa

    from gristmill.annotate.projects import Project
    from gristmill.annotate.queue import project_progress
    from gristmill.annotate.tables import projects

    st = _state(ctx, db_url)
    table = Table("id", "name", "dataset", "questions", "overlap", "completed")
    with st.tx() as conn:
        for row in conn.execute(sa.select(projects).order_by(projects.c.id)).all():
            p = Project(row)
            prog = project_progress(conn, p)
            table.add_row(
                str(p.id),
                p.name,
                p.dataset_ref or "-",
                str(len(p.questions)),
                str(p.settings.overlap),
                f"{prog['completed_records']}/{prog['total_records']}",
            )
    console.print(table)


@project.command("members")
@click.argument("project_ref", metavar="PROJECT")
@click.option("--add", "add", multiple=True, metavar="USER", help="Add (or change) a member.")
@click.option("--role", type=ROLE_CHOICE, default="annotator", show_default=True)
@click.option("--remove", multiple=True, metavar="USER")
@db_option
@click.pass_context
@friendly_errors
def project_members(
    ctx: click.Context,
    project_ref: str,
    add: tuple[str, ...],
    role: str,
    remove: tuple[str, ...],
    db_url: str | None,
) -> None:
    """List PROJECT's members (name or id); --add/--remove change them."""
    import sqlalchemy as sa

    from gristmill.annotate.tables import members, users
    from gristmill.server.auth import user_id
    from gristmill.server.deps import audit

    st = _state(ctx, db_url)
    proj = _project(st, project_ref)
    with st.tx() as conn:
        for name in (*add, *remove):
            uid = user_id(conn, name)
            if uid is None:
                raise UserError(f"no user {name!r}")
            conn.execute(
                members.delete().where(members.c.project_id == proj.id, members.c.user_id == uid)
            )
            if name in add:
                conn.execute(members.insert().values(project_id=proj.id, user_id=uid, role=role))
            audit(
                conn,
                None,
                "member.set" if name in add else "member.removed",
                project_id=proj.id,
                detail={"username": name, "role": role if name in add else None, "via": "cli"},
                username="cli",
            )
        rows = conn.execute(
            sa.select(users.c.username, members.c.role)
            .join(members, members.c.user_id == users.c.id)
            .where(members.c.project_id == proj.id)
            .order_by(users.c.username)
        ).all()
    table = Table("user", "role", title=f"members of {proj.name}")
    for r in rows:
        table.add_row(r.username, r.role)
    console.print(table)


@project.command("export")
@click.argument("project_ref", metavar="PROJECT")
@click.option("--method", default="auto", show_default=True, help="Aggregation method.")
@db_option
@click.pass_context
@friendly_errors
def project_export(ctx: click.Context, project_ref: str, method: str, db_url: str | None) -> None:
    """Aggregate PROJECT's answers and write them back as a new dataset version."""
    from gristmill.server.api.qc import export_project
    from gristmill.server.deps import audit

    st = _state(ctx, db_url)
    proj = _project(st, project_ref)
    version = export_project(st, proj, method)
    with st.tx() as conn:
        audit(
            conn,
            None,
            "project.exported",
            project_id=proj.id,
            detail={"ref": version.ref, "method": method, "via": "cli"},
            username="cli",
        )
    console.print(
        f"wrote {version.ref} ({version.row_count} records); "
        f"try `gristmill export {version.ref} --format trl-preference -o pairs.jsonl`"
    )


COMMANDS = [serve, project, user]
