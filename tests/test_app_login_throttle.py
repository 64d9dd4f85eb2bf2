"""Login throttling on a real server (uvicorn on loopback, SQLite): a username locked
after N failures (429 + Retry-After, even with the right password), other users
unaffected, the per-IP limit, reset on success, the window passing, the audit log,
limits shared by two server processes on one database, and no user-existence timing
leak."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from test_app_support import PASSWORD, LiveServer
from test_app_support import form_login as attempt

from gristmill.annotate.tables import audit, login_failures, utcnow
from gristmill.server.auth import verify_login
from gristmill.server.throttle import LoginLimits
from gristmill.store import Workspace


class Clock:
    """A clock the test moves forward, so the window passes without sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def audit_actions(server: LiveServer, username: str) -> list[tuple[str, object]]:
    with server.state.tx() as conn:
        rows = conn.execute(
            sa.select(audit.c.action, audit.c.detail)
            .where(audit.c.username == username)
            .order_by(audit.c.id)
        ).all()
    return [(r.action, r.detail) for r in rows]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(workspace: Workspace, clock: Clock) -> Iterator[LiveServer]:
    limits = LoginLimits(max_user_failures=3, max_ip_failures=20, window_s=600, clock=clock)
    with LiveServer(workspace, login_limits=limits) as srv:
        srv.add_user("alice", "annotator", PASSWORD)
        srv.add_user("bob", "annotator", PASSWORD)
        yield srv


def test_user_locked_after_n_failures_even_with_the_right_password(
    server: LiveServer, clock: Clock
) -> None:
    for _ in range(3):
        assert attempt(server, "alice", "wrong-password").status_code == 401
    clock.now += timedelta(seconds=30)
    r = attempt(server, "alice", PASSWORD)
    assert r.status_code == 429
    assert "gristmill_session" not in r.cookies
    # the oldest failure leaves the 600 s window 570 s from now
    assert int(r.headers["Retry-After"]) == 570
    assert "Too many failed attempts for this user; try again in 10 minutes." in r.text
    # another user logs in as usual from the same client
    assert attempt(server, "bob", PASSWORD).status_code == 303
    # every refusal is in the audit log, with why
    actions = audit_actions(server, "alice")
    assert [a for a, _ in actions] == ["login.failed"] * 3 + ["login.throttled"]
    assert actions[-1][1] == {"scope": "user", "failures": 3, "retry_after_s": 570}
    # the refused attempt does not extend the lockout; once the window passes, the
    # right password works again
    clock.now += timedelta(seconds=571)
    assert attempt(server, "alice", PASSWORD).status_code == 303
    assert audit_actions(server, "alice")[-1][0] == "login"


def test_success_resets_the_count(server: LiveServer) -> None:
    for _ in range(2):
        assert attempt(server, "alice", "wrong-password").status_code == 401
    assert attempt(server, "alice", PASSWORD).status_code == 303
    for _ in range(2):  # two more: only 2 since the success, under the limit of 3
        assert attempt(server, "alice", "wrong-password").status_code == 401
    assert attempt(server, "alice", PASSWORD).status_code == 303


def test_ip_limit_stops_spraying_many_usernames(workspace: Workspace) -> None:
    limits = LoginLimits(max_user_failures=5, max_ip_failures=4, window_s=600)
    with LiveServer(workspace, login_limits=limits) as server:
        server.add_user("carol", "annotator", PASSWORD)
        for name in ("u1", "u2", "u3", "carol"):  # unknown names count too
            assert attempt(server, name, "wrong-password").status_code == 401
        r = attempt(server, "carol", PASSWORD)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 590
        assert "Too many failed attempts from this address" in r.text
        assert attempt(server, "someone-new", "whatever").status_code == 429
        action, detail = audit_actions(server, "carol")[-1]
        assert action == "login.throttled"
        assert isinstance(detail, dict) and detail["scope"] == "ip" and detail["failures"] == 4


def test_short_window_passes_in_real_time(workspace: Workspace) -> None:
    limits = LoginLimits(max_user_failures=2, window_s=1)
    with LiveServer(workspace, login_limits=limits) as server:
        server.add_user("dave", "annotator", PASSWORD)
        for _ in range(2):
            assert attempt(server, "dave", "wrong-password").status_code == 401
        r = attempt(server, "dave", PASSWORD)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "try again in 1 minute." in r.text
        time.sleep(1.1)
        assert attempt(server, "dave", PASSWORD).status_code == 303


def test_limits_hold_across_server_processes_and_prune_old_rows(
    workspace: Workspace, clock: Clock
) -> None:
    """Two servers on one database (as several workers or a restart would be)."""
    limits = LoginLimits(max_user_failures=3, window_s=600, clock=clock)
    db_url = f"sqlite:///{workspace.root / 'shared.sqlite'}"
    with LiveServer(workspace, db_url, login_limits=limits) as a:
        a.add_user("erin", "annotator", PASSWORD)
        for _ in range(3):
            assert attempt(a, "erin", "wrong-password").status_code == 401
    with LiveServer(workspace, db_url, login_limits=limits) as b:
        assert attempt(b, "erin", PASSWORD).status_code == 429
        # a failure after the window prunes the rows that left it
        clock.now += timedelta(seconds=601)
        assert attempt(b, "frank", "wrong-password").status_code == 401
        with b.state.tx() as conn:
            left = conn.execute(sa.select(login_failures.c.username)).scalars().all()
        assert left == ["frank"]


def test_bad_limits_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="GRISTMILL_LOGIN_WINDOW_S must be a number"):
        LoginLimits.from_env({"GRISTMILL_LOGIN_WINDOW_S": "soon"})
    with pytest.raises(ValueError, match="at least 1"):
        LoginLimits.from_env({"GRISTMILL_LOGIN_MAX_USER_FAILURES": "0"})
    lim = LoginLimits.from_env({"GRISTMILL_LOGIN_MAX_IP_FAILURES": "50"})
    assert (lim.max_user_failures, lim.max_ip_failures, lim.window_s) == (5, 50, 900)


def test_unknown_user_costs_an_argon2_verify(server: LiveServer) -> None:
    """User existence does not leak by timing: an unknown name is checked against a
    dummy argon2 hash (without it the unknown name would answer ~100x faster)."""

    def median(username: str) -> float:
        times = []
        for _ in range(5):
            with server.state.tx() as conn:
                t = time.perf_counter()
                assert verify_login(conn, username, "wrong-password") is None
                times.append(time.perf_counter() - t)
        return sorted(times)[2]

    known, unknown = median("alice"), median("nobody-here")
    assert 0.3 < unknown / known < 3, (known, unknown)


def test_parallel_guesses_do_not_overshoot_the_limit(server: LiveServer) -> None:
    """Eight guesses at once: the limit of three holds (one transaction per attempt)."""
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def guess() -> None:
        barrier.wait()
        codes.append(attempt(server, "alice", "wrong-password").status_code)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(codes) == {401: 3, 429: 5}
