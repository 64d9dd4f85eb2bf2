"""Who may do what: the authorization matrix over every API endpoint (generated from
the app's OpenAPI routes, so a new endpoint without a rule fails), plus logins,
wrong passwords, CSRF, API tokens and the audit log. Real uvicorn, real SQLite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from test_app_support import PASSWORD, LiveServer, bearer, import_sample

from gristmill.store import Workspace

# the least role an endpoint needs: "user" (any signed-in user), "global:admin" (global
# role admin or owner), or a project role (annotator < reviewer < admin < owner)
RULES: dict[tuple[str, str], str] = {
    ("GET", "/api/me"): "user",
    ("POST", "/api/me/tokens"): "user",
    ("GET", "/api/users"): "global:admin",
    ("POST", "/api/users"): "global:admin",
    ("GET", "/api/audit"): "global:admin",
    ("GET", "/api/projects"): "user",
    ("POST", "/api/projects"): "global:admin",
    ("GET", "/api/projects/{pid}"): "annotator",
    ("PATCH", "/api/projects/{pid}"): "admin",
    ("DELETE", "/api/projects/{pid}"): "owner",
    ("GET", "/api/projects/{pid}/members"): "reviewer",
    ("PUT", "/api/projects/{pid}/members/{username}"): "admin",
    ("DELETE", "/api/projects/{pid}/members/{username}"): "admin",
    ("POST", "/api/projects/{pid}/records"): "admin",
    ("GET", "/api/projects/{pid}/records/{rid}"): "reviewer",  # a record not assigned to you
    ("POST", "/api/projects/{pid}/gold"): "admin",
    ("POST", "/api/projects/{pid}/suggestions"): "admin",
    ("POST", "/api/projects/{pid}/suggestions/generate"): "admin",
    ("GET", "/api/projects/{pid}/next"): "annotator",
    ("POST", "/api/projects/{pid}/records/{rid}/answers"): "annotator",
    ("GET", "/api/projects/{pid}/answers"): "reviewer",
    ("GET", "/api/projects/{pid}/progress"): "annotator",
    ("GET", "/api/projects/{pid}/stats"): "reviewer",
    ("GET", "/api/projects/{pid}/aggregate"): "reviewer",
    ("GET", "/api/projects/{pid}/review"): "reviewer",
    ("POST", "/api/projects/{pid}/records/{rid}/resolve"): "reviewer",
    ("POST", "/api/projects/{pid}/export"): "admin",
    ("GET", "/api/projects/{pid}/export"): "admin",
    ("GET", "/api/projects/{pid}/webhooks"): "admin",
    ("POST", "/api/projects/{pid}/webhooks"): "admin",
    ("DELETE", "/api/projects/{pid}/webhooks/{wid}"): "admin",
    ("GET", "/api/projects/{pid}/webhooks/{wid}/deliveries"): "admin",
    ("GET", "/api/projects/{pid}/audit"): "admin",
}
RANK = {"annotator": 1, "reviewer": 2, "admin": 3, "owner": 4}
# matrix users: global role, and their role in project A (none in project B)
USERS = {
    "superuser": ("owner", None),  # global owner: owner of every project
    "p_owner": ("admin", "owner"),  # created project A
    "p_admin": ("annotator", "admin"),
    "p_reviewer": ("annotator", "reviewer"),
    "p_annotator": ("annotator", "annotator"),
    "outsider": ("annotator", None),
}
QUESTIONS = [
    {"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]},
    {"name": "note", "kind": "text", "required": False},
]
_names = (f"n{i}" for i in itertools.count())


class World:
    """Two projects (A: every matrix role; B: someone else's) on one live server."""

    def __init__(self, srv: LiveServer, ids: list[str]) -> None:
        self.srv = srv
        self.ids = ids
        self._clients: dict[str | None, httpx.Client] = {}
        self.tokens = {name: srv.add_user(name, role) for name, (role, _) in USERS.items()}
        self.tokens["other_owner"] = srv.add_user("other_owner", "admin")
        srv.add_user("victim")
        self.a = self.project(
            "p_owner", {n: r for n, (_, r) in USERS.items() if r and r != "owner"}
        )
        self.b = self.project("other_owner", {})

    def client(self, name: str | None) -> httpx.Client:
        """One keep-alive client per user (closed with the server)."""
        if name not in self._clients:
            self._clients[name] = self.srv.client(self.tokens[name] if name else None)
        return self._clients[name]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()

    def project(self, owner: str, members: dict[str, str]) -> int:
        c = self.client(owner)
        body = {
            "name": f"project {next(_names)}",
            "dataset_ref": "amazon@1",
            "limit": 5,
            "questions": QUESTIONS,
            "settings": {"overlap": 50},
        }
        r = c.post("/api/projects", json=body)
        assert r.status_code == 201, r.text
        pid = int(r.json()["id"])
        for name, role in members.items():
            r = c.put(f"/api/projects/{pid}/members/{name}", json={"role": role})
            assert r.status_code == 200, r.text
        return pid

    def request(self, method: str, path: str, pid: int) -> tuple[str, dict[str, Any] | None]:
        """The concrete URL and a valid body for one call (setting up what it needs)."""
        sup = self.client("superuser")
        rid = self.ids[0]
        fill: dict[str, Any] = {"pid": pid, "rid": rid, "username": "victim"}
        if path == "/api/projects/{pid}/records/{rid}":
            fill["rid"] = self.ids[4]  # last in the queue: never served to anyone here
        if "{wid}" in path:
            r = sup.post(f"/api/projects/{pid}/webhooks", json={"url": "http://127.0.0.1:9/h"})
            fill["wid"] = r.json()["id"]
        if method == "DELETE" and path.endswith("{username}"):
            sup.put(f"/api/projects/{pid}/members/victim", json={"role": "annotator"})
        if method == "DELETE" and path == "/api/projects/{pid}":
            fill["pid"] = (
                self.project("p_owner", {n: r for n, (_, r) in USERS.items() if r and r != "owner"})
                if pid == self.a
                else self.project("other_owner", {})
            )
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/me/tokens"): {"name": "t"},
            ("POST", "/api/users"): {"username": next(_names), "role": "annotator"},
            ("POST", "/api/projects"): {
                "name": f"new {next(_names)}",
                "dataset_ref": "amazon@1",
                "limit": 2,
                "questions": QUESTIONS,
            },
            ("PATCH", "/api/projects/{pid}"): {"guidelines": "# Be kind"},
            ("PUT", "/api/projects/{pid}/members/{username}"): {"role": "annotator"},
            ("POST", "/api/projects/{pid}/records"): {"from": "amazon@1", "limit": 4},
            ("POST", "/api/projects/{pid}/gold"): {"gold": {self.ids[2]: {"sentiment": "neg"}}},
            ("POST", "/api/projects/{pid}/suggestions"): {
                "suggestions": [
                    {
                        "record_id": rid,
                        "question": "sentiment",
                        "value": "pos",
                        "score": 0.7,
                        "agent": "model:test",
                    }
                ]
            },
            ("POST", "/api/projects/{pid}/suggestions/generate"): {"source": "attribute:pred"},
            ("POST", "/api/projects/{pid}/records/{rid}/answers"): {
                "values": {"sentiment": "pos"},
                "status": "submitted",
            },
            ("POST", "/api/projects/{pid}/records/{rid}/resolve"): {
                "question": "sentiment",
                "value": "neg",
            },
            ("POST", "/api/projects/{pid}/export"): {"method": "majority"},
            ("POST", "/api/projects/{pid}/webhooks"): {"url": "http://127.0.0.1:9/hook"},
        }
        url = path
        for key, value in fill.items():
            url = url.replace("{" + key + "}", str(value))
        return url, bodies.get((method, path))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ws = Workspace.init(tmp_path_factory.mktemp("auth") / "ws")
    import_sample(ws, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    version = ws.version("amazon@1")
    ids = [r["id"] for r in version.iter_rows(columns=["id"])][:5]
    version.write_attribute(
        "pred",
        pa.table(
            {
                "id": ids[:3],
                "label": ["pos", "neg", "pos"],
                "probs": [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]],
            }
        ),
        operation="test",
    )
    with LiveServer(ws, webhook_attempts=1) as srv:
        world = World(srv, ids)
        yield world
        world.close()


