"""Shared by the app's tests (and FRONT's browser tests): a real uvicorn server on
loopback in a thread, over a real database, plus helpers to make users and projects.

Usage::

    with LiveServer(workspace) as srv:          # SQLite in the workspace
        token = srv.add_user("alice", "admin", "password123")
        client = httpx.Client(base_url=srv.url, headers=bearer(token))
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from gristmill.server.app import create_app
from gristmill.server.auth import create_user, new_api_token
from gristmill.store import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """uvicorn serving ``create_app(workspace, db_url)`` on 127.0.0.1:<free port>."""

    def __init__(self, workspace: Workspace, db_url: str | None = None, **app_kwargs: Any) -> None:
        self.app = create_app(workspace, db_url, **app_kwargs)
        self.state = self.app.state.gm
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms stalls
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()

    # -- helpers ------------------------------------------------------------------------

    def add_user(self, username: str, role: str = "annotator", password: str | None = None) -> str:
        """Create a user directly in the database; returns an API token for them.
        Without a password (the default: argon2 is slow on purpose) they cannot log in
        to the pages, only use the token."""
        with self.state.tx() as conn:
            uid = create_user(conn, username, role, password)
            return new_api_token(conn, uid, "test")

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=bearer(token) if token else {}, timeout=60, trust_env=False
        )

    def login(self, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A cookie session as a browser gets it; returns (client, CSRF token)."""
        c = httpx.Client(base_url=self.url, timeout=60, trust_env=False, follow_redirects=False)
        page = c.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = c.post(
            "/login",
            data={"username": username, "password": password, "next": "/", "csrf_token": token},
        )
        assert r.status_code == 303, r.text
        home = c.get("/")
        csrf = home.text.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
        return c, csrf


def form_login(server: LiveServer, username: str, password: str) -> httpx.Response:
    """One form login as a browser makes it (the login page for its CSRF token, then the
    POST); the response, not followed (303 on success, 401 wrong, 429 throttled)."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=60) as c:
        page = c.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        return c.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        )


def import_sample(workspace: Workspace, sample: str, name: str) -> str:
    """Import a file from data/samples; returns the new version's ref."""
    from gristmill.io.ingest import import_path

    import_path(workspace, SAMPLES / sample, name)
    return workspace.version(name).ref
