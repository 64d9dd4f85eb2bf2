"""``/api/me``, API tokens, and users (global owner/admin)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from gristmill.annotate.tables import audit as audit_table
from gristmill.annotate.tables import users
from gristmill.server.auth import Principal, create_user, new_api_token
from gristmill.server.deps import audit, client_ip, global_role, principal, state

router = APIRouter(prefix="/api", tags=["users"])
Who = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(global_role("admin"))]


@router.get("/me")
def me(who: Who) -> dict[str, Any]:
    """The signed-in user."""
    return who.as_user()


class TokenIn(BaseModel):
    name: str = Field(default="default", max_length=64)


@router.post("/me/tokens")
def create_token(body: TokenIn, who: Who, request: Request) -> dict[str, str]:
    """A new API token for the caller (shown once; only its hash is stored)."""
    with state(request).tx() as conn:
        token = new_api_token(conn, who.id, body.name)
        audit(conn, who, "token.created", detail={"name": body.name}, ip=client_ip(request))
    return {"token": token}


class UserIn(BaseModel):
    username: str
    role: str = "annotator"
    password: str | None = None


@router.get("/users")
def list_users(who: Admin, request: Request) -> list[dict[str, Any]]:
    with state(request).tx() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.id)).all()
    return [{"id": r.id, "username": r.username, "role": r.role, "active": r.active} for r in rows]


@router.post("/users", status_code=201)
def add_user(body: UserIn, who: Admin, request: Request) -> dict[str, Any]:
    """Create a user (an admin may not create owners)."""
    if body.role == "owner" and who.role != "owner":
        raise HTTPException(403, "only an owner can create another owner")
    with state(request).tx() as conn:
        try:
            uid = create_user(conn, body.username, body.role, body.password)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        audit(
            conn,
            who,
            "user.created",
            detail={"username": body.username, "role": body.role},
            ip=client_ip(request),
        )
    return {"id": uid, "username": body.username, "role": body.role}


@router.get("/audit")
def global_audit(who: Admin, request: Request, limit: int = 200) -> list[dict[str, Any]]:
    """The latest audit entries across the instance (logins, users, projects)."""
    with state(request).tx() as conn:
        rows = conn.execute(
            sa.select(audit_table).order_by(audit_table.c.id.desc()).limit(min(limit, 5000))
        ).all()
    return [audit_row(r) for r in rows]


def audit_row(r: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.at.isoformat() + "Z",
        "user": r.username,
        "action": r.action,
        "project_id": r.project_id,
        "record_id": r.record_id,
        "detail": r.detail,
        "ip": r.ip,
    }
