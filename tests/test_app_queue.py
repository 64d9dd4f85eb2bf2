"""The assignment queue through the real server: overlap, gold mixing, order by an
attribute, drafts and skips, lease expiry, and the last-slot race under concurrent
requests (real threads against uvicorn on loopback, real SQLite)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest
import sqlalchemy as sa
from test_app_support import LiveServer, import_sample

from gristmill.annotate.tables import slots
from gristmill.store import Workspace

LABEL_Q = [{"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]}]


@pytest.fixture
def amazon(workspace: Workspace) -> str:
    return import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")


@pytest.fixture
def server(workspace: Workspace, amazon: str) -> Iterator[LiveServer]:
    with LiveServer(workspace) as srv:
        yield srv


_made = iter(range(10_000))


def make_project(
    srv: LiveServer,
    annotators: list[str],
    limit: int,
    gold: dict[str, dict[str, str]] | None = None,
    **settings: Any,
) -> tuple[int, dict[str, httpx.Client]]:
    """A project over the first ``limit`` amazon records, with an admin (``_admin``)
    and the given annotators as members; returns (project id, clients by name)."""
    n = next(_made)
    admin = srv.client(srv.add_user(f"admin{n}", "admin"))
    body = {
        "name": f"project {n}",
        "dataset_ref": "amazon@1",
        "limit": limit,
        "questions": LABEL_Q,
        "settings": settings,
        "gold": gold,
    }
    r = admin.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    clients = {"_admin": admin}
    for name in annotators:
        clients[name] = srv.client(srv.add_user(name))
        r = admin.put(f"/api/projects/{pid}/members/{name}", json={"role": "annotator"})
        assert r.is_success
    return pid, clients


def work_through(c: httpx.Client, pid: int, value: str = "pos") -> list[str]:
    """Annotate until the queue is empty; returns the record ids served, in order."""
    seen = []
    while True:
        r = c.get(f"/api/projects/{pid}/next")
        if r.status_code == 204:
            return seen
        assert r.status_code == 200, r.text
        task = r.json()
        assert task["is_gold"] is False
        rid = task["record"]["id"]
        seen.append(rid)
        a = c.post(
            f"/api/projects/{pid}/records/{rid}/answers",
            json={"values": {"sentiment": value}, "status": "submitted"},
        )
        assert a.status_code == 200, a.text


def test_overlap_is_respected(server: LiveServer) -> None:
    pid, cs = make_project(server, ["ann1", "ann2", "ann3"], limit=4, overlap=2)
    first = work_through(cs["ann1"], pid)
    second = work_through(cs["ann2"], pid)
    third = work_through(cs["ann3"], pid)
    assert len(first) == len(set(first)) == 4  # nobody sees a record twice
    assert sorted(second) == sorted(first)
    assert third == []  # every record already has its 2 answers
    rows = cs["_admin"].get(f"/api/projects/{pid}/answers").json()
    assert Counter(r["record_id"] for r in rows) == dict.fromkeys(first, 2)
    prog = cs["_admin"].get(f"/api/projects/{pid}").json()["progress"]
    assert prog == {"total_records": 4, "completed_records": 4}
    # answering a full record directly (without next) is refused, not silently stored
    r = cs["ann3"].post(
        f"/api/projects/{pid}/records/{first[0]}/answers", json={"values": {"sentiment": "neg"}}
    )
    assert r.status_code == 409 and "already has its 2 answer" in r.json()["detail"]


def test_invalid_answer_names_the_question(server: LiveServer) -> None:
    pid, cs = make_project(server, ["ann"], limit=2)
    rid = cs["ann"].get(f"/api/projects/{pid}/next").json()["record"]["id"]
    r = cs["ann"].post(
        f"/api/projects/{pid}/records/{rid}/answers",
        json={"values": {"sentiment": "meh", "nope": 1}},
    )
    assert r.status_code == 422
    assert {"question": "sentiment", "error": "'meh' is not one of pos, neg"} in r.json()["detail"]
    assert {"question": "nope", "error": "no such question in this project"} in r.json()["detail"]
    r = cs["ann"].post(f"/api/projects/{pid}/records/{rid}/answers", json={"values": {}})
    assert r.json()["detail"] == [{"question": "sentiment", "error": "an answer is required"}]


def test_gold_mixed_at_rate_and_scored(server: LiveServer, workspace: Workspace) -> None:
    ids = [r["id"] for r in workspace.version("amazon@1").iter_rows(columns=["id"])][:12]
    gold = {ids[10]: {"sentiment": "pos"}, ids[11]: {"sentiment": "neg"}}
    pid, cs = make_project(server, ["ann1", "ann2"], limit=12, overlap=2, gold_rate=0.25, gold=gold)
    served = work_through(cs["ann1"], pid, value="pos")
    # gold first (0 < 0.25·1), then again once a quarter is reached (1 < 0.25·5)
    assert [i for i, rid in enumerate(served) if rid in gold] == [0, 4]
    assert len(served) == 12 and set(served) == set(ids)
    served2 = work_through(cs["ann2"], pid, value="neg")
    assert {rid for rid in served2 if rid in gold} == set(gold)  # every annotator gets gold
    stats = cs["_admin"].get(f"/api/projects/{pid}/stats").json()
    acc = {p["username"]: p["gold_accuracy"] for p in stats["per_annotator"]}
    assert acc == {"ann1": 0.5, "ann2": 0.5}
    prog = cs["_admin"].get(f"/api/projects/{pid}").json()["progress"]
    assert prog["total_records"] == 10  # gold records are tests, not work


def test_order_by_attribute_most_uncertain_first(server: LiveServer, workspace: Workspace) -> None:
    version = workspace.version("amazon@1")
    ids = [r["id"] for r in version.iter_rows(columns=["id"])][:6]
    scores = [0.1, 0.9, 0.5, 0.7, 0.3, 0.2]
    version.write_attribute(
        "uncertainty",
        pa.table({"id": ids, "score": scores, "label": ["pos"] * 6}),
        operation="score",
    )
    pid, cs = make_project(server, ["ann"], limit=6, order="attribute:uncertainty")
    served = work_through(cs["ann"], pid)
    assert served == [i for _, i in sorted(zip(scores, ids, strict=True), reverse=True)]
    pid2, cs2 = make_project(server, ["ann_b"], limit=6, order="attribute:uncertainty:asc")
    assert work_through(cs2["ann_b"], pid2) == [i for _, i in sorted(zip(scores, ids, strict=True))]


def test_random_order_is_seeded(server: LiveServer, workspace: Workspace) -> None:
    ids = [r["id"] for r in workspace.version("amazon@1").iter_rows(columns=["id"])][:8]
    pid, cs = make_project(server, ["r1"], limit=8, order="random", seed=3)
    pid2, cs2 = make_project(
        server, ["r2"], limit=8, order="random", seed=3, overlap=1, show_suggestions=False
    )
    a, b = work_through(cs["r1"], pid), work_through(cs2["r2"], pid2)
    assert a == b and sorted(a) == sorted(ids) and a != ids


def test_drafts_are_kept_and_skips_free_the_slot(server: LiveServer) -> None:
    pid, cs = make_project(server, ["ann1", "ann2"], limit=2, overlap=1)
    c1, c2 = cs["ann1"], cs["ann2"]
    first = c1.get(f"/api/projects/{pid}/next").json()
    rid = first["record"]["id"]
    r = c1.post(
        f"/api/projects/{pid}/records/{rid}/answers",
        json={"values": {"sentiment": "neg"}, "status": "draft"},
    )
    assert r.status_code == 200
    again = c1.get(f"/api/projects/{pid}/next").json()
    assert again["record"]["id"] == rid and again["draft"] == {"values": {"sentiment": "neg"}}
    # ann2 gets the other record: the draft keeps ann1's slot
    other = c2.get(f"/api/projects/{pid}/next").json()["record"]["id"]
    assert other != rid
    assert (
        c2.post(
            f"/api/projects/{pid}/records/{other}/answers", json={"status": "skipped"}
        ).status_code
        == 200
    )
    # ann1 skips the drafted record: it goes back to the pool, ann2 receives it
    assert (
        c1.post(
            f"/api/projects/{pid}/records/{rid}/answers", json={"status": "skipped"}
        ).status_code
        == 200
    )
    assert c2.get(f"/api/projects/{pid}/next").json()["record"]["id"] == rid
    assert c1.get(f"/api/projects/{pid}/next").json()["record"]["id"] == other
    rows = cs["_admin"].get(f"/api/projects/{pid}/answers?status=all").json()
    assert {(r["annotator"], r["record_id"], r["status"]) for r in rows} == {
        ("ann1", rid, "skipped"),
        ("ann2", other, "skipped"),
    }


def test_expired_lease_is_reclaimed(server: LiveServer) -> None:
    pid, cs = make_project(server, ["slow", "fast"], limit=1, overlap=1)
    rid = cs["slow"].get(f"/api/projects/{pid}/next").json()["record"]["id"]
    assert cs["fast"].get(f"/api/projects/{pid}/next").status_code == 204
    # time passing is the one thing we fake: move the lease's expiry into the past
    with server.state.tx() as conn:
        conn.execute(slots.update().values(expires_at=sa.func.datetime("now", "-1 hour")))
    assert cs["fast"].get(f"/api/projects/{pid}/next").json()["record"]["id"] == rid


def _concurrently(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_last_slot_race_concurrent_next(server: LiveServer) -> None:
    names = [f"racer{i}" for i in range(8)]
    pid, cs = make_project(server, names, limit=3, overlap=2)
    # two racers fill slot 0 of every record first
    work_through(cs[names[0]], pid)
    for rnd in range(3):
        got = _concurrently(
            len(names) - 1, lambda i: cs[names[i + 1]].get(f"/api/projects/{pid}/next")
        )
        winners = [r.json()["record"]["id"] for r in got if r.status_code == 200]
        assert all(r.status_code in (200, 204) for r in got)
        # three records have one open slot each: at most three winners, all different
        assert (
            len(winners) == len(set(winners)) == 3
            if rnd == 0
            else len(winners) == len(set(winners))
        )
        with server.state.tx() as conn:
            held = conn.execute(sa.select(sa.func.count()).select_from(slots)).scalar_one()
        assert held <= 6
        # release: the winners skip, so the next round races again
        for r, i in zip(got, range(1, len(names)), strict=True):
            if r.status_code == 200:
                cs[names[i]].post(
                    f"/api/projects/{pid}/records/{r.json()['record']['id']}/answers",
                    json={"status": "skipped"},
                )


def test_last_slot_race_concurrent_submit(server: LiveServer) -> None:
    names = [f"sub{i}" for i in range(6)]
    pid, cs = make_project(server, names, limit=1, overlap=1)
    rid = cs["_admin"].get(f"/api/projects/{pid}/next").json()["record"]["id"]
    cs["_admin"].post(f"/api/projects/{pid}/records/{rid}/answers", json={"status": "skipped"})
    got = _concurrently(
        len(names),
        lambda i: cs[names[i]].post(
            f"/api/projects/{pid}/records/{rid}/answers", json={"values": {"sentiment": "pos"}}
        ),
    )
    codes = Counter(r.status_code for r in got)
    assert codes == {200: 1, 409: len(names) - 1}
    assert len(cs["_admin"].get(f"/api/projects/{pid}/answers").json()) == 1


def test_raising_the_overlap_reopens_complete_records(server: LiveServer) -> None:
    pid, cs = make_project(server, ["first", "second"], limit=2, overlap=1)
    assert len(work_through(cs["first"], pid)) == 2
    assert cs["second"].get(f"/api/projects/{pid}/next").status_code == 204
    r = cs["_admin"].patch(f"/api/projects/{pid}", json={"settings": {"overlap": 2}})
    assert r.status_code == 200 and r.json()["settings"]["overlap"] == 2
    assert len(work_through(cs["second"], pid)) == 2
    r = cs["_admin"].patch(f"/api/projects/{pid}", json={"settings": {"overlap": 0}})
    assert r.status_code == 422
