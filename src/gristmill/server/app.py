"""``create_app(workspace, db_url)``: the FastAPI app behind ``gristmill serve``."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException as FastAPIHTTPException
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from gristmill import __version__
from gristmill.server.api import hooks, projects, qc, queue, users
from gristmill.server.db import DB_ENV, default_url, make_engine, migrate
from gristmill.server.deps import AppState
from gristmill.server.pages import render
from gristmill.server.pages import router as pages_router
from gristmill.server.throttle import LoginLimits
from gristmill.server.webhooks import Dispatcher
from gristmill.store import Workspace

STATIC = Path(__file__).resolve().parent / "static"


def open_state(workspace: Workspace | Path | str, db_url: str | None = None) -> AppState:
    """The workspace and a migrated database: what the app and the CLI both work on."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(Path(workspace))
    url = db_url or os.environ.get(DB_ENV) or default_url(ws.root)
    engine = make_engine(url)
    migrate(engine)
    return AppState(
        engine=engine, workspace=ws, db_url=url, model_cache=str(ws.root / "model_cache.sqlite")
    )


def create_app(
    workspace: Workspace | Path | str,
    db_url: str | None = None,
    *,
    webhook_attempts: int = 4,
    webhook_backoff: float = 0.5,
    login_limits: LoginLimits | None = None,
) -> FastAPI:
    """The app over ``workspace``'s datasets; the database is ``db_url`` (SQLite or
    ``postgresql+psycopg://…``), by default ``$GRISTMILL_DB`` or ``<workspace>/app.sqlite``. Migrations
    run here, so a new database or an old schema is ready before the first request.
    ``login_limits`` throttles failed logins; by default from ``$GRISTMILL_LOGIN_*``."""
    limits = login_limits if login_limits is not None else LoginLimits.from_env()
    gm = open_state(workspace, db_url)
    gm.login_limits = limits
    engine = gm.engine
    dispatcher = Dispatcher(engine, attempts=webhook_attempts, backoff=webhook_backoff)
    gm.webhooks = dispatcher

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()
            engine.dispose()

    app = FastAPI(
        title="gristmill annotation",
        version=__version__,
        description="Projects, queue, answers, quality control and webhooks of the data "
        "trainers' app. Authenticate with `Authorization: Bearer <token>` "
        "(`gristmill user token NAME`) or a session cookie plus `X-CSRF-Token`.",
        lifespan=lifespan,
    )
    app.state.gm = gm
    dispatcher.start()  # also when used without lifespan (e.g. a plain TestClient)
    for r in (users.router, projects.router, queue.router, qc.router, hooks.router):
        app.include_router(r)
    app.include_router(pages_router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.exception_handler(FastAPIHTTPException)
    async def http_error(request: Request, exc: FastAPIHTTPException) -> Response:
        wants_html = not request.url.path.startswith("/api") and "text/html" in request.headers.get(
            "accept", ""
        )
        if wants_html and exc.status_code in (403, 404):
            try:
                page = render(
                    request, "error.html", None, status=exc.status_code, message=exc.detail
                )
                page.status_code = exc.status_code
                return page
            except Exception:  # FRONT may not ship an error page
                pass
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket with TCP_NODELAY (inherited by accepted connections): without
    it, keep-alive clients wait ~40 ms per request on Nagle + delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    sock = listen(host, port)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
    finally:
        sock.close()