def test_every_api_endpoint_has_a_rule(world: World) -> None:
    spec = world.client(None).get("/openapi.json").json()
    routes = {
        (m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/api")
    }
    assert routes - set(RULES) == set(), "new endpoint(s) need a rule in the matrix"
    assert set(RULES) - routes == set(), "rule(s) for endpoints that no longer exist"


def _expected(rule: str, user: str | None, project_role: str | None) -> int | None:
    """The denial code, or None when the call must succeed."""
    if user is None:
        return 401
    if rule == "user":
        return None
    if rule == "global:admin":
        return None if RANK.get(USERS[user][0], 0) >= RANK["admin"] else 403
    if project_role is None:
        return 404  # not a member: the project's existence is not revealed
    return None if RANK[project_role] >= RANK[rule] else 403


@pytest.mark.parametrize(("method", "path"), sorted(RULES), ids=lambda x: str(x))
def test_authorization_matrix(world: World, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    projects = [("own", world.a), ("other", world.b)] if "{pid}" in path else [("-", world.a)]
    failures = []
    for user, (which, pid) in itertools.product([*USERS, None], projects):
        if user == "superuser":
            role: str | None = "owner"
        else:
            role = USERS[user][1] if user and which == "own" else None
        expect = _expected(rule, user, role)
        url, body = world.request(method, path, pid)
        r = world.client(user).request(method, url, json=body)
        ok = (200 <= r.status_code < 300) if expect is None else r.status_code == expect
        if not ok:
            failures.append(
                f"{user or 'anonymous'} on {which} project: expected "
                f"{expect or '2xx'}, got {r.status_code} {r.text[:200]}"
            )
    assert not failures, "\n".join(failures)


def test_annotators_read_only_their_own_records(world: World) -> None:
    c = world.client("p_annotator")
    task = c.get(f"/api/projects/{world.a}/next").json()
    rid = task["record"]["id"]
    r = c.get(f"/api/projects/{world.a}/records/{rid}")
    assert r.status_code == 200 and "gold" not in r.json()  # no gold answers for annotators


def test_only_owners_grant_admin(world: World) -> None:
    r = world.client("p_admin").put(
        f"/api/projects/{world.a}/members/victim", json={"role": "admin"}
    )
    assert r.status_code == 403
    r = world.client("p_owner").put(
        f"/api/projects/{world.a}/members/victim", json={"role": "admin"}
    )
    assert r.status_code == 200
    r = world.client("p_admin").delete(f"/api/projects/{world.a}/members/victim")
    assert r.status_code == 403
    assert (
        world.client("p_owner").delete(f"/api/projects/{world.a}/members/victim").status_code == 204
    )
    r = world.client("p_owner").post("/api/users", json={"username": "boss2", "role": "owner"})
    assert r.status_code == 403  # a global admin cannot make owners


def test_bad_token_is_401(world: World) -> None:
    with httpx.Client(base_url=world.srv.url, headers=bearer("gm_nope"), trust_env=False) as c:
        assert c.get("/api/me").status_code == 401
    me = world.client("p_reviewer").get("/api/me").json()
    assert me == {"id": me["id"], "username": "p_reviewer", "role": "annotator"}


def test_pages_redirect_or_deny(world: World) -> None:
    anon = httpx.Client(base_url=world.srv.url, trust_env=False)
    for page in ("/", f"/projects/{world.a}", f"/projects/{world.a}/annotate"):
        r = anon.get(page)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert world.client("outsider").get(f"/projects/{world.a}").status_code == 404
    assert world.client("p_annotator").get(f"/projects/{world.a}/review").status_code == 403
    assert world.client("p_reviewer").get(f"/projects/{world.a}/review").status_code == 200
    assert world.client("p_annotator").get(f"/projects/{world.a}/annotate").status_code == 200
    anon.close()


# -- logins, CSRF, audit ----------------------------------------------------------------


@pytest.fixture
def server(workspace: Workspace) -> Iterator[LiveServer]:
    import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    with LiveServer(workspace) as srv:
        yield srv


def test_login_wrong_password_csrf_and_audit(server: LiveServer) -> None:
    admin_token = server.add_user("alice", "admin", PASSWORD)
    admin = server.client(admin_token)
    pid = admin.post(
        "/api/projects",
        json={"name": "p", "dataset_ref": "amazon@1", "limit": 2, "questions": QUESTIONS},
    ).json()["id"]
    c = httpx.Client(base_url=server.url, trust_env=False)
    page = c.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    # wrong password: the form again with an error, no session cookie
    r = c.post(
        "/login", data={"username": "alice", "password": "wrong", "csrf_token": token, "next": "/"}
    )
    assert r.status_code == 401 and "Wrong username or password" in r.text
    assert "gristmill_session" not in c.cookies
    # a login form without the CSRF token of its page is refused
    fresh = httpx.Client(base_url=server.url, trust_env=False)
    r = fresh.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "x"})
    assert r.status_code == 403
    # right password: session cookie; next= only to same-site paths
    page = c.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = c.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    home = c.get("/")
    assert home.status_code == 200 and "alice" in home.text
    csrf = home.text.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
    # cookie requests that change something need the CSRF token: header or form field
    patch = {"guidelines": "new"}
    assert c.patch(f"/api/projects/{pid}", json=patch).status_code == 403
    assert (
        c.patch(f"/api/projects/{pid}", json=patch, headers={"X-CSRF-Token": "forged"}).status_code
        == 403
    )
    assert (
        c.patch(f"/api/projects/{pid}", json=patch, headers={"X-CSRF-Token": csrf}).status_code
        == 200
    )
    assert c.get(f"/api/projects/{pid}").status_code == 200  # reads need no token
    # Bearer requests are exempt (no cookie, nothing for a browser to forge)
    assert admin.patch(f"/api/projects/{pid}", json=patch).status_code == 200
    # logout needs the form token too, then the session is gone
    assert c.post("/logout", data={"csrf_token": "bad"}).status_code == 403
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert c.get("/api/me").status_code == 401
    log = admin.get("/api/audit").json()
    actions = [(e["action"], e["user"]) for e in log]
    assert ("login.failed", "alice") in actions
    assert ("login", "alice") in actions and ("logout", "alice") in actions
    assert ("project.created", "alice") in actions and ("project.updated", "alice") in actions
    assert all(e["ip"] == "127.0.0.1" for e in log if e["action"].startswith("log"))


