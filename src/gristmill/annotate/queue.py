"""The assignment queue: who gets which record next, and how answers are stored.

A record needs ``overlap`` submitted answers. Each answer occupies a *slot* (a row
of ``slots`` keyed by record and slot number): a lease with an expiry while someone
works on it, then done once submitted. Because (record, slot) is a primary key, two
annotators can never hold the same last slot, on SQLite or PostgreSQL: the second
insert fails and that request moves on to another record. Gold records have no
slots (every annotator answers each once) and are mixed in at ``gold_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gristmill.annotate.projects import Project
from gristmill.annotate.questions import AnswerError, same_value
from gristmill.annotate.records_view import validate_in_view
from gristmill.annotate.tables import answers, inserted_id, items, slots, suggestions, utcnow

STATUSES = ("submitted", "draft", "skipped")


class QueueError(Exception):
    """A request the queue refuses (``status`` is the HTTP code the API answers)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Task:
    record_id: str
    view: dict[str, Any]
    is_gold: bool
    draft: dict[str, Any] | None


def _expire(conn: sa.Connection, pid: int, now: datetime) -> None:
    conn.execute(
        slots.delete().where(
            slots.c.project_id == pid, slots.c.done.is_(False), slots.c.expires_at < now
        )
    )


def acquire(
    conn: sa.Connection, project: Project, rid: str, uid: int, now: datetime, done: bool = False
) -> bool:
    """Take a free slot of ``rid`` for ``uid`` (a lease, or a finished answer when
    ``done``); False when the record's slots are all taken or someone raced us."""
    taken = conn.execute(
        sa.select(slots.c.slot, slots.c.user_id).where(
            slots.c.project_id == project.id, slots.c.record_id == rid
        )
    ).all()
    if any(u == uid for _, u in taken):
        return False
    used = {s for s, _ in taken}
    free = next((i for i in range(project.settings.overlap) if i not in used), None)
    if free is None:
        return False
    expires = None if done else now + timedelta(minutes=project.settings.lease_minutes)
    try:
        with conn.begin_nested():
            conn.execute(
                slots.insert().values(
                    project_id=project.id,
                    record_id=rid,
                    slot=free,
                    user_id=uid,
                    done=done,
                    expires_at=expires,
                )
            )
    except IntegrityError:
        return False  # another request took this slot first
    return True


def _task(conn: sa.Connection, pid: int, rid: str, uid: int) -> Task:
    row = conn.execute(
        sa.select(items.c.view, items.c.is_gold).where(
            items.c.project_id == pid, items.c.record_id == rid
        )
    ).one()
    draft = conn.execute(
        sa.select(answers.c.payload).where(
            answers.c.project_id == pid,
            answers.c.record_id == rid,
            answers.c.user_id == uid,
            answers.c.status == "draft",
        )
    ).scalar()
    return Task(rid, row.view, bool(row.is_gold), {"values": draft} if draft is not None else None)


def _answered(pid: int, uid: int, statuses: tuple[str, ...] | None = None) -> sa.Exists:
    """EXISTS an answer of ``uid`` to the outer query's item (an index lookup per item,
    not a list of every record the user ever answered)."""
    cond = [
        answers.c.project_id == pid,
        answers.c.record_id == items.c.record_id,
        answers.c.user_id == uid,
    ]
    if statuses is not None:
        cond.append(answers.c.status.in_(statuses))
    return sa.exists().where(*cond)


def mark_complete(conn: sa.Connection, project: Project, rid: str) -> None:
    """Set ``items.complete`` once ``rid`` has ``overlap`` submitted answers. The item
    row is locked first (PostgreSQL), so two answers finishing a record at the same
    time cannot both miss the other's slot."""
    conn.execute(
        sa.select(items.c.record_id)
        .where(items.c.project_id == project.id, items.c.record_id == rid)
        .with_for_update()
    ).first()
    done = conn.execute(
        sa.select(sa.func.count()).where(
            slots.c.project_id == project.id, slots.c.record_id == rid, slots.c.done.is_(True)
        )
    ).scalar_one()
    if done >= project.settings.overlap:
        conn.execute(
            items.update()
            .where(items.c.project_id == project.id, items.c.record_id == rid)
            .values(complete=True)
        )


def refresh_complete(conn: sa.Connection, project_id: int, overlap: int) -> None:
    """Recompute every item's ``complete`` flag (after the overlap setting changed)."""
    done = (
        sa.select(sa.func.count())
        .where(
            slots.c.project_id == project_id,
            slots.c.record_id == items.c.record_id,
            slots.c.done.is_(True),
        )
        .scalar_subquery()
    )
    conn.execute(
        items.update().where(items.c.project_id == project_id).values(complete=done >= overlap)
    )


