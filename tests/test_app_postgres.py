"""The app on a real PostgreSQL 15: the Alembic migrations, the answer flow and the
last-slot race under concurrent requests (PostgreSQL runs transactions truly in
parallel, so this is where the unique (record, slot) key earns its keep).

PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` in a
temporary folder it owns; without the binaries the test is skipped, saying why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_app_support import PASSWORD, LiveServer, form_login, import_sample

from gristmill.annotate.tables import audit, login_failures, slots
from gristmill.server.db import current_revision, make_engine
from gristmill.server.throttle import LoginLimits
from gristmill.store import Workspace

BIN = Path(os.environ.get("GRISTMILL_PG_BIN", "/usr/local/bin"))
QUESTIONS = [{"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]}]


def _as_postgres_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    initdb, pg_ctl = BIN / "initdb", BIN / "pg_ctl"
    if not (initdb.exists() and pg_ctl.exists() and (BIN / "postgres").exists()):
        pytest.skip(
            f"PostgreSQL binaries (initdb, pg_ctl, postgres) not found in {BIN}; "
            "set GRISTMILL_PG_BIN to their folder"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as nobody")
    root = Path(tempfile.mkdtemp(prefix="gm-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    port = _free_port()
    run = lambda args: subprocess.run(  # noqa: E731
        _as_postgres_user(args), check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(
            [
                str(initdb),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        run(
            [
                str(pg_ctl),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ]
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}") from exc
    try:
        admin = sa.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE gristmill")
        admin.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/gristmill"
    finally:
        subprocess.run(
            _as_postgres_user([str(pg_ctl), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_migrations_queue_and_race_on_postgres(pg_url: str, workspace: Workspace) -> None:
    import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    with LiveServer(workspace, pg_url) as srv:
        engine = make_engine(pg_url)
        assert current_revision(engine) == "0003"
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"users", "projects", "items", "answers", "slots", "audit"} <= tables
        admin = srv.client(srv.add_user("admin", "admin"))
        pid = admin.post(
            "/api/projects",
            json={
                "name": "pg",
                "dataset_ref": "amazon@1",
                "limit": 3,
                "questions": QUESTIONS,
                "settings": {"overlap": 2},
            },
        ).json()["id"]
        names = [f"a{i}" for i in range(12)]
        clients = {}
        for n in names:
            clients[n] = srv.client(srv.add_user(n))
            admin.put(f"/api/projects/{pid}/members/{n}", json={"role": "annotator"})
        # 12 annotators ask at once for 3 records × 2 slots: exactly 6 leases, ≤2 per record
        barrier = threading.Barrier(len(names))
        got: dict[str, int | str] = {}

        def ask(name: str) -> None:
            barrier.wait()
            r = clients[name].get(f"/api/projects/{pid}/next")
            got[name] = r.json()["record"]["id"] if r.status_code == 200 else r.status_code

        threads = [threading.Thread(target=ask, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = Counter(v for v in got.values() if isinstance(v, str))
        assert sum(winners.values()) == 6 and set(winners.values()) == {2}, got
        assert Counter(v for v in got.values() if isinstance(v, int)) == {204: 6}
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(slots)).scalar_one() == 6
        # the winners submit; everything is complete, nobody can add a third answer
        for name, rid in got.items():
            if isinstance(rid, str):
                r = clients[name].post(
                    f"/api/projects/{pid}/records/{rid}/answers",
                    json={"values": {"sentiment": "pos"}},
                )
                assert r.status_code == 200, r.text
        rows = admin.get(f"/api/projects/{pid}/answers").json()
        assert Counter(r["record_id"] for r in rows) == dict.fromkeys(winners, 2)
        assert admin.get(f"/api/projects/{pid}").json()["progress"] == {
            "total_records": 3,
            "completed_records": 3,
        }
        loser = next(n for n, v in got.items() if isinstance(v, int))
        r = clients[loser].post(
            f"/api/projects/{pid}/records/{next(iter(winners))}/answers",
            json={"values": {"sentiment": "neg"}},
        )
        assert r.status_code == 409
        engine.dispose()


def test_login_throttle_on_postgres(pg_url: str, workspace: Workspace) -> None:
    """Failed logins are counted in PostgreSQL: the fourth attempt is refused (429) even
    with the right password, another user still logs in, a second server on the same
    database refuses too, and the refusals are audited."""
    limits = LoginLimits(max_user_failures=3, window_s=600)
    with LiveServer(workspace, pg_url, login_limits=limits) as srv:
        srv.add_user("alice", "annotator", PASSWORD)
        srv.add_user("bob", "annotator", PASSWORD)
        # ten guesses at once: the per-user lock lets exactly three be checked
        barrier = threading.Barrier(10)
        codes: list[int] = []

        def guess() -> None:
            barrier.wait()
            codes.append(form_login(srv, "alice", "wrong-password").status_code)

        threads = [threading.Thread(target=guess) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Counter(codes) == {401: 3, 429: 7}
        r = form_login(srv, "alice", PASSWORD)
        assert r.status_code == 429 and 590 <= int(r.headers["Retry-After"]) <= 600
        assert form_login(srv, "bob", PASSWORD).status_code == 303
    with LiveServer(workspace, pg_url, login_limits=limits) as again:
        assert form_login(again, "alice", PASSWORD).status_code == 429
        with again.state.tx() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(login_failures)).scalar_one()
                == 3
            )
            actions = (
                conn.execute(
                    sa.select(audit.c.action)
                    .where(audit.c.username == "alice")
                    .order_by(audit.c.id)
                )
                .scalars()
                .all()
            )
        assert Counter(actions) == {"login.failed": 3, "login.throttled": 9}
