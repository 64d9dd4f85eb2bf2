"""Projects, members, records, gold and suggestions."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gristmill.annotate import suggestions as sugg
from gristmill.annotate.projects import (
    ROLES,
    Project,
    Settings,
    create_project,
    insert_items,
    iter_views,
    record_from_json,
    set_gold,
    version_records,
)
from gristmill.annotate.queue import project_progress, refresh_complete, user_progress
from gristmill.annotate.tables import answers, items, members, projects, slots, users
from gristmill.server.auth import RANK, Principal, at_least, member_role, user_id
from gristmill.server.deps import (
    Access,
    audit,
    client_ip,
    global_role,
    principal,
    project_access,
    state,
)
from gristmill.store import StoreError

router = APIRouter(prefix="/api/projects", tags=["projects"])
Who = Annotated[Principal, Depends(principal)]
Creator = Annotated[Principal, Depends(global_role("admin"))]
Member = Annotated[Access, Depends(project_access("annotator"))]
Reviewer = Annotated[Access, Depends(project_access("reviewer"))]
Admin = Annotated[Access, Depends(project_access("admin"))]
Owner = Annotated[Access, Depends(project_access("owner"))]


def visible_projects(conn: sa.Connection, who: Principal) -> list[tuple[Project, str]]:
    """The projects the user may see, with their role in each."""
    if who.role == "owner":
        rows = conn.execute(sa.select(projects).order_by(projects.c.id)).all()
        return [(Project(r), "owner") for r in rows]
    rows = conn.execute(
        sa.select(projects, members.c.role.label("member_role"))
        .join(members, members.c.project_id == projects.c.id)
        .where(members.c.user_id == who.id)
        .order_by(projects.c.id)
    ).all()
    return [(Project(r), r.member_role) for r in rows]


@router.get("")
def list_projects(who: Who, request: Request) -> list[dict[str, Any]]:
    """Projects the caller is a member of (all of them for a global owner)."""
    with state(request).tx() as conn:
        out = []
        for p, role in visible_projects(conn, who):
            prog = user_progress(conn, p, who.id)
            out.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "dataset_ref": p.dataset_ref,
                    "role": role,
                    "progress": {
                        **prog,
                        "pct": round(100 * prog["done"] / prog["total"]) if prog["total"] else 100,
                    },
                }
            )
    return out


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    dataset_ref: str | None = Field(default=None, description="NAME@N of the dataset version")
    questions: list[dict[str, Any]]
    guidelines: str = ""
    settings: Settings = Field(default_factory=Settings)
    gold: dict[str, dict[str, Any]] | None = None
    records: list[dict[str, Any]] | None = Field(default=None, description="records pushed as is")
    limit: int | None = Field(default=None, ge=1, description="first N records of the version")


def _create(st: Any, who: Principal, body: ProjectIn, ip: str | None) -> dict[str, Any]:
    records = [record_from_json(r, f"records[{i}]") for i, r in enumerate(body.records or [])]
    with st.tx() as conn:
        pid = create_project(
            conn,
            st.workspace,
            name=body.name,
            questions=body.questions,
            dataset_ref=body.dataset_ref,
            records=records,
            guidelines=body.guidelines,
            settings=body.settings,
            gold=body.gold,
            created_by=who.id,
            limit=body.limit,
        )
        project = Project.load(conn, pid)
        assert project is not None
        audit(
            conn,
            who,
            "project.created",
            project_id=pid,
            detail={"name": body.name, "dataset_ref": project.dataset_ref},
            ip=ip,
        )
        n = conn.execute(sa.select(sa.func.count()).where(items.c.project_id == pid)).scalar_one()
    return {**project.as_dict(), "records": int(n)}


@router.post("", status_code=201)
async def new_project(body: ProjectIn, who: Creator, request: Request) -> dict[str, Any]:
    """Create a project from a dataset version and/or records (global admin or owner);
    the creator becomes the project's owner."""
    try:
        return await run_in_threadpool(_create, state(request), who, body, client_ip(request))
    except (ValueError, StoreError) as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/{pid}")
def get_project(a: Member) -> dict[str, Any]:
    with a.st.tx() as conn:
        prog = project_progress(conn, a.project)
    return {**a.project.as_dict(), "role": a.role, "progress": prog}