def _finished(conn: sa.Connection, pid: int, uid: int) -> dict[bool, int]:
    """How many gold (``True``) and regular (``False``) records ``uid`` has submitted
    or skipped."""
    counts = conn.execute(
        sa.select(items.c.is_gold, sa.func.count())
        .select_from(
            answers.join(
                items,
                sa.and_(
                    answers.c.project_id == items.c.project_id,
                    answers.c.record_id == items.c.record_id,
                ),
            )
        )
        .where(
            answers.c.project_id == pid,
            answers.c.user_id == uid,
            answers.c.status.in_(("submitted", "skipped")),
        )
        .group_by(items.c.is_gold)
    ).all()
    return {bool(g): int(n) for g, n in counts}


def _wants_gold(conn: sa.Connection, project: Project, uid: int) -> bool:
    rate = project.settings.gold_rate
    if rate <= 0:
        return False
    by = _finished(conn, project.id, uid)
    gold_done, total = by.get(True, 0), by.get(True, 0) + by.get(False, 0)
    return gold_done < rate * (total + 1)


def next_task(conn: sa.Connection, project: Project, uid: int) -> Task | None:
    """The record ``uid`` should work on now, leased to them; None when nothing is left.

    In order: a record they already hold, their own drafts, a gold record when they
    are below the gold rate, then the first record (project order) that they have not
    answered or skipped and that still has a free slot."""
    pid, now = project.id, utcnow()
    _expire(conn, pid, now)
    held = conn.execute(
        sa.select(slots.c.record_id)
        .where(slots.c.project_id == pid, slots.c.user_id == uid, slots.c.done.is_(False))
        .limit(1)
    ).scalar()
    if held is not None:
        conn.execute(
            slots.update()
            .where(slots.c.project_id == pid, slots.c.record_id == held, slots.c.user_id == uid)
            .values(expires_at=now + timedelta(minutes=project.settings.lease_minutes))
        )
        return _task(conn, pid, held, uid)
    drafts = conn.execute(
        sa.select(answers.c.record_id, items.c.is_gold)
        .join(
            items,
            sa.and_(
                answers.c.project_id == items.c.project_id,
                answers.c.record_id == items.c.record_id,
            ),
        )
        .where(answers.c.project_id == pid, answers.c.user_id == uid, answers.c.status == "draft")
        .order_by(answers.c.updated_at)
    ).all()
    for rid, gold in drafts:
        if gold or acquire(conn, project, rid, uid, now):
            return _task(conn, pid, rid, uid)
    regular_left = _candidates(conn, project, uid, 1)
    if regular_left and _wants_gold(conn, project, uid):
        gold_rid = conn.execute(
            sa.select(items.c.record_id)
            .where(
                items.c.project_id == pid,
                items.c.is_gold.is_(True),
                ~_answered(pid, uid),
            )
            .order_by(items.c.position)
            .limit(1)
        ).scalar()
        if gold_rid is not None:
            return _task(conn, pid, gold_rid, uid)
    for _ in range(5):  # each round re-reads the open records after losing races
        candidates = _candidates(conn, project, uid, 20)
        if not candidates:
            return None
        for rid in candidates:
            if acquire(conn, project, rid, uid, now):
                return _task(conn, pid, rid, uid)
    return None


def _candidates(conn: sa.Connection, project: Project, uid: int, limit: int) -> list[str]:
    pid = project.id
    used = (
        sa.select(sa.func.count())
        .where(slots.c.project_id == pid, slots.c.record_id == items.c.record_id)
        .scalar_subquery()
    )
    return list(
        conn.execute(
            sa.select(items.c.record_id)
            .where(
                items.c.project_id == pid,
                items.c.is_gold.is_(False),
                items.c.complete.is_(False),
                ~_answered(pid, uid),
                used < project.settings.overlap,
            )
            .order_by(items.c.position)
            .limit(limit)
        ).scalars()
    )


