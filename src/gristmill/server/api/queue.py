"""The annotator's loop: ``next`` and ``answers``; answers in long format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gristmill.annotate.queue import (
    InvalidAnswer,
    QueueError,
    next_task,
    project_progress,
    record_suggestions,
    save_answer,
    user_progress,
)
from gristmill.annotate.tables import answers, items, users
from gristmill.server.deps import Access, project_access

router = APIRouter(prefix="/api/projects", tags=["queue"])
Member = Annotated[Access, Depends(project_access("annotator"))]
Reviewer = Annotated[Access, Depends(project_access("reviewer"))]


@router.get("/{pid}/next", responses={204: {"description": "nothing left for this user"}})
def next_record(a: Member) -> Any:
    """The next record for the caller (leased to them), or 204 when none is left."""
    with a.st.tx() as conn:
        task = next_task(conn, a.project, a.who.id)
        if task is None:
            return Response(status_code=204)
        shown = (
            record_suggestions(conn, a.project.id, task.record_id)
            if a.project.settings.show_suggestions
            else []
        )
        progress = user_progress(conn, a.project, a.who.id)
        a.audit(conn, "record.served", record_id=task.record_id)
    return {
        "record": task.view,
        "questions": a.project.question_list,
        "suggestions": shown,
        "draft": task.draft,
        "progress": progress,
        "is_gold": False,  # never revealed to the annotator
    }


class AnswerIn(BaseModel):
    values: dict[str, Any] = Field(default_factory=dict)
    status: Literal["submitted", "draft", "skipped"] = "submitted"


@router.post(
    "/{pid}/records/{rid}/answers",
    responses={422: {"description": '{"detail": [{"question", "error"}]}'}, 409: {}},
)
def answer(rid: str, body: AnswerIn, a: Member) -> Any:
    """Submit, save as draft, or skip the caller's answer to a record."""
    with a.st.tx() as conn:
        try:
            saved = save_answer(conn, a.project, a.who.id, rid, body.values, body.status)
        except InvalidAnswer as exc:
            return JSONResponse({"detail": exc.problems}, status_code=422)
        except QueueError as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        a.audit(
            conn,
            f"answer.{saved.status}",
            {"answer_id": saved.answer_id, "accepted_suggestion": saved.accepted},
            record_id=rid,
        )
        progress = user_progress(conn, a.project, a.who.id)
    if saved.event and a.st.webhooks is not None:
        a.st.webhooks.emit(
            a.project.id,
            saved.event,
            {
                "project_id": a.project.id,
                "record_id": rid,
                "annotator": a.who.username,
                "answer_id": saved.answer_id,
                "values": saved.values,
                "accepted_suggestion": saved.accepted,
            },
        )
    return {"ok": True, "status": saved.status, "progress": progress}


def long_answers(
    conn: sa.Connection, pid: int, status: str | None = "submitted", question: str | None = None
) -> list[dict[str, Any]]:
    """One row per answer and question: record_id, annotator, question, value,
    status, accepted_suggestion, is_gold, updated_at."""
    q = (
        sa.select(
            answers.c.record_id,
            users.c.username,
            answers.c.status,
            answers.c.payload,
            answers.c.accepted,
            answers.c.updated_at,
            items.c.is_gold,
        )
        .join(users, users.c.id == answers.c.user_id)
        .join(
            items,
            sa.and_(
                items.c.project_id == answers.c.project_id, items.c.record_id == answers.c.record_id
            ),
        )
        .where(answers.c.project_id == pid)
        .order_by(items.c.position, users.c.username)
    )
    if status is not None:
        q = q.where(answers.c.status == status)
    out: list[dict[str, Any]] = []
    for r in conn.execute(q):
        for name, value in (r.payload or {}).items():
            if question is not None and name != question:
                continue
            out.append(
                {
                    "record_id": r.record_id,
                    "annotator": r.username,
                    "question": name,
                    "value": value,
                    "status": r.status,
                    "accepted_suggestion": (r.accepted or {}).get(name),
                    "is_gold": bool(r.is_gold),
                    "updated_at": r.updated_at.isoformat() + "Z",
                }
            )
        if not r.payload and (question is None):
            out.append(
                {
                    "record_id": r.record_id,
                    "annotator": r.username,
                    "question": None,
                    "value": None,
                    "status": r.status,
                    "accepted_suggestion": None,
                    "is_gold": bool(r.is_gold),
                    "updated_at": r.updated_at.isoformat() + "Z",
                }
            )
    return out


@router.get("/{pid}/answers")
def list_answers(
    a: Reviewer,
    status: Literal["submitted", "draft", "skipped", "all"] = "submitted",
    question: str | None = None,
) -> list[dict[str, Any]]:
    """Answers in long format (one row per record, annotator and question)."""
    with a.st.tx() as conn:
        rows = long_answers(conn, a.project.id, None if status == "all" else status, question)
        a.audit(conn, "answers.read", {"rows": len(rows), "status": status})
    return rows


@router.get("/{pid}/progress")
def progress(a: Member) -> dict[str, Any]:
    """The caller's own progress and the project's totals."""
    with a.st.tx() as conn:
        return {
            "mine": user_progress(conn, a.project, a.who.id),
            **project_progress(conn, a.project),
        }
