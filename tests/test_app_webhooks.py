"""Webhooks with a real receiving HTTP server on loopback: signed JSON for
answer.created / answer.updated, retries after failures, delivery in the background
(a slow receiver never slows the annotator), and the delivery log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_app_support import LiveServer, import_sample

from gristmill.client import Client
from gristmill.server.webhooks import SIGNATURE_HEADER, verify
from gristmill.store import Workspace

SECRET = "a-shared-secret-of-some-length"


class Receiver:
    """A loopback HTTP server that records POSTs; it can fail the first N or stall."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                if outer.delay:
                    time.sleep(outer.delay)
                if outer.attempts <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(workspace: Workspace) -> Iterator[LiveServer]:
    import_sample(workspace, "uci_sentiment_amazon/amazon_cells_labelled.tsv", "amazon")
    with LiveServer(workspace, webhook_attempts=3, webhook_backoff=0.05) as srv:
        yield srv


def _project(srv: LiveServer) -> tuple[Client, Client, int]:
    admin = Client(srv.url, srv.add_user("lead", "admin"))
    ann = Client(srv.url, srv.add_user("ann"))
    pid = admin.create_project(
        "hooks",
        [{"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]}],
        "amazon@1",
        limit=2,
    )["id"]
    admin.add_member(pid, "ann")
    return admin, ann, pid


def test_signed_events_created_then_updated(server: LiveServer) -> None:
    admin, ann, pid = _project(server)
    with Receiver(fail_first=2) as rx:  # two failures, then success on the third try
        hook = admin.add_webhook(pid, rx.url, secret=SECRET)
        assert hook["secret"] == SECRET
        rid = ann.next(pid)["record"]["id"]  # type: ignore[index]
        ann.answer(pid, rid, {"sentiment": "neg"}, status="draft")  # drafts send nothing
        ann.answer(pid, rid, {"sentiment": "pos"})
        ann.answer(pid, rid, {"sentiment": "neg"})
        server.state.webhooks.join()
        assert rx.attempts == 4
        events = []
        for headers, body in rx.received:
            assert verify(SECRET, body, headers[SIGNATURE_HEADER.lower()])
            assert not verify(
                "another secret, same length...", body, headers[SIGNATURE_HEADER.lower()]
            )
            payload = json.loads(body)
            assert headers["x-gristmill-event"] == payload["event"]
            events.append(
                (payload["event"], payload["data"]["values"], payload["data"]["annotator"])
            )
        assert events == [
            ("answer.created", {"sentiment": "pos"}, "ann"),
            ("answer.updated", {"sentiment": "neg"}, "ann"),
        ]
        log = admin.deliveries(pid, hook["id"])
        assert [(d["event"], d["status"], d["attempts"], d["response_code"]) for d in log] == [
            ("answer.created", "delivered", 3, 204),
            ("answer.updated", "delivered", 1, 204),
        ]


def test_failed_delivery_is_logged_and_a_slow_receiver_never_blocks(server: LiveServer) -> None:
    admin, ann, pid = _project(server)
    with Receiver(fail_first=100) as down, Receiver(delay=1.5) as slow:
        h_down = admin.add_webhook(pid, down.url, events=["answer.created"])
        admin.add_webhook(pid, slow.url)
        rid = ann.next(pid)["record"]["id"]  # type: ignore[index]
        started = time.monotonic()
        ann.answer(pid, rid, {"sentiment": "pos"})
        assert time.monotonic() - started < 1.0  # the annotator does not wait for receivers
        server.state.webhooks.join()
        assert down.attempts == 3 and len(slow.received) == 1
        [d] = admin.deliveries(pid, h_down["id"])
        assert (d["status"], d["attempts"], d["error"]) == ("failed", 3, "HTTP 503")