def check_values(
    project: Project, view: dict[str, Any], values: dict[str, Any], status: str
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Normalised values and a list of ``{"question", "error"}`` problems. Drafts may
    be incomplete; a submitted answer must answer every required question."""
    problems: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    for name in values:
        if name not in project.by_name:
            problems.append({"question": name, "error": "no such question in this project"})
    if status == "skipped":
        return {}, problems
    for q in project.questions:
        if q.name not in values:
            if status == "submitted" and q.required:
                problems.append({"question": q.name, "error": "an answer is required"})
            continue
        if status == "draft":
            out[q.name] = values[q.name]
            continue
        try:
            out[q.name] = validate_in_view(q, values[q.name], view)
        except AnswerError as exc:
            problems.append({"question": q.name, "error": exc.message})
    return out, problems


class InvalidAnswer(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['question']}: {p['error']}" for p in problems))
        self.problems = problems


@dataclass
class Saved:
    answer_id: int
    status: str
    event: str | None  # answer.created | answer.updated | None (drafts, skips)
    values: dict[str, Any]
    accepted: dict[str, bool | None]


def record_suggestions(conn: sa.Connection, pid: int, rid: str) -> list[dict[str, Any]]:
    return [
        {"question": r.question, "value": r.value, "score": r.score, "agent": r.agent}
        for r in conn.execute(
            sa.select(suggestions).where(
                suggestions.c.project_id == pid, suggestions.c.record_id == rid
            )
        )
    ]


def save_answer(
    conn: sa.Connection,
    project: Project,
    uid: int,
    rid: str,
    values: dict[str, Any],
    status: str,
) -> Saved:
    """Store ``uid``'s answer to ``rid`` (submitted, draft or skipped)."""
    if status not in STATUSES:
        raise QueueError(f"status must be one of {', '.join(STATUSES)}", 422)
    pid, now = project.id, utcnow()
    item = conn.execute(
        sa.select(items.c.view, items.c.is_gold).where(
            items.c.project_id == pid, items.c.record_id == rid
        )
    ).first()
    if item is None:
        raise QueueError(f"no record {rid!r} in this project", 404)
    clean, problems = check_values(project, item.view, values, status)
    if problems:
        raise InvalidAnswer(problems)
    prior = conn.execute(
        sa.select(answers.c.id, answers.c.status).where(
            answers.c.project_id == pid, answers.c.record_id == rid, answers.c.user_id == uid
        )
    ).first()
    if prior is not None and prior.status == "submitted" and status != "submitted":
        raise QueueError("this answer was submitted; submit it again to change it")
    if not item.is_gold:
        _expire(conn, pid, now)
        mine = conn.execute(
            sa.select(slots.c.slot, slots.c.done).where(
                slots.c.project_id == pid, slots.c.record_id == rid, slots.c.user_id == uid
            )
        ).first()
        if status == "skipped":
            if mine is not None:
                conn.execute(
                    slots.delete().where(
                        slots.c.project_id == pid, slots.c.record_id == rid, slots.c.user_id == uid
                    )
                )
        elif mine is None:
            if not acquire(conn, project, rid, uid, now, done=status == "submitted"):
                raise QueueError(
                    f"record {rid} already has its {project.settings.overlap} answer(s)"
                )
        else:
            conn.execute(
                slots.update()
                .where(slots.c.project_id == pid, slots.c.record_id == rid, slots.c.user_id == uid)
                .values(
                    done=status == "submitted",
                    expires_at=None
                    if status == "submitted"
                    else now + timedelta(minutes=project.settings.lease_minutes),
                )
            )
    if status == "submitted" and not item.is_gold:
        mark_complete(conn, project, rid)
    accepted: dict[str, bool | None] = {}
    if status == "submitted":
        sugg = {s["question"]: s["value"] for s in record_suggestions(conn, pid, rid)}
        accepted = {
            name: (same_value(value, sugg[name]) if name in sugg else None)
            for name, value in clean.items()
        }
    if prior is None:
        answer_id = inserted_id(
            conn.execute(
                answers.insert().values(
                    project_id=pid,
                    record_id=rid,
                    user_id=uid,
                    status=status,
                    payload=clean,
                    accepted=accepted,
                    created_at=now,
                    updated_at=now,
                )
            )
        )
    else:
        answer_id = prior.id
        conn.execute(
            answers.update()
            .where(answers.c.id == prior.id)
            .values(status=status, payload=clean, accepted=accepted, updated_at=now)
        )
    event = None
    if status == "submitted":
        event = (
            "answer.updated"
            if prior is not None and prior.status == "submitted"
            else "answer.created"
        )
    return Saved(int(answer_id), status, event, clean, accepted)


def user_progress(conn: sa.Connection, project: Project, uid: int) -> dict[str, int]:
    """``done``: regular records this user submitted or skipped; ``total``: done plus
    the records still open to them."""
    pid = project.id
    done = _finished(conn, pid, uid).get(False, 0)
    used = (
        sa.select(sa.func.count())
        .where(
            slots.c.project_id == pid,
            slots.c.record_id == items.c.record_id,
            slots.c.user_id != uid,
        )
        .scalar_subquery()
    )
    open_ = conn.execute(
        sa.select(sa.func.count()).where(
            items.c.project_id == pid,
            items.c.is_gold.is_(False),
            items.c.complete.is_(False),
            ~_answered(pid, uid, ("submitted", "skipped")),
            used < project.settings.overlap,
        )
    ).scalar_one()
    return {"done": int(done), "total": int(done) + int(open_)}


def project_progress(conn: sa.Connection, project: Project) -> dict[str, int]:
    pid = project.id
    total = conn.execute(
        sa.select(sa.func.count()).where(items.c.project_id == pid, items.c.is_gold.is_(False))
    ).scalar_one()
    per_record = (
        sa.select(slots.c.record_id, sa.func.count().label("n"))
        .where(slots.c.project_id == pid, slots.c.done.is_(True))
        .group_by(slots.c.record_id)
        .subquery()
    )
    completed = conn.execute(
        sa.select(sa.func.count())
        .select_from(per_record)
        .where(per_record.c.n >= project.settings.overlap)
    ).scalar_one()
    return {"total_records": int(total), "completed_records": int(completed)}
