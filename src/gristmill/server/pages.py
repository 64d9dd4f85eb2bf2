"""HTML pages: FRONT's Jinja2 templates filled with the data the contract names.
Pages redirect to ``/login`` when nobody is signed in; JSON lives under ``/api``."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from gristmill.server import throttle
from gristmill.server.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_DAYS,
    Principal,
    csrf_ok,
    end_session,
    new_session,
    verify_login,
)
from gristmill.server.deps import (
    Access,
    AppState,
    audit,
    check_project,
    client_ip,
    optional_principal,
    state,
)
from gristmill.server.throttle import Refusal

TEMPLATES = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(request: Request, name: str, who: Principal | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": who.as_user() if who else None,
            "csrf_token": who.csrf_token if who and who.csrf_token else "",
            **context,
        },
    )


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    resp = templates.TemplateResponse(
        request,
        "login.html",
        {"user": None, "csrf_token": token, "error": None, "next": _safe_next(next)},
    )
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
    return resp


def _login(
    st: AppState, username: str, password: str, ip: str | None
) -> tuple[str, int] | Refusal | None:
    """A session cookie and user id; a refusal when throttled; None for a wrong login.
    One transaction, so on SQLite concurrent attempts cannot overshoot the limits."""
    key = username[:64]
    lim = st.login_limits
    with st.tx() as conn:
        refusal = throttle.check(conn, lim, key, ip)
        if refusal is not None:
            detail = {
                "scope": refusal.scope,
                "failures": refusal.failures,
                "retry_after_s": refusal.retry_after_s,
            }
            audit(conn, None, "login.throttled", username=key, ip=ip, detail=detail)
            return refusal
        row = verify_login(conn, username, password)
        if row is None:
            throttle.record_failure(conn, lim, key, ip)
            audit(conn, None, "login.failed", username=key, ip=ip)
            return None
        throttle.clear(conn, key)
        cookie, _ = new_session(conn, row.id)
        audit(conn, Principal(row.id, row.username, row.role, "session"), "login", ip=ip)
        return cookie, row.id


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
) -> Response:
    """Form login (double-submit CSRF: the form's token must match the cookie)."""
    target = _safe_next(next)
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        raise HTTPException(403, "CSRF token missing or wrong; reload the login page")
    result = await run_in_threadpool(_login, state(request), username, password, client_ip(request))
    if result is None or isinstance(result, Refusal):
        token = secrets.token_urlsafe(24)
        refused = result if isinstance(result, Refusal) else None
        resp = templates.TemplateResponse(
            request,
            "login.html",
            {
                "user": None,
                "csrf_token": token,
                "error": refused.message() if refused else "Wrong username or password.",
                "next": target,
            },
            status_code=429 if refused else 401,
        )
        if refused is not None:
            resp.headers["Retry-After"] = str(refused.retry_after_s)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
        return resp
    cookie, _ = result
    done = RedirectResponse(target, status_code=303)
    done.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        max_age=SESSION_DAYS * 86400,
        secure=request.url.scheme == "https",
    )
    done.delete_cookie(LOGIN_CSRF_COOKIE)
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = await optional_principal(request)  # checks the form's csrf_token
    cookie = request.cookies.get(SESSION_COOKIE)
    if who is not None and cookie:
        st = state(request)

        def end() -> None:
            with st.tx() as conn:
                end_session(conn, cookie)
                audit(conn, who, "logout", ip=client_ip(request))

        await run_in_threadpool(end)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/")
async def home(request: Request) -> Response:
    who = await optional_principal(request)
    if who is None:
        return _to_login(request)
    from gristmill.server.api.projects import list_projects

    projects = await run_in_threadpool(list_projects, who, request)
    return render(request, "projects.html", who, projects=projects)


async def _page_access(request: Request, pid: int) -> Access | Response:
    who = await optional_principal(request)
    if who is None:
        return _to_login(request)
    st = state(request)
    project, role = await run_in_threadpool(check_project, st, who, pid, "annotator")
    return Access(who, project, role, st, client_ip(request))


def _project_page_data(a: Access) -> dict[str, Any]:
    from gristmill.annotate.queue import project_progress
    from gristmill.server.api.qc import project_stats

    if a.can_review:
        try:
            stats = project_stats(a.st, a.project)
        except ImportError:  # QC's modules not installed in this checkout
            stats = None
        if stats is not None:
            return {
                "progress": stats["progress"],
                "agreement": stats["agreement"],
                "suggestion_agreement": stats["suggestion_agreement"],
            }
    with a.st.tx() as conn:
        prog = project_progress(conn, a.project)
    return {"progress": {**prog, "per_annotator": []}, "agreement": [], "suggestion_agreement": []}


@router.get("/projects/{pid}")
async def project_page(request: Request, pid: int) -> Response:
    a = await _page_access(request, pid)
    if isinstance(a, Response):
        return a
    data = await run_in_threadpool(_project_page_data, a)
    return render(
        request,
        "project.html",
        a.who,
        project=a.project.as_dict(),
        can_review=a.can_review,
        can_admin=a.can_admin,
        **data,
    )


@router.get("/projects/{pid}/annotate")
async def annotate_page(request: Request, pid: int) -> Response:
    a = await _page_access(request, pid)
    if isinstance(a, Response):
        return a
    return render(request, "annotate.html", a.who, project=a.project.as_dict())


@router.get("/projects/{pid}/review")
async def review_page(request: Request, pid: int) -> Response:
    a = await _page_access(request, pid)
    if isinstance(a, Response):
        return a
    if not a.can_review:
        raise HTTPException(403, "reviewers, admins and owners only")
    return render(request, "review.html", a.who, project=a.project.as_dict())
