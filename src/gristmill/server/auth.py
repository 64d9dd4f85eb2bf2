"""Users, passwords (argon2), sessions (cookie + CSRF token), API tokens (Bearer) and
the permission rules: who may do what, globally and in a project.

Global roles: ``owner`` may do everything everywhere; ``admin`` creates projects and
users; ``reviewer`` and ``annotator`` act only in projects they are members of.
Project roles (membership): ``annotator`` < ``reviewer`` < ``admin`` < ``owner``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gristmill.annotate.projects import ROLES
from gristmill.annotate.tables import api_tokens, inserted_id, members, sessions, users, utcnow

SESSION_COOKIE = "gristmill_session"
LOGIN_CSRF_COOKIE = "gristmill_login_csrf"
SESSION_DAYS = 14
RANK = {"annotator": 1, "reviewer": 2, "admin": 3, "owner": 4}
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")

_hasher = PasswordHasher()
# a real hash to verify against when the user does not exist, so timing does not tell
_DUMMY_HASH = _hasher.hash("not-a-password")


@dataclass(frozen=True)
class Principal:
    """Who is making the request, and how they proved it."""

    id: int
    username: str
    role: str
    via: str  # "session" | "token"
    csrf_token: str | None = None

    def as_user(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_username(name: str) -> str:
    if not name or len(name) > 64 or set(name) - USERNAME_CHARS:
        raise ValueError(f"invalid username {name!r}: 1-64 letters, digits and . _ - @ (no spaces)")
    return name


def user_id(conn: sa.Connection, username: str) -> int | None:
    """The id of the user called ``username``; None when there is none."""
    uid = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
    return None if uid is None else int(uid)


def create_user(conn: sa.Connection, username: str, role: str, password: str | None) -> int:
    check_username(username)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if password is not None and len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    if user_id(conn, username) is not None:
        raise ValueError(f"user {username!r} already exists")
    return int(
        inserted_id(
            conn.execute(
                users.insert().values(
                    username=username,
                    role=role,
                    password_hash=hash_password(password) if password is not None else None,
                    active=True,
                    created_at=utcnow(),
                )
            )
        )
    )


def verify_login(conn: sa.Connection, username: str, password: str) -> sa.Row[Any] | None:
    """The user row when the password matches (argon2), else None; constant work."""
    row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row.password_hash or not row.active:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(
            users.update().where(users.c.id == row.id).values(password_hash=hash_password(password))
        )
    return row


def new_session(conn: sa.Connection, user_id: int) -> tuple[str, str]:
    """A fresh session; returns (cookie value, CSRF token). Only hashes are stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = utcnow()
    conn.execute(
        sessions.insert().values(
            id=sha256(token),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(days=SESSION_DAYS),
        )
    )
    return token, csrf


def end_session(conn: sa.Connection, token: str) -> None:
    conn.execute(sessions.delete().where(sessions.c.id == sha256(token)))


def new_api_token(conn: sa.Connection, user_id: int, name: str = "default") -> str:
    token = "gm_" + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            user_id=user_id, name=name, token_hash=sha256(token), created_at=utcnow()
        )
    )
    return token


def from_session(conn: sa.Connection, token: str) -> Principal | None:
    row = conn.execute(
        sa.select(users.c.id, users.c.username, users.c.role, sessions.c.csrf_token)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.id == sha256(token),
            sessions.c.expires_at > utcnow(),
            users.c.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    return Principal(row.id, row.username, row.role, "session", row.csrf_token)


def from_token(conn: sa.Connection, token: str) -> Principal | None:
    row = conn.execute(
        sa.select(
            users.c.id,
            users.c.username,
            users.c.role,
            api_tokens.c.id.label("tid"),
            api_tokens.c.last_used_at,
        )
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == sha256(token), users.c.active.is_(True))
    ).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        conn.execute(api_tokens.update().where(api_tokens.c.id == row.tid).values(last_used_at=now))
    return Principal(row.id, row.username, row.role, "token")


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given and hmac.compare_digest(expected, given))


def project_role(conn: sa.Connection, principal: Principal, project_id: int) -> str | None:
    """The principal's role in the project: their membership, or ``owner`` for a
    global owner; None for a non-member."""
    if principal.role == "owner":
        return "owner"
    return member_role(conn, project_id, principal.id)


def member_role(conn: sa.Connection, project_id: int, user_id: int) -> str | None:
    """The user's membership role in the project; None for a non-member."""
    return conn.execute(
        sa.select(members.c.role).where(
            members.c.project_id == project_id, members.c.user_id == user_id
        )
    ).scalar()


def at_least(role: str | None, needed: str) -> bool:
    return role is not None and RANK[role] >= RANK[needed]
