"""Alembic environment: run on the connection the app hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from gristmill.annotate.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through gristmill.server.db.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
