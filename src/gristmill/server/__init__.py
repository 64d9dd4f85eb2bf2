"""The data trainers' web app: FastAPI over SQLite or PostgreSQL (``gristmill serve``)."""
