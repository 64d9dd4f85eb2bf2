"""Request dependencies: the app state, who is asking (session or Bearer token, with
CSRF for cookie requests), and project access checks.

Denials: no credentials → 401; a project you are not a member of → 404 (its
existence is not revealed); a member whose role is too low → 403."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from gristmill.annotate.projects import Project
from gristmill.annotate.tables import audit as audit_table
from gristmill.annotate.tables import utcnow
from gristmill.server.auth import (
    SESSION_COOKIE,
    Principal,
    at_least,
    csrf_ok,
    from_session,
    from_token,
    project_role,
)
from gristmill.server.throttle import LoginLimits
from gristmill.store import Workspace

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    engine: sa.Engine
    workspace: Workspace
    db_url: str
    webhooks: Any = None  # server.webhooks.Dispatcher
    model_cache: str | None = None
    login_limits: LoginLimits = field(default_factory=LoginLimits)

    @contextmanager
    def tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn


def state(request: Request) -> AppState:
    return request.app.state.gm  # type: ignore[no-any-return]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(
    conn: sa.Connection,
    who: Principal | None,
    action: str,
    *,
    project_id: int | None = None,
    record_id: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    username: str | None = None,
) -> None:
    """One line of the audit log: who saw or changed what, and when."""
    conn.execute(
        audit_table.insert().values(
            at=utcnow(),
            user_id=who.id if who else None,
            username=who.username if who else username,
            action=action,
            project_id=project_id,
            record_id=record_id,
            detail=detail,
            ip=ip,
        )
    )


def _lookup(st: AppState, request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if bearer is None and not cookie:
        return None  # anonymous: no database work
    with st.tx() as conn:
        if bearer is not None:
            p = from_token(conn, bearer)
            if p is None:
                raise HTTPException(401, "invalid API token")
            return p
        assert cookie is not None
        return from_session(conn, cookie)


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None; cookie requests that change something must carry the
    session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``)."""
    p = await run_in_threadpool(_lookup, state(request), request)
    if p is not None and p.via == "session" and request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not csrf_ok(p.csrf_token, given):
            raise HTTPException(403, "CSRF token missing or wrong")
    return p


async def principal(request: Request) -> Principal:
    p = await optional_principal(request)
    if p is None:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"})
    return p


def global_role(needed: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    async def dep(request: Request) -> Principal:
        p = await principal(request)
        if not at_least(p.role, needed):
            raise HTTPException(403, f"needs the global role {needed} or higher")
        return p

    return dep


@dataclass
class Access:
    who: Principal
    project: Project
    role: str
    st: AppState
    ip: str | None

    @property
    def can_review(self) -> bool:
        return at_least(self.role, "reviewer")

    @property
    def can_admin(self) -> bool:
        return at_least(self.role, "admin")

    def audit(
        self,
        conn: sa.Connection,
        action: str,
        detail: dict[str, Any] | None = None,
        record_id: str | None = None,
    ) -> None:
        """``audit`` of this caller's ``action`` in this project, from their address."""
        audit(
            conn,
            self.who,
            action,
            project_id=self.project.id,
            record_id=record_id,
            detail=detail,
            ip=self.ip,
        )


def check_project(st: AppState, who: Principal, pid: int, needed: str) -> tuple[Project, str]:
    with st.tx() as conn:
        project = Project.load(conn, pid)
        role = project_role(conn, who, pid) if project else None
    if project is None or role is None:
        raise HTTPException(404, "no such project")
    if not at_least(role, needed):
        raise HTTPException(403, f"needs the project role {needed} or higher (you are {role})")
    return project, role


def project_access(needed: str) -> Callable[[Request, int], Coroutine[Any, Any, Access]]:
    """Dependency: the caller must hold at least ``needed`` in project ``pid``."""

    async def dep(request: Request, pid: int) -> Access:
        who = await principal(request)
        st = state(request)
        project, role = await run_in_threadpool(check_project, st, who, pid, needed)
        return Access(who, project, role, st, client_ip(request))

    return dep
