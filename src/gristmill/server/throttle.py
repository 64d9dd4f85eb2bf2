"""Login throttling: failed logins are rows in ``login_failures``, so the limits hold
across server processes and restarts.

A username with ``max_user_failures`` failures inside ``window`` is refused (HTTP 429)
until the oldest of them leaves the window, even with the right password; a client
IP with ``max_ip_failures`` failures is refused the same way, so one client cannot
spray passwords over many usernames. A successful login clears that username's
failures. Refused attempts are not counted (the lockout does not extend itself)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from gristmill.annotate.tables import login_failures, utcnow

ENV_PREFIX = "GRISTMILL_LOGIN_"


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins a username and a client IP may make in ``window_s``."""

    max_user_failures: int = 5
    max_ip_failures: int = 20
    window_s: float = 15 * 60
    clock: Callable[[], datetime] = field(default=utcnow, compare=False)

    def __post_init__(self) -> None:
        if self.max_user_failures < 1 or self.max_ip_failures < 1:
            raise ValueError("login failure limits must be at least 1")
        if self.window_s <= 0:
            raise ValueError("the login failure window must be positive")

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LoginLimits:
        """Defaults overridden by ``GRISTMILL_LOGIN_MAX_USER_FAILURES``,
        ``GRISTMILL_LOGIN_MAX_IP_FAILURES`` and ``GRISTMILL_LOGIN_WINDOW_S``."""
        source = os.environ if env is None else env
        values: dict[str, float] = {}
        for name, kind in (
            ("max_user_failures", int),
            ("max_ip_failures", int),
            ("window_s", float),
        ):
            key = ENV_PREFIX + name.upper()
            raw = source.get(key)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"${key} must be a number, got {raw!r}") from exc
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Refusal:
    """Why a login attempt is refused before its password is checked."""

    scope: str  # "user" | "ip"
    retry_after_s: int
    failures: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_s / 60))

    def message(self) -> str:
        who = "for this user" if self.scope == "user" else "from this address"
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed attempts {who}; try again in {self.minutes} {unit}."


def _block(
    conn: sa.Connection, where: sa.ColumnElement[bool], limit: int, lim: LoginLimits, now: datetime
) -> tuple[int, int] | None:
    """(failures, seconds until below ``limit``) when at or over the limit, else None."""
    since = now - lim.window
    recent = (
        conn.execute(
            sa.select(login_failures.c.at)
            .where(where, login_failures.c.at > since)
            .order_by(login_failures.c.at.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if len(recent) < limit:
        return None
    # when the limit-th most recent failure leaves the window, the count drops below
    free_at = recent[limit - 1] + lim.window
    n = conn.execute(
        sa.select(sa.func.count())
        .select_from(login_failures)
        .where(where, login_failures.c.at > since)
    ).scalar_one()
    return int(n), max(1, math.ceil((free_at - now).total_seconds()))


def check(conn: sa.Connection, lim: LoginLimits, username: str, ip: str | None) -> Refusal | None:
    """The refusal for this attempt, or None when it may go on to the password check.

    Call it in the transaction that then records the outcome: SQLite's ``BEGIN
    IMMEDIATE`` serialises those; on PostgreSQL a transaction-scoped advisory lock on
    the username does, so parallel guesses cannot overshoot the per-user limit."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(username))))
    now = lim.clock()
    user = _block(conn, login_failures.c.username == username, lim.max_user_failures, lim, now)
    if user is not None:
        return Refusal("user", user[1], user[0])
    if ip is not None:
        by_ip = _block(conn, login_failures.c.ip == ip, lim.max_ip_failures, lim, now)
        if by_ip is not None:
            return Refusal("ip", by_ip[1], by_ip[0])
    return None


def record_failure(conn: sa.Connection, lim: LoginLimits, username: str, ip: str | None) -> None:
    """Count a failed login, and prune failures that have left the window."""
    now = lim.clock()
    conn.execute(login_failures.delete().where(login_failures.c.at <= now - lim.window))
    conn.execute(login_failures.insert().values(at=now, username=username, ip=ip))


def clear(conn: sa.Connection, username: str) -> None:
    """A successful login: that username starts again from zero."""
    conn.execute(login_failures.delete().where(login_failures.c.username == username))
