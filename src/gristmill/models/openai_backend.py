"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted APIs).

Spec (after ``openai:``)::

    http://host:8080/v1/<model>[,http://other:8080/v1/<model>...][?option=value&...]

The model name is what follows ``/v1/`` (it may contain ``/``, e.g. ``org/model``);
a URL ending in ``/v1`` asks the server's ``/models`` for its first model. Options:
``concurrency`` (requests in flight, default 8), ``retries`` (default 4), ``timeout``
(seconds, default 120), ``key_env`` (name of the env var holding the API key; default
``OPENAI_API_KEY`` when set), ``api`` (``completions`` or ``chat``: how text prompts
are sent; messages always go to chat), ``context`` (context length, when the server
does not say), ``dim`` (embedding size), ``name`` (cache identity; default
``openai:<model>``, so a fleet of servers of one model shares its cache).

Requests go to the least busy live endpoint; connection errors, 429 and 5xx are
retried with exponential back-off (``Retry-After`` honoured), moving to another
endpoint when there is one. Bounded concurrency comes from a thread pool: the work is
waiting on the network, not Python.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
import numpy as np
import numpy.typing as npt

from gristmill.models.errors import EmptyAnswer, ModelError, NoLogprobs
from gristmill.models.protocols import (
    ChatMessage,
    Generation,
    GenerationParams,
    NextTokens,
    Prompt,
)
from gristmill.models.sentence_transformers_backend import l2_normalise

T = TypeVar("T")
R = TypeVar("R")
EOS_RETRIES = 8
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
OPTIONS = ("concurrency", "retries", "timeout", "key_env", "api", "context", "dim", "name")


@dataclass
class Endpoint:
    """One server: where it is, what it serves, how busy and how healthy it is."""

    base_url: str  # ends with /v1 (or whatever prefix the server uses)
    model: str
    in_flight: int = 0
    served: int = 0  # responses with status 200
    failures: int = 0  # connection errors and retryable statuses
    down_until: float = 0.0


@dataclass(frozen=True)
class ServerSpec:
    endpoints: tuple[tuple[str, str | None], ...]  # (base_url, model or None)
    options: dict[str, str]


def parse_spec(target: str) -> ServerSpec:
    """Split ``url[,url...][?opts]`` into endpoints and options."""
    target = target.strip()
    if target.startswith("openai:"):
        target = target[len("openai:") :]
    query = ""
    if "?" in target:
        target, query = target.rsplit("?", 1)
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ModelError(f"unknown openai option(s) {sorted(unknown)}; known: {', '.join(OPTIONS)}")
    endpoints: list[tuple[str, str | None]] = []
    for raw in filter(None, (u.strip() for u in target.split(","))):
        if not raw.startswith(("http://", "https://")):
            raise ModelError(f"openai endpoint {raw!r} must start with http:// or https://")
        url = raw.rstrip("/")
        if "/v1/" in url:
            base, model = url.split("/v1/", 1)
            endpoints.append((base + "/v1", model))
        elif url.endswith("/v1"):
            endpoints.append((url, None))
        else:
            base, _, model = url.rpartition("/")
            if "//" not in base or base.endswith("/"):
                raise ModelError(f"openai spec {raw!r}: expected <base_url>/<model>")
            endpoints.append((base, model))
    if not endpoints:
        raise ModelError("openai spec names no endpoint: use openai:http://host:port/v1/<model>")
    return ServerSpec(tuple(endpoints), options)