class ProjectPatch(BaseModel):
    guidelines: str | None = None
    settings: dict[str, Any] | None = None


@router.patch("/{pid}")
def update_project(body: ProjectPatch, a: Admin) -> dict[str, Any]:
    """Change guidelines or settings (merged into the current settings)."""
    values: dict[str, Any] = {}
    if body.guidelines is not None:
        values["guidelines"] = body.guidelines
    if body.settings is not None:
        try:
            merged = Settings.model_validate({**a.project.settings.model_dump(), **body.settings})
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        values["settings"] = merged.model_dump()
    with a.st.tx() as conn:
        if values:
            conn.execute(projects.update().where(projects.c.id == a.project.id).values(**values))
        if "settings" in values and values["settings"]["overlap"] != a.project.settings.overlap:
            refresh_complete(conn, a.project.id, values["settings"]["overlap"])
        a.audit(
            conn,
            "project.updated",
            {k: v for k, v in values.items() if k == "settings"} or {"guidelines": True},
        )
        project = Project.load(conn, a.project.id)
    assert project is not None
    return project.as_dict()


@router.delete("/{pid}", status_code=204)
def delete_project(a: Owner) -> Response:
    with a.st.tx() as conn:
        conn.execute(projects.delete().where(projects.c.id == a.project.id))
        a.audit(conn, "project.deleted", {"name": a.project.name})
    return Response(status_code=204)


# -- members --------------------------------------------------------------------------


@router.get("/{pid}/members")
def list_members(a: Reviewer) -> list[dict[str, Any]]:
    with a.st.tx() as conn:
        rows = conn.execute(
            sa.select(users.c.username, members.c.role)
            .join(members, members.c.user_id == users.c.id)
            .where(members.c.project_id == a.project.id)
            .order_by(users.c.username)
        ).all()
    return [{"username": r.username, "role": r.role} for r in rows]


class MemberIn(BaseModel):
    role: str = "annotator"


def _user_id(conn: sa.Connection, username: str) -> int:
    uid = user_id(conn, username)
    if uid is None:
        raise HTTPException(404, f"no user {username!r}")
    return uid


@router.put("/{pid}/members/{username}")
def put_member(username: str, body: MemberIn, a: Admin) -> dict[str, Any]:
    """Add a member or change their role; granting or taking admin/owner needs owner."""
    if body.role not in ROLES:
        raise HTTPException(422, f"role must be one of {', '.join(ROLES)}")
    with a.st.tx() as conn:
        uid = _user_id(conn, username)
        current = member_role(conn, a.project.id, uid)
        top = max(RANK[body.role], RANK[current] if current else 0)
        if top >= RANK["admin"] and not at_least(a.role, "owner"):
            raise HTTPException(403, "only a project owner can grant or change admin/owner roles")
        if current is None:
            conn.execute(
                members.insert().values(project_id=a.project.id, user_id=uid, role=body.role)
            )
        else:
            conn.execute(
                members.update()
                .where(members.c.project_id == a.project.id, members.c.user_id == uid)
                .values(role=body.role)
            )
        a.audit(conn, "member.set", {"username": username, "role": body.role, "was": current})
    return {"username": username, "role": body.role}


@router.delete("/{pid}/members/{username}", status_code=204)
def remove_member(username: str, a: Admin) -> Response:
    with a.st.tx() as conn:
        uid = _user_id(conn, username)
        current = member_role(conn, a.project.id, uid)
        if current is None:
            raise HTTPException(404, f"{username} is not a member")
        if RANK[current] >= RANK["admin"] and not at_least(a.role, "owner"):
            raise HTTPException(403, "only a project owner can remove an admin or owner")
        conn.execute(
            members.delete().where(members.c.project_id == a.project.id, members.c.user_id == uid)
        )
        conn.execute(
            slots.delete().where(
                slots.c.project_id == a.project.id, slots.c.user_id == uid, slots.c.done.is_(False)
            )
        )
        a.audit(conn, "member.removed", {"username": username, "was": current})
    return Response(status_code=204)


# -- records, gold, suggestions -------------------------------------------------------


class RecordsIn(BaseModel):
    dataset_ref: str | None = Field(default=None, alias="from")
    limit: int | None = Field(default=None, ge=1)
    records: list[dict[str, Any]] | None = None
    gold: dict[str, dict[str, Any]] | None = None

    model_config = {"populate_by_name": True}


