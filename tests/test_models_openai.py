"""The OpenAI-compatible backend against a small in-process HTTP server: retries,
endpoint fail-over, errors for servers without logprobs, and the cache counting the
requests the server really served. (The llama.cpp server test is in
test_models_server.py.)"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gristmill.models import (
    EmptyAnswer,
    GenerationParams,
    ModelCache,
    ModelError,
    NoLogprobs,
    cached,
)
from gristmill.models.openai_backend import OpenAIEmbedder, OpenAILM, parse_spec
from gristmill.models.resolve import resolve_embedder, resolve_language_model


class FakeServer:
    """An OpenAI-style server that answers from fixed tables and can fail on purpose."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[int] = []  # statuses to answer with before succeeding
        self.logprobs = True
        self.echo = True
        self.empty = False  # every completion ends at once (EOS first), reporting nothing
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "fake-model", "meta": {"n_ctx": 512}}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append((self.path, body))
                    fail = outer.fail_next.pop(0) if outer.fail_next else None
                if fail:
                    self._send(fail, {"error": {"message": "try again"}})
                    return
                self._send(200, outer.answer(self.path, body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        usage = {"prompt_tokens": 7, "completion_tokens": 1}
        if path == "/v1/embeddings":
            rows = [
                {"index": i, "embedding": [float(len(t)), 1.0, 0.0]}
                for i, t in enumerate(body["input"])
            ]
            return {"data": rows}
        if path == "/v1/chat/completions":
            lp = None
            if self.logprobs and body.get("logprobs"):
                tops = [
                    {"token": "yes", "logprob": math.log(0.6)},
                    {"token": "no", "logprob": math.log(0.3)},
                ]
                lp = {"content": [{"token": "yes", "logprob": math.log(0.6), "top_logprobs": tops}]}
            message = {"role": "assistant", "content": "Paris"}
            choice = {"index": 0, "message": message, "logprobs": lp, "finish_reason": "stop"}
            return {"choices": [choice], "usage": usage}
        prompt = body["prompt"]
        if self.empty:
            lp = {"tokens": [], "token_logprobs": [], "top_logprobs": []}
            return {"choices": [{"index": 0, "text": "", "logprobs": lp, "finish_reason": "stop"}]}
        lp = None
        if self.logprobs and body.get("logprobs") is not None:
            if body.get("echo") and self.echo:
                words = prompt.split(" ")
                tokens = [words[0]] + [" " + w for w in words[1:]] + [" x"]
                offsets, pos = [], 0
                for t in tokens:
                    offsets.append(pos)
                    pos += len(t)
                values = [None] + [-1.0] * (len(tokens) - 1)
                lp = {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}
            else:
                lp = {
                    "tokens": [" yes"],
                    "token_logprobs": [math.log(0.5)],
                    "top_logprobs": [{" yes": math.log(0.5), " no": math.log(0.25)}],
                }
        choice = {"index": 0, "text": " Paris", "logprobs": lp, "finish_reason": "length"}
        return {"choices": [choice], "usage": usage}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def dead_url() -> str:
    """A loopback port with nothing listening (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_parse_spec() -> None:
    s = parse_spec("http://h:8080/v1/org/model-7b,https://g/v1/org/model-7b?concurrency=3&api=chat")
    assert s.endpoints == (("http://h:8080/v1", "org/model-7b"), ("https://g/v1", "org/model-7b"))
    assert s.options == {"concurrency": "3", "api": "chat"}
    assert parse_spec("http://h:1/v1").endpoints == (("http://h:1/v1", None),)
    assert parse_spec("http://h:1/api/m").endpoints == (("http://h:1/api", "m"),)
    with pytest.raises(ModelError, match="unknown openai option"):
        parse_spec("http://h:1/v1/m?colour=red")
    with pytest.raises(ModelError, match="http"):
        parse_spec("h:1/v1/m")


def test_next_tokens_generate_embed(server: FakeServer) -> None:
    lm, text = resolve_language_model(f"openai:{server.url}/fake-model?concurrency=2")
    assert isinstance(lm, OpenAILM) and "openai:fake-model" in text
    raw, chat = lm.next_token_logprobs(
        ["Is it? ANSWER:", [{"role": "user", "content": "Is it?"}]], ["yes", " yes", "maybe"]
    )
    assert raw.logprobs[" yes"] == pytest.approx(math.log(0.5)) and "maybe" not in raw.logprobs
    assert chat.logprobs["yes"] == pytest.approx(math.log(0.6)) and chat.prompt_tokens == 7
    sent = dict(server.requests)  # path → body (concurrent: in any order)
    assert sent["/v1/completions"]["max_tokens"] == 1 and sent["/v1/completions"]["logprobs"] == 20
    assert sent["/v1/chat/completions"]["top_logprobs"] == 20
    (gen,) = lm.generate(["The capital of France is"], GenerationParams(max_tokens=3, n=2))
    assert gen.texts == [" Paris", " Paris"]  # the server ignores n: asked twice
    ctx = lm.continuation_logprobs(["The sky"], [" is blue"])
    assert ctx == [[-1.0, -1.0]]
    assert lm.context_length == 512  # from /models meta.n_ctx
    emb, _ = resolve_embedder(f"openai:{server.url}/fake-model")
    vecs = emb.embed(["a", "abc"])
    assert isinstance(emb, OpenAIEmbedder) and emb.dim == 3 and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)


def test_model_discovered_from_models_list(server: FakeServer) -> None:
    lm = OpenAILM.from_spec(server.url)
    assert lm.name == "openai:fake-model"


def test_retries_503_and_429_then_succeeds(server: FakeServer) -> None:
    server.fail_next = [503, 429, 502]
    lm = OpenAILM.from_spec(f"{server.url}/fake-model?retries=4")
    lm.pool.backoff = 0.01
    (nt,) = lm.next_token_logprobs(["x"], ["yes"])
    assert len(server.requests) == 4 and lm.endpoints[0].failures == 3
    assert nt.logprobs
    server.fail_next = [500] * 3
    lm2 = OpenAILM.from_spec(f"{server.url}/fake-model?retries=2")
    lm2.pool.backoff = 0.01
    with pytest.raises(ModelError, match=r"gave up after 3 attempts.*HTTP 500"):
        lm2.next_token_logprobs(["x"])


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.fail_next = [400]
    lm = OpenAILM.from_spec(f"{server.url}/fake-model")
    with pytest.raises(ModelError, match="HTTP 400"):
        lm.generate(["x"], GenerationParams())
    assert len(server.requests) == 1


def test_dead_endpoint_falls_over_to_live(server: FakeServer) -> None:
    lm = OpenAILM.from_spec(f"{dead_url()}/fake-model,{server.url}/fake-model?concurrency=4")
    out = lm.next_token_logprobs([f"prompt {i}" for i in range(8)], ["yes"])
    dead, live = lm.endpoints
    assert len(out) == 8 and dead.failures >= 1 and dead.served == 0 and live.served == 8


def test_all_endpoints_dead_is_a_clear_error() -> None:
    lm = OpenAILM.from_spec(f"{dead_url()}/m?retries=1")
    lm.pool.backoff = 0.01
    with pytest.raises(ModelError, match=r"gave up after 2 attempts.*ConnectError"):
        lm.generate(["x"], GenerationParams())


def test_server_without_logprobs(server: FakeServer) -> None:
    server.logprobs = False
    lm = OpenAILM.from_spec(f"{server.url}/fake-model")
    with pytest.raises(NoLogprobs, match="no logprobs"):
        lm.next_token_logprobs(["x"])
    with pytest.raises(NoLogprobs, match="no logprobs"):
        lm.next_token_logprobs([[{"role": "user", "content": "x"}]])
    server.logprobs, server.echo = True, False
    with pytest.raises(NoLogprobs, match="echo"):
        lm.continuation_logprobs(["a"], [" b"])


def test_an_answer_that_ends_at_once_is_that_prompts_failure_not_the_servers(
    server: FakeServer,
) -> None:
    """llama-cpp-python reports nothing when EOS is the sampled first token; after 8
    seeds that is an EmptyAnswer (a failure of this prompt, which callers record and go
    on), not NoLogprobs (a server without log-probabilities, which stops a run)."""
    server.empty = True
    lm = OpenAILM.from_spec(f"{server.url}/fake-model")
    with pytest.raises(EmptyAnswer, match="ended its answer at once in 8 samples") as info:
        lm.next_token_logprobs(["x"], ["yes"])
    assert not isinstance(info.value, NoLogprobs)
    assert [b["seed"] for _, b in server.requests] == list(range(8))


def test_api_key_from_env(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sekrit")
    lm = OpenAILM.from_spec(f"{server.url}/fake-model?key_env=MY_KEY")
    assert lm.pool.client.headers["Authorization"] == "Bearer sekrit"
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ModelError, match="MY_KEY"):
        OpenAILM.from_spec(f"{server.url}/fake-model?key_env=MY_KEY")


def test_cache_rerun_sends_no_request(server: FakeServer, tmp_path: Path) -> None:
    spec = f"openai:{server.url}/fake-model"
    cache = tmp_path / "models.sqlite"
    prompts: list[Any] = ["a", "b", [{"role": "user", "content": "c"}]]
    lm, text = resolve_language_model(spec, cache=cache)
    assert "cached" in text
    first = lm.next_token_logprobs(prompts, ["yes"])
    vecs = cached(resolve_embedder(spec)[0], cache).embed(["a", "b"])
    served = len(server.requests)
    assert served == 4
    lm2, _ = resolve_language_model(spec, cache=ModelCache(cache))
    assert lm2.next_token_logprobs(prompts, ["yes"]) == first
    np.testing.assert_array_equal(cached(resolve_embedder(spec)[0], cache).embed(["a", "b"]), vecs)
    assert len(server.requests) == served  # nothing reached the server