class EndpointPool:
    """Several endpoints of one model behind one ``post``: least-busy choice, retries
    with exponential back-off, a short quarantine for endpoints that refuse connections."""

    def __init__(
        self,
        endpoints: Sequence[tuple[str, str | None]],
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        retries: int = 4,
        timeout: float = 120.0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = max(1, concurrency)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=self.concurrency * 2),
        )
        self._lock = threading.Lock()
        self._turn = itertools.count()
        models = [m for _, m in endpoints if m]
        self.endpoints = [Endpoint(b, m or "") for b, m in endpoints]
        if not models:  # ask the first server that answers what it serves
            found = self._discover_model()
            for e in self.endpoints:
                e.model = found
        else:
            for e in self.endpoints:
                e.model = e.model or models[0]

    @property
    def model(self) -> str:
        return self.endpoints[0].model

    def _discover_model(self) -> str:
        for e in self.endpoints:
            try:
                data = self.client.get(f"{e.base_url}/models").json()
                return str(data["data"][0]["id"])
            except (httpx.HTTPError, KeyError, IndexError, ValueError):
                continue
        raise ModelError(
            "no model named in the openai spec and no endpoint answered /models: "
            "use openai:<base_url>/<model>"
        )

    def _pick(self, avoid: Endpoint | None) -> Endpoint:
        now = time.monotonic()
        with self._lock:
            live = [e for e in self.endpoints if e.down_until <= now and e is not avoid]
            if not live:
                live = [e for e in self.endpoints if e is not avoid] or self.endpoints
                live = [min(live, key=lambda e: e.down_until)]
            turn = next(self._turn)
            n = len(self.endpoints)
            best = min(live, key=lambda e: (e.in_flight, (self.endpoints.index(e) - turn) % n))
            best.in_flight += 1
            return best

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = min(30.0, max(delay, float(retry_after)))
        time.sleep(delay)

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` (``model`` filled in per endpoint) and return the JSON answer."""
        return self.post_url(path, payload)[0]

    def post_url(self, path: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """As ``post``, with the URL that answered (for error messages)."""
        last: str = ""
        avoid: Endpoint | None = None
        for attempt in range(self.retries + 1):
            ep = self._pick(avoid)
            url = f"{ep.base_url}{path}"
            try:
                resp = self.client.post(url, json={**payload, "model": ep.model})
            except httpx.TransportError as exc:
                with self._lock:
                    ep.in_flight -= 1
                    ep.failures += 1
                    ep.down_until = time.monotonic() + min(30.0, 2.0 * 2**attempt)
                last = f"{url}: {type(exc).__name__}: {exc}"
                avoid = ep
                if attempt < self.retries and not self._another_live(ep):
                    self._sleep(attempt)
                continue
            with self._lock:
                ep.in_flight -= 1
            if resp.status_code == 200:
                with self._lock:
                    ep.served += 1
                try:
                    body: dict[str, Any] = resp.json()
                except ValueError as exc:
                    raise ModelError(
                        f"{url} answered with invalid JSON: {resp.text[:200]}"
                    ) from exc
                return body, url
            if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                with self._lock:
                    ep.failures += 1
                last = f"{url}: HTTP {resp.status_code}: {resp.text[:300]}"
                avoid = ep
                if attempt < self.retries:
                    self._sleep(attempt, resp.headers.get("retry-after"))
                continue
            raise ModelError(f"{url}: HTTP {resp.status_code}: {resp.text[:500]}")
        raise ModelError(f"gave up after {self.retries + 1} attempts; last error: {last}")

    def _another_live(self, ep: Endpoint) -> bool:
        now = time.monotonic()
        return any(e is not ep and e.down_until <= now for e in self.endpoints)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` with at most ``concurrency`` requests in flight, in order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def get_models(self) -> list[dict[str, Any]]:
        """The first answering endpoint's ``/models`` list (empty when none answers)."""
        for e in self.endpoints:
            try:
                resp = self.client.get(f"{e.base_url}/models")
                if resp.status_code == 200:
                    return list(resp.json().get("data", []))
            except (httpx.HTTPError, ValueError):
                continue
        return []

    def close(self) -> None:
        self.client.close()


def _pool_from(spec: ServerSpec) -> EndpointPool:
    opts = spec.options
    key_env = opts.get("key_env")
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise ModelError(f"environment variable {key_env} (key_env) is not set")
    else:
        key = os.environ.get("OPENAI_API_KEY")
    try:
        return EndpointPool(
            spec.endpoints,
            api_key=key,
            concurrency=int(opts.get("concurrency", 8)),
            retries=int(opts.get("retries", 4)),
            timeout=float(opts.get("timeout", 120)),
        )
    except ValueError as exc:
        raise ModelError(f"bad openai option: {exc}") from exc


def _no_logprobs(url: str, what: str) -> NoLogprobs:
    return NoLogprobs(
        f"{url} returned no {what}. The server must support OpenAI `logprobs` "
        "(vLLM: yes, raise --max-logprobs for large top_k; llama.cpp server: yes; "
        "Ollama: /v1 logprobs only in recent versions; hosted chat APIs: top_logprobs ≤ 20)"
    )


def _completion_top(data: dict[str, Any], url: str) -> dict[str, float] | None:
    """Top next tokens of a /completions answer, best first; None when the answer was
    empty (the first token ended it)."""
    choice = (data.get("choices") or [{}])[0]
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        raise _no_logprobs(url, "logprobs")
    tops = lp.get("top_logprobs") or []
    if not tops:
        if choice.get("finish_reason") == "stop" and not choice.get("text"):
            return None
        raise _no_logprobs(url, "top_logprobs")
    if not isinstance(tops[0], dict):
        raise _no_logprobs(url, "top_logprobs")
    found = {str(t): float(v) for t, v in sorted(tops[0].items(), key=lambda kv: -float(kv[1]))}
    tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
    if tokens and values and values[0] is not None:
        found.setdefault(str(tokens[0]), float(values[0]))
    return found