def test_audit_records_what_was_seen_and_changed(server: LiveServer) -> None:
    boss = server.client(server.add_user("boss", "admin"))
    pid = boss.post(
        "/api/projects",
        json={"name": "p", "dataset_ref": "amazon@1", "limit": 2, "questions": QUESTIONS},
    ).json()["id"]
    ann = server.client(server.add_user("ann"))
    boss.put(f"/api/projects/{pid}/members/ann", json={"role": "annotator"})
    rid = ann.get(f"/api/projects/{pid}/next").json()["record"]["id"]
    ann.post(f"/api/projects/{pid}/records/{rid}/answers", json={"values": {"sentiment": "pos"}})
    ann.post(f"/api/projects/{pid}/records/{rid}/answers", json={"values": {"sentiment": "neg"}})
    boss.get(f"/api/projects/{pid}/answers")
    log = boss.get(f"/api/projects/{pid}/audit").json()
    seen = [(e["user"], e["action"], e["record_id"]) for e in reversed(log)]
    assert seen == [
        ("boss", "project.created", None),
        ("boss", "member.set", None),
        ("ann", "record.served", rid),
        ("ann", "answer.submitted", rid),
        ("ann", "answer.submitted", rid),
        ("boss", "answers.read", None),
    ]
    assert ann.get(f"/api/projects/{pid}/audit").status_code == 403


def test_user_and_token_from_the_cli(run_cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    r = run_cli(
        "user", "add", "carol", "--role", "reviewer", "--password-stdin", input="s3cret-password\n"
    )
    assert r.exit_code == 0, r.output
    r = run_cli("user", "add", "carol", "--role", "reviewer")
    assert r.exit_code == 1 and "already exists" in r.output
    r = run_cli("user", "token", "carol")
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("gm_")
    import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    with LiveServer(workspace) as srv:
        assert srv.client(token).get("/api/me").json()["username"] == "carol"
        c, _ = srv.login("carol", "s3cret-password")
        assert c.get("/api/me").json()["role"] == "reviewer"
