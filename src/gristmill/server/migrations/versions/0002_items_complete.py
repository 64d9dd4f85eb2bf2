"""items.complete: a flag for records that have all their answers, so the queue
skips them through an index instead of counting slots of every record; indexes for
a user's leases and for expired leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:00:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_index("ix_items_queue")
        batch_op.create_index(
            "ix_items_open", ["project_id", "is_gold", "complete", "position"], unique=False
        )
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.create_index("ix_slots_user", ["project_id", "user_id", "done"], unique=False)
        batch_op.create_index("ix_slots_expiry", ["project_id", "done", "expires_at"], unique=False)
    # records that already have their answers (done slots ≥ the project's overlap)
    conn = op.get_bind()
    overlap: dict[int, int] = {}
    for pid, settings in conn.execute(sa.text("SELECT id, settings FROM projects")).all():
        if isinstance(settings, str):
            settings = json.loads(settings)
        overlap[pid] = int((settings or {}).get("overlap", 1))
    done = conn.execute(
        sa.text(
            "SELECT project_id, record_id, COUNT(*) FROM slots WHERE done "
            "GROUP BY project_id, record_id"
        )
    ).all()
    for pid, rid, n in done:
        if n >= overlap.get(pid, 1):
            conn.execute(
                sa.text("UPDATE items SET complete = :t WHERE project_id = :p AND record_id = :r"),
                {"t": True, "p": pid, "r": rid},
            )


def downgrade() -> None:
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.drop_index("ix_slots_expiry")
        batch_op.drop_index("ix_slots_user")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_open")
        batch_op.create_index("ix_items_queue", ["project_id", "is_gold", "position"], unique=False)
        batch_op.drop_column("complete")
