"""Alembic migrations of the app database (run by ``server.db.migrate`` at start-up)."""