def _chat_top(data: dict[str, Any], url: str) -> dict[str, float] | None:
    """Top next tokens of a /chat/completions answer, best first; None when empty."""
    choice = (data.get("choices") or [{}])[0]
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        raise _no_logprobs(url, "logprobs")
    content = lp.get("content") or []
    if not content:
        message = choice.get("message") or {}
        if choice.get("finish_reason") == "stop" and not message.get("content"):
            return None
        raise _no_logprobs(url, "logprobs")
    first = content[0]
    found: dict[str, float] = {}
    for item in sorted(first.get("top_logprobs") or [], key=lambda d: -float(d["logprob"])):
        found.setdefault(str(item["token"]), float(item["logprob"]))
    if first.get("token") is not None and first.get("logprob") is not None:
        found.setdefault(str(first["token"]), float(first["logprob"]))
    return found


class OpenAILM:
    """``LanguageModel`` over OpenAI-compatible HTTP endpoints.

    next-token log-probabilities come from ``logprobs``/``top_logprobs`` of a one-token
    completion: a candidate outside the top k the server returns is absent from
    ``NextTokens.logprobs`` (servers cap k: OpenAI at 20 for chat and 5 for
    completions), and ``truncated_tokens`` is 0 (the server truncates, if at all).
    ``continuation_logprobs`` needs prompt log-probabilities (``echo``)."""

    def __init__(
        self, pool: EndpointPool, *, api: str = "completions", options: dict[str, str] | None = None
    ) -> None:
        if api not in ("completions", "chat"):
            raise ModelError(f"api must be completions or chat, not {api!r}")
        self.pool = pool
        self.api = api
        self.options = options or {}
        self._name = self.options.get("name") or f"openai:{pool.model}"
        self._context: int | None = (
            int(self.options["context"]) if "context" in self.options else None
        )

    @classmethod
    def from_spec(cls, target: str) -> OpenAILM:
        spec = parse_spec(target)
        return cls(
            _pool_from(spec), api=spec.options.get("api", "completions"), options=spec.options
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        """From the spec's ``context`` option, else what ``/models`` says (vLLM's
        ``max_model_len``, llama.cpp's ``n_ctx``), else 4096."""
        if self._context is None:
            self._context = 4096
            for m in self.pool.get_models():
                if m.get("id") != self.pool.model:
                    continue
                meta = m.get("meta") or {}
                for value in (
                    m.get("max_model_len"),
                    m.get("context_length"),
                    meta.get("n_ctx"),
                    meta.get("n_ctx_train"),
                ):
                    if isinstance(value, int) and value > 0:
                        self._context = value
                        break
        return self._context

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.pool.endpoints

    def _messages(self, prompt: Prompt) -> list[ChatMessage] | None:
        if isinstance(prompt, str):
            return [{"role": "user", "content": prompt}] if self.api == "chat" else None
        return prompt

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        def one(prompt: Prompt) -> Generation:
            body: dict[str, Any] = {
                "max_tokens": params.max_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "n": params.n,
            }
            if params.stop:
                body["stop"] = list(params.stop)
            if params.seed is not None:
                body["seed"] = params.seed
            messages = self._messages(prompt)
            texts: list[str] = []
            reasons: list[str] = []
            prompt_tokens = completion_tokens = 0
            for _ in range(params.n):  # servers that ignore n answer once per request
                if messages is None:
                    data = self.pool.post("/completions", {**body, "prompt": prompt})
                    got = [str(c.get("text") or "") for c in data.get("choices", [])]
                else:
                    data = self.pool.post("/chat/completions", {**body, "messages": messages})
                    got = [
                        str((c.get("message") or {}).get("content") or "")
                        for c in data.get("choices", [])
                    ]
                texts.extend(got)
                reasons.extend(
                    str(c.get("finish_reason") or "stop") for c in data.get("choices", [])
                )
                usage = data.get("usage") or {}
                prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                completion_tokens += int(usage.get("completion_tokens") or 0)
                if len(texts) >= params.n or not got:
                    break
            return Generation(
                texts=texts[: params.n],
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reasons=reasons[: params.n],
            )

        return self.pool.map(one, prompts)

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        """One-token completions at temperature 1 and top_p 1, so the reported
        distribution is the model's own whether a server reports log-probabilities
        before or after sampling transforms. A server reports nothing when the sampled
        token ends the text (llama-cpp-python does so when EOS comes out), so such an
        answer is asked again with the next seed, up to 8 times."""
        wanted = list(candidates or [])

        def one(prompt: Prompt) -> NextTokens:
            messages = self._messages(prompt)
            for seed in range(EOS_RETRIES):
                base = {"max_tokens": 1, "temperature": 1.0, "top_p": 1.0, "seed": seed}
                if messages is None:
                    body = {**base, "prompt": prompt, "logprobs": top_k}
                    data, url = self.pool.post_url("/completions", body)
                    found = _completion_top(data, url)
                else:
                    body = {**base, "messages": messages, "logprobs": True, "top_logprobs": top_k}
                    data, url = self.pool.post_url("/chat/completions", body)
                    found = _chat_top(data, url)
                if found is not None:
                    break
            else:
                raise EmptyAnswer(
                    f"{url}: the model ended its answer at once in {EOS_RETRIES} samples, and "
                    "the server reports no log-probabilities for an empty answer"
                )
            top = dict(itertools.islice(found.items(), top_k))
            for c in wanted:  # only what the server told us: absent means below its top k
                if c in found:
                    top[c] = found[c]
            usage = data.get("usage") or {}
            return NextTokens(logprobs=top, prompt_tokens=int(usage.get("prompt_tokens") or 0))

        return self.pool.map(one, prompts)

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")

        def one(pair: tuple[str, str]) -> list[float]:
            ctx, cont = pair
            text = ctx + cont
            body = {
                "prompt": text,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
            }
            data = self.pool.post("/completions", body)
            lp = (data.get("choices") or [{}])[0].get("logprobs") or {}
            tokens: list[str] = lp.get("tokens") or []
            values: list[float | None] = lp.get("token_logprobs") or []
            offsets: list[int] = lp.get("text_offset") or []
            if (
                not tokens
                or len(offsets) != len(tokens)
                or not any(o < len(text) for o in offsets[:1])
            ):
                raise NoLogprobs(
                    f"{self.name}: the server returned no prompt log-probabilities (`echo` with "
                    "`logprobs`); continuation log-probabilities need a server that supports "
                    "echo (vLLM, llama.cpp server) — or use a local backend"
                )
            out: list[float] = []
            for tok, val, off in zip(tokens, values, offsets, strict=False):
                if off >= len(text):
                    break  # the generated token
                if off + len(tok) > len(ctx) and val is not None:
                    out.append(float(val))
            return out

        return self.pool.map(one, list(zip(contexts, continuations, strict=True)))


class OpenAIEmbedder:
    """``Embedder`` over ``/v1/embeddings``: batches of ``batch_size`` texts per request,
    requests spread over the endpoints, rows L2-normalised to float32."""

    def __init__(
        self, pool: EndpointPool, *, batch_size: int = 64, options: dict[str, str] | None = None
    ) -> None:
        self.pool = pool
        self.batch_size = batch_size
        self.options = options or {}
        self._name = self.options.get("name") or f"openai:{pool.model}"
        self._dim: int | None = int(self.options["dim"]) if "dim" in self.options else None

    @classmethod
    def from_spec(cls, target: str) -> OpenAIEmbedder:
        spec = parse_spec(target)
        return cls(_pool_from(spec), options=spec.options)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        """From the ``dim`` option, else measured with one request."""
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

        def one(chunk: list[str]) -> list[Any]:
            data = self.pool.post("/embeddings", {"input": chunk})
            rows = sorted(data.get("data") or [], key=lambda d: int(d.get("index", 0)))
            if len(rows) != len(chunk):
                raise ModelError(
                    f"{self.name}: /embeddings returned {len(rows)} rows for {len(chunk)} texts"
                )
            vecs = [r.get("embedding") for r in rows]
            if any(not v or isinstance(v[0], list) for v in vecs):
                raise ModelError(
                    f"{self.name}: /embeddings returned one vector per token, not per text "
                    "(the server's model has no pooling, e.g. a causal LM in llama-cpp-python's "
                    "server); serve a sentence-embedding model instead"
                )
            return vecs

        vecs = [v for part in self.pool.map(one, chunks) for v in part]
        out = l2_normalise(np.asarray(vecs, dtype=np.float32))
        self._dim = self._dim or int(out.shape[1])
        return out
