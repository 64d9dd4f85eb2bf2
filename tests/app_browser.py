"""Shared set-up for the annotation app's browser tests: the real app (uvicorn on a
loopback port, SQLite in a temporary workspace with sample data imported), users with
API tokens, and headless Debian Chromium driven by Playwright's sync API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_app_support import LiveServer, import_sample

from gristmill.store import Workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-9"
USERS = {"olga": "owner", "alice": "annotator", "bob": "annotator", "rita": "reviewer"}

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")


@dataclass
class AppServer:
    """A running app: base URL, workspace, and one API client per user (bearer token)."""

    url: str
    workspace: Workspace
    app: Any
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def api(self, user: str = "olga") -> httpx.Client:
        return self.clients[user]

    def create_project(
        self,
        name: str,
        questions: list[dict[str, Any]],
        *,
        dataset_ref: str | None = None,
        records: list[dict[str, Any]] | None = None,
        limit: int | None = None,
        settings: dict[str, Any] | None = None,
        members: dict[str, str] | None = None,
        guidelines: str = "",
    ) -> int:
        """Create a project as the owner and add members (default: alice, bob, rita)."""
        body: dict[str, Any] = {"name": name, "questions": questions, "guidelines": guidelines}
        if dataset_ref:
            body["dataset_ref"] = dataset_ref
        if records is not None:
            body["records"] = records
        if limit is not None:
            body["limit"] = limit
        if settings:
            body["settings"] = settings
        r = self.api().post("/api/projects", json=body)
        assert r.status_code == 201, r.text
        pid = int(r.json()["id"])
        roles = (
            members
            if members is not None
            else {"alice": "annotator", "bob": "annotator", "rita": "reviewer"}
        )
        for user, role in roles.items():
            m = self.api().put(f"/api/projects/{pid}/members/{user}", json={"role": role})
            assert m.status_code == 200, m.text
        return pid

    def answers(self, pid: int, status: str = "all") -> list[dict[str, Any]]:
        """Stored answers in long format (one row per record, annotator and question)."""
        r = self.api().get(f"/api/projects/{pid}/answers", params={"status": status})
        assert r.status_code == 200, r.text
        return list(r.json())

    def record_ids(self, ref: str, n: int) -> list[str]:
        """The ids of the first ``n`` records of dataset version ``ref``."""
        return [rec.id for rec in itertools.islice(self.workspace.version(ref).iter_records(), n)]

    def suggest(self, pid: int, question: str, values: dict[str, Any], score: float | None) -> None:
        """Store a ``model:smollm2`` suggestion for ``question``: record id → value."""
        rows = [
            {"record_id": rid, "question": question, "value": value, "score": score}
            for rid, value in values.items()
        ]
        r = self.api().post(
            f"/api/projects/{pid}/suggestions",
            json={"suggestions": [{**row, "agent": "model:smollm2"} for row in rows]},
        )
        assert r.status_code == 200, r.text

    def answer(
        self, pid: int, user: str, rid: str, values: dict[str, Any], status: str = "submitted"
    ) -> None:
        r = self.api(user).get(f"/api/projects/{pid}/next")  # leases a record, as the UI does
        assert r.status_code in (200, 204), r.text
        r = self.api(user).post(
            f"/api/projects/{pid}/records/{rid}/answers", json={"values": values, "status": status}
        )
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The real app over a fresh workspace with the UCI Amazon sentences (``amazon@1``)
    and HH-RLHF preference pairs (``hh@1``), served by uvicorn on loopback."""
    ws = Workspace.init(tmp_path_factory.mktemp("app") / "ws")
    import_sample(ws, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    import_sample(ws, "hh_rlhf/harmless-base-test.jsonl.gz", "hh")
    with LiveServer(ws) as live:
        srv = AppServer(url=live.url, workspace=ws, app=live.app)
        for user, role in USERS.items():
            srv.clients[user] = live.client(live.add_user(user, role, PASSWORD))
        try:
            yield srv
        finally:
            for c in srv.clients.values():
                c.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module; tests open their own contexts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def login(browser: Any, srv: AppServer, user: str, next_path: str = "/") -> Any:
    """A fresh browser context signed in as ``user`` through the login form; returns a page
    (1280×800) already at ``next_path``. Page errors fail the test at the end."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.js_errors = errors
    page.goto(f"{srv.url}/login?next={next_path}")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    return page


_POINTS_JS = """([sel, start, end]) => {
  const root = document.querySelector(sel);
  const map = [0];
  let u = 0;
  for (const ch of root.textContent) { u += ch.length; map.push(u); }
  function point(u16, side) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    let node, acc = 0;
    while ((node = walker.nextNode())) {
      const len = node.data.length;
      if (u16 < acc + len || (side === 'end' && u16 === acc + len)) {
        const off = u16 - acc, r = document.createRange();
        if (side === 'start') { r.setStart(node, off); r.setEnd(node, off + 1); }
        else { r.setStart(node, off - 1); r.setEnd(node, off); }
        const rects = r.getClientRects();
        const b = side === 'start' ? rects[0] : rects[rects.length - 1];
        return side === 'start' ? [b.left + 1, b.top + b.height / 2] : [b.right - 1, b.top + b.height / 2];
      }
      acc += len;
    }
    throw new Error('offset outside the text: ' + u16);
  }
  return [point(map[start], 'start'), point(map[end], 'end')];
}"""


def mouse_select(page: Any, selector: str, start: int, end: int) -> None:
    """Select characters ``start:end`` (Python code point offsets) of the element's text by
    dragging the real mouse from the first character to the last."""
    (x1, y1), (x2, y2) = page.evaluate(_POINTS_JS, [selector, start, end])
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=3)
    page.mouse.move(x2, y2, steps=3)
    page.mouse.up()
