"""`gristmill project …` and `gristmill serve --demo` on real data: create from a
dataset version with a questions file, gold answers, order by an attribute and
suggestions from an attribute; list, members, export; the demo seeds real projects
whose pages render with the app's templates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from test_app_support import LiveServer, import_sample

from gristmill.client import Client
from gristmill.server.demo import seed_demo
from gristmill.store import Workspace


def test_project_create_ls_members_export(
    run_cli: Callable[..., Any], workspace: Workspace, tmp_path: Path
) -> None:
    ref = import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    version = workspace.version(ref)
    ids = [r["id"] for r in version.iter_rows(columns=["id"])][:5]
    version.write_attribute(
        "uncertainty",
        pa.table(
            {
                "id": ids,
                "score": [0.2, 0.9, 0.1, 0.5, 0.3],
                "label": ["pos", "neg", "pos", "pos", "neg"],
                "probs": [[0.8, 0.2], [0.45, 0.55], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]],
            }
        ),
        operation="score",
    )
    questions = tmp_path / "q.yaml"
    questions.write_text(
        yaml.safe_dump([{"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]}])
    )
    (tmp_path / "g.md").write_text("# Label the sentiment")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"record_id": ids[4], "sentiment": "neg"}) + "\n")
    bad_gold = tmp_path / "bad.jsonl"
    bad_gold.write_text(json.dumps({"record_id": ids[4], "sentiment": "pos"}) + "\n{oops\n")

    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump([{"name": "s", "kind": "label", "labels": []}]))
    r = run_cli("project", "create", "x", "--from", ref, "--questions", str(broken))
    assert r.exit_code == 1 and "broken.yaml" in r.output and "needs at least one label" in r.output
    assert run_cli("user", "add", "boss", "--role", "admin").exit_code == 0
    assert run_cli("user", "add", "ann").exit_code == 0
    r = run_cli(
        "project",
        "create",
        "reviews",
        "--from",
        ref,
        "--questions",
        str(questions),
        "--gold-from",
        str(bad_gold),
        "--limit",
        "5",
    )
    assert r.exit_code == 1 and "bad.jsonl:2: not JSON" in r.output
    r = run_cli(
        "project",
        "create",
        "reviews",
        "--from",
        ref,
        "--questions",
        str(questions),
        "--guidelines",
        str(tmp_path / "g.md"),
        "--overlap",
        "2",
        "--gold-from",
        str(gold),
        "--gold-rate",
        "0.2",
        "--order-by",
        "uncertainty",
        "--limit",
        "5",
        "--suggest-from",
        "attribute:uncertainty",
        "--owner",
        "boss",
    )
    assert r.exit_code == 0, r.output
    assert "5 records from amazon@1" in r.output and "stored 5 suggestions" in r.output
    r = run_cli("project", "members", "reviews", "--add", "ann", "--role", "annotator")
    assert r.exit_code == 0 and "ann" in r.output and "owner" in r.output
    r = run_cli("project", "ls")
    assert "reviews" in r.output and "0/4" in r.output

    token = run_cli("user", "token", "ann").output.strip().splitlines()[-1]
    with LiveServer(workspace) as srv:
        ann = Client(srv.url, token)
        served = []
        while (task := ann.next(1)) is not None:
            rid = task["record"]["id"]
            served.append(rid)
            [s] = task["suggestions"]
            assert s["agent"] == "attribute:uncertainty" and 0.5 <= s["score"] <= 0.9
            ann.answer(1, rid, {"sentiment": s["value"]})
    # gold first (rate 0.2), then most uncertain first
    assert served == [ids[4], ids[1], ids[3], ids[0], ids[2]]
    r = run_cli("project", "export", "reviews", "--method", "majority")
    assert r.exit_code == 0, r.output
    assert "wrote amazon@2" in r.output
    new = workspace.version("amazon@2")
    labels = {rec.id: rec.meta.get("labels", {}).get("sentiment") for rec in new.iter_records()}
    assert labels[ids[1]] == "neg" and labels[ids[0]] == "pos"
    assert labels[ids[4]] == "neg"  # the gold answer


def test_demo_seeds_real_projects_and_pages_render(workspace: Workspace) -> None:
    path, username, password = seed_demo(workspace)
    assert seed_demo(workspace) == (path, username, password)  # idempotent
    with LiveServer(workspace) as srv:
        c, csrf = srv.login(username, password)
        home = c.get("/")
        assert "HH-RLHF preferences" in home.text and "LIMA answer ratings" in home.text
        assert c.get(path).status_code == 200
        task = c.get("/api/projects/1/next").json()
        assert task["record"]["kind"] == "preference" and len(task["record"]["responses"]) == 2
        r = c.post(
            f"/api/projects/1/records/{task['record']['id']}/answers",
            json={"values": {"better": {"choice": "a", "strength": 2}, "harmful": "neither"}},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 200, r.text
        lima = c.get("/api/projects/2/next").json()
        assert lima["record"]["kind"] == "conversation"
        assert [d["name"] for d in lima["questions"][0]["dimensions"]] == [
            "helpfulness",
            "correctness",
            "style",
        ]
        page = c.get("/projects/1")
        assert page.status_code == 200 and "Pick the better answer" in page.text
        assert c.get("/projects/1/review").status_code == 200


def test_serve_command_runs_the_app(workspace: Workspace) -> None:
    """`gristmill serve --demo` as a user runs it: a real process on a free port that
    prints the demo login, serves the pages and API, and stops on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gristmill.cli import main; main()",
            "serve",
            "-w",
            str(workspace.root),
            "--demo",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gristmill serve did not come up"
            time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/", trust_env=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "demo login: demo / gristmill-demo" in out
    assert f"http://127.0.0.1:{port}/projects/1/annotate" in out
    assert (workspace.root / "app.sqlite").exists()
