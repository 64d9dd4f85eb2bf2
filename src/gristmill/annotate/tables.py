"""The app's database tables (SQLAlchemy Core), one definition for SQLite and
PostgreSQL. The schema is created and changed only by the Alembic migrations in
``gristmill/server/migrations``; this module mirrors the latest one for queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def utcnow() -> datetime:
    """Naive UTC: the same wall clock on SQLite (no time zones) and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("last_used_at", sa.DateTime, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the cookie value
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("dataset_ref", sa.String(256), nullable=True),
    sa.Column("questions", sa.JSON, nullable=False),
    sa.Column("guidelines", sa.Text, nullable=False, default=""),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role", sa.String(16), nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("is_gold", sa.Boolean, nullable=False, default=False),
    sa.Column("gold", sa.JSON, nullable=True),
    sa.Column("view", sa.JSON, nullable=False),
    # all `overlap` answers are in (a hint kept in step with the slots; see queue.py)
    sa.Column("complete", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("ix_items_open", "project_id", "is_gold", "complete", "position"),
)

suggestions = sa.Table(
    "suggestions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(128), nullable=False),
    sa.Column("question", sa.String(64), nullable=False),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("agent", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.ForeignKeyConstraint(
        ["project_id", "record_id"], ["items.project_id", "items.record_id"], ondelete="CASCADE"
    ),
    sa.UniqueConstraint("project_id", "record_id", "question", name="uq_suggestion"),
)

answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(128), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # submitted | draft | skipped
    sa.Column("payload", sa.JSON, nullable=False),  # question → value
    sa.Column("accepted", sa.JSON, nullable=False),  # question → accepted the suggestion?
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
    sa.ForeignKeyConstraint(
        ["project_id", "record_id"], ["items.project_id", "items.record_id"], ondelete="CASCADE"
    ),
    sa.UniqueConstraint("project_id", "record_id", "user_id", name="uq_answer"),
    sa.Index("ix_answers_user", "project_id", "user_id", "status"),
)

# One row per occupied answer slot of a record: a lease while someone works on it
# (expires_at set), or a submitted answer (done). The primary key (record, slot) is
# what makes two annotators unable to hold the same last slot, on any database.
slots = sa.Table(
    "slots",
    metadata,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.ForeignKeyConstraint(
        ["project_id", "record_id"], ["items.project_id", "items.record_id"], ondelete="CASCADE"
    ),
    sa.UniqueConstraint("project_id", "record_id", "user_id", name="uq_slot_user"),
    sa.Index("ix_slots_user", "project_id", "user_id", "done"),
    sa.Index("ix_slots_expiry", "project_id", "done", "expires_at"),
)

resolutions = sa.Table(
    "resolutions",
    metadata,
    sa.Column("project_id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String(128), primary_key=True),
    sa.Column("question", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.ForeignKeyConstraint(
        ["project_id", "record_id"], ["items.project_id", "items.record_id"], ondelete="CASCADE"
    ),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("response_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("delivered_at", sa.DateTime, nullable=True),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("username", sa.String(64), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("project_id", sa.Integer, nullable=True),
    sa.Column("record_id", sa.String(128), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Index("ix_audit_project", "project_id", "id"),
)


login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Index("ix_login_failures_user", "username", "at"),
    sa.Index("ix_login_failures_ip", "ip", "at"),
    sa.Index("ix_login_failures_at", "at"),
)


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an ``INSERT`` made (SQLite and PostgreSQL alike)."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert returned no primary key")
    return int(key[0])
