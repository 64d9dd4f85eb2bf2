"""Webhook registration per project (project admins)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from gristmill.annotate.tables import deliveries, inserted_id, utcnow, webhooks
from gristmill.server.deps import Access, project_access
from gristmill.server.webhooks import EVENTS

router = APIRouter(prefix="/api/projects", tags=["webhooks"])
Admin = Annotated[Access, Depends(project_access("admin"))]


class WebhookIn(BaseModel):
    url: str = Field(pattern=r"^https?://")
    events: list[str] = Field(default_factory=lambda: list(EVENTS))
    secret: str | None = Field(default=None, min_length=16, description="default: generated")


def _hook(r: sa.Row[Any]) -> dict[str, Any]:
    return {"id": r.id, "url": r.url, "events": r.events, "active": r.active}


@router.get("/{pid}/webhooks")
def list_webhooks(a: Admin) -> list[dict[str, Any]]:
    with a.st.tx() as conn:
        rows = conn.execute(sa.select(webhooks).where(webhooks.c.project_id == a.project.id)).all()
    return [_hook(r) for r in rows]


@router.post("/{pid}/webhooks", status_code=201)
def add_webhook(body: WebhookIn, a: Admin) -> dict[str, Any]:
    """Register a URL; the response carries the signing secret (shown once)."""
    bad = sorted(set(body.events) - set(EVENTS))
    if bad or not body.events:
        raise HTTPException(422, f"events must be among {', '.join(EVENTS)}")
    secret = body.secret or secrets.token_hex(32)
    with a.st.tx() as conn:
        wid = inserted_id(
            conn.execute(
                webhooks.insert().values(
                    project_id=a.project.id,
                    url=body.url,
                    secret=secret,
                    events=body.events,
                    active=True,
                    created_at=utcnow(),
                )
            )
        )
        a.audit(conn, "webhook.created", {"id": wid, "url": body.url})
    return {"id": wid, "url": body.url, "events": body.events, "active": True, "secret": secret}


@router.delete("/{pid}/webhooks/{wid}", status_code=204)
def delete_webhook(wid: int, a: Admin) -> Response:
    with a.st.tx() as conn:
        n = conn.execute(
            webhooks.delete().where(webhooks.c.id == wid, webhooks.c.project_id == a.project.id)
        ).rowcount
        if not n:
            raise HTTPException(404, "no such webhook")
        a.audit(conn, "webhook.deleted", {"id": wid})
    return Response(status_code=204)


@router.get("/{pid}/webhooks/{wid}/deliveries")
def list_deliveries(wid: int, a: Admin) -> list[dict[str, Any]]:
    """Delivery attempts of one webhook: status, attempts, response code, error."""
    with a.st.tx() as conn:
        owner = conn.execute(
            sa.select(webhooks.c.id).where(
                webhooks.c.id == wid, webhooks.c.project_id == a.project.id
            )
        ).first()
        if owner is None:
            raise HTTPException(404, "no such webhook")
        rows = conn.execute(
            sa.select(deliveries).where(deliveries.c.webhook_id == wid).order_by(deliveries.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "event": r.event,
            "status": r.status,
            "attempts": r.attempts,
            "response_code": r.response_code,
            "error": r.error,
        }
        for r in rows
    ]