def _push(a: Access, body: RecordsIn) -> dict[str, Any]:
    recs = [record_from_json(r, f"records[{i}]") for i, r in enumerate(body.records or [])]
    if body.dataset_ref:
        _, more = version_records(a.st.workspace, body.dataset_ref, body.limit)
        recs = more + recs
    with a.st.tx() as conn:
        added, dupes = insert_items(conn, a.project.id, a.project.questions, recs, body.gold)
        a.audit(
            conn,
            "records.added",
            {"added": added, "already_present": dupes, "from": body.dataset_ref},
        )
    return {"added": added, "already_present": dupes}


@router.post("/{pid}/records")
async def push_records(body: RecordsIn, a: Admin) -> dict[str, Any]:
    """Append records: from a dataset version (``from``: NAME@N) and/or as JSON."""
    try:
        return await run_in_threadpool(_push, a, body)
    except (ValueError, StoreError) as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/{pid}/records/{rid}")
def get_record(rid: str, a: Member) -> dict[str, Any]:
    """One record's view. Annotators see only records they hold or have answered."""
    with a.st.tx() as conn:
        row = conn.execute(
            sa.select(items.c.view, items.c.is_gold, items.c.gold).where(
                items.c.project_id == a.project.id, items.c.record_id == rid
            )
        ).first()
        if row is None:
            raise HTTPException(404, "no such record")
        if not a.can_review:
            mine = (
                conn.execute(
                    sa.select(answers.c.id).where(
                        answers.c.project_id == a.project.id,
                        answers.c.record_id == rid,
                        answers.c.user_id == a.who.id,
                    )
                ).first()
                or conn.execute(
                    sa.select(slots.c.slot).where(
                        slots.c.project_id == a.project.id,
                        slots.c.record_id == rid,
                        slots.c.user_id == a.who.id,
                    )
                ).first()
            )
            if not mine:
                raise HTTPException(403, "annotators see only records assigned to them")
        a.audit(conn, "record.viewed", record_id=rid)
    out: dict[str, Any] = {"record": row.view}
    if a.can_review:
        out.update(is_gold=bool(row.is_gold), gold=row.gold)
    return out


class GoldIn(BaseModel):
    gold: dict[str, dict[str, Any]]


@router.post("/{pid}/gold")
def add_gold(body: GoldIn, a: Admin) -> dict[str, int]:
    """Mark records as gold, with their correct answers."""
    with a.st.tx() as conn:
        try:
            n = set_gold(conn, a.project.id, a.project.questions, body.gold)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        a.audit(conn, "gold.set", {"records": n})
    return {"gold": n}


class SuggestionsIn(BaseModel):
    suggestions: list[dict[str, Any]]


@router.post("/{pid}/suggestions")
def push_suggestions(body: SuggestionsIn, a: Admin) -> dict[str, int]:
    """Store suggestions: ``{record_id, question, value, score, agent}`` each."""
    with a.st.tx() as conn:
        try:
            n = sugg.store(conn, a.project, body.suggestions)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        a.audit(conn, "suggestions.added", {"n": n})
    return {"stored": n}


class GenerateIn(BaseModel):
    source: str = Field(description="a --model value (smollm2, openai:…) or attribute:NAME")
    questions: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=128, ge=1, le=4096)


def _generate(a: Access, body: GenerateIn) -> dict[str, Any]:
    with a.st.tx() as conn:  # read, then let the model work outside the transaction
        views = list(iter_views(conn, a.project.id))[: body.limit]
    rows = sugg.generate(
        a.st.workspace,
        a.project,
        body.source,
        views,
        body.questions,
        body.max_tokens,
        a.st.model_cache,
    )
    with a.st.tx() as conn:
        n = sugg.store(conn, a.project, rows)
        a.audit(conn, "suggestions.generated", {"source": body.source, "n": n})
    return {"stored": n, "source": body.source}


@router.post("/{pid}/suggestions/generate")
async def generate_suggestions(body: GenerateIn, a: Admin) -> dict[str, Any]:
    """Suggestions from a model backend or an attribute of the project's version."""
    try:
        return await run_in_threadpool(_generate, a, body)
    except (ValueError, StoreError) as exc:
        raise HTTPException(422, str(exc)) from exc
