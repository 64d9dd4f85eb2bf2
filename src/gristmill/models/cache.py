"""On-disk cache of model calls, so a rerun or a resumed run costs no model calls.

Every call is keyed by (model name, method, input, parameters) — one row per prompt
or text, so a batch that is half new only computes the new half. SQLite in WAL mode
lets several processes (pipeline workers) read and write the same file; values are
compact bytes: orjson for structured answers, raw float64/float32 for arrays.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
import orjson

from gristmill.models.protocols import (
    Embedder,
    Generation,
    GenerationParams,
    LanguageModel,
    NextTokens,
    Prompt,
)

T = TypeVar("T")
CACHE_FILE = Path("cache") / "models.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key BLOB PRIMARY KEY,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    value BLOB NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID
"""


class ModelCache:
    """A SQLite file of model answers with hit/miss counters.

    One connection per thread and process (reopened after a fork), so the object can
    be shared by threads and pickled to worker processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connect()  # create the file and table now, so errors surface early

    @classmethod
    def for_workspace(cls, root: str | Path) -> ModelCache:
        """The workspace's cache: ``<workspace>/cache/models.sqlite``."""
        return cls(Path(root) / CACHE_FILE)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ModelCache({str(self.path)!r}, hits={self.hits}, misses={self.misses})"

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @staticmethod
    def key(model: str, method: str, item: Any, params: Any) -> bytes:
        """sha256 of the canonical JSON of (model, method, input, parameters)."""
        blob = orjson.dumps([model, method, item, params], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Stored values for the keys that are present; counts hits and misses."""
        conn = self._connect()
        found: dict[bytes, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 900):
            chunk = unique[i : i + 900]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT key, value FROM calls WHERE key IN ({marks})", chunk)
            found.update((bytes(k), bytes(v)) for k, v in rows)
        with self._lock:
            hit = sum(1 for k in keys if k in found)
            self.hits += hit
            self.misses += len(keys) - hit
        return found

    def put_many(self, rows: Sequence[tuple[bytes, str, str, bytes]]) -> None:
        """Store (key, model, method, value) rows in one transaction."""
        if not rows:
            return
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO calls (key, model, method, value, created) "
                "VALUES (?, ?, ?, ?, ?)",
                [(k, m, f, v, now) for k, m, f, v in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def stats(self) -> list[tuple[str, str, int, int]]:
        """(model, method, rows, bytes) for every model and method stored."""
        rows = self._connect().execute(
            "SELECT model, method, COUNT(*), SUM(LENGTH(value)) FROM calls "
            "GROUP BY model, method ORDER BY model, method"
        )
        return [(str(m), str(f), int(n), int(b or 0)) for m, f, n, b in rows]

    def clear(self, model: str | None = None) -> int:
        """Delete every row (or one model's); returns how many went."""
        conn = self._connect()
        if model is None:
            cur = conn.execute("DELETE FROM calls")
        else:
            cur = conn.execute("DELETE FROM calls WHERE model = ?", (model,))
        return cur.rowcount

    def memoise(
        self,
        model: str,
        method: str,
        items: Sequence[Any],
        params: Any,
        compute: Callable[[list[Any]], Sequence[T]],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
    ) -> list[T]:
        """Answers for ``items``: stored ones read back, the rest computed in one call
        (each distinct input once) and stored."""
        keys = [self.key(model, method, item, params) for item in items]
        found = self.get_many(keys)
        todo: dict[bytes, Any] = {}
        for k, item in zip(keys, items, strict=True):
            if k not in found and k not in todo:
                todo[k] = item
        fresh: dict[bytes, T] = {}
        if todo:
            answers = compute(list(todo.values()))
            if len(answers) != len(todo):
                raise RuntimeError(f"{model}.{method} returned {len(answers)} for {len(todo)}")
            fresh = dict(zip(todo, answers, strict=True))
            self.put_many([(k, model, method, encode(a)) for k, a in fresh.items()])
        return [fresh[k] if k in fresh else decode(found[k]) for k in keys]


# -- value codecs ---------------------------------------------------------------------


def _enc_next(nt: NextTokens) -> bytes:
    # orjson writes -inf as null: keep it explicit
    lps = {t: (None if math.isinf(v) else v) for t, v in nt.logprobs.items()}
    return orjson.dumps({"l": lps, "p": nt.prompt_tokens, "t": nt.truncated_tokens})


def _dec_next(b: bytes) -> NextTokens:
    d = orjson.loads(b)
    lps = {t: (-math.inf if v is None else float(v)) for t, v in d["l"].items()}
    return NextTokens(logprobs=lps, prompt_tokens=d["p"], truncated_tokens=d["t"])


def _enc_gen(g: Generation) -> bytes:
    return orjson.dumps(
        {"x": g.texts, "p": g.prompt_tokens, "c": g.completion_tokens, "f": g.finish_reasons}
    )


def _dec_gen(b: bytes) -> Generation:
    d = orjson.loads(b)
    return Generation(
        texts=d["x"], prompt_tokens=d["p"], completion_tokens=d["c"], finish_reasons=d["f"]
    )


def _enc_floats(v: list[float]) -> bytes:
    return np.asarray(v, dtype=np.float64).tobytes()


def _dec_floats(b: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(b, dtype=np.float64)]


def _enc_vec(v: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(v, dtype=np.float32).tobytes()


def _dec_vec(b: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(b, dtype=np.float32).copy()


# -- wrappers -------------------------------------------------------------------------


class CachedLanguageModel:
    """A ``LanguageModel`` whose calls go through a ``ModelCache`` first.

    ``backend_calls`` counts the calls that reached the wrapped model. Sampled
    generations are cached too: a rerun replays the same samples (pass a different
    ``seed`` for fresh ones)."""

    def __init__(self, model: LanguageModel, cache: ModelCache) -> None:
        self.model = model
        self.cache = cache
        self.backend_calls = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def _counted(
        self, fn: Callable[[list[Any]], Sequence[T]]
    ) -> Callable[[list[Any]], Sequence[T]]:
        def run(items: list[Any]) -> Sequence[T]:
            self.backend_calls += 1
            return fn(items)

        return run

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        return self.cache.memoise(
            self.name,
            "generate",
            prompts,
            params.key(),
            self._counted(lambda ps: self.model.generate(ps, params)),
            _enc_gen,
            _dec_gen,
        )

    def next_token_logprobs(
        self, prompts: list[Prompt], candidates: list[str] | None = None, top_k: int = 20
    ) -> list[NextTokens]:
        params = {"candidates": sorted(set(candidates or [])), "top_k": top_k}
        return self.cache.memoise(
            self.name,
            "next_token_logprobs",
            prompts,
            params,
            self._counted(lambda ps: self.model.next_token_logprobs(ps, candidates, top_k)),
            _enc_next,
            _dec_next,
        )

    def continuation_logprobs(
        self, contexts: list[str], continuations: list[str]
    ) -> list[list[float]]:
        if len(contexts) != len(continuations):
            raise ValueError("contexts and continuations differ in length")
        pairs = [[c, x] for c, x in zip(contexts, continuations, strict=True)]
        return self.cache.memoise(
            self.name,
            "continuation_logprobs",
            pairs,
            {},
            self._counted(
                lambda ps: self.model.continuation_logprobs([p[0] for p in ps], [p[1] for p in ps])
            ),
            _enc_floats,
            _dec_floats,
        )


class CachedEmbedder:
    """An ``Embedder`` whose texts go through a ``ModelCache`` first (float32 rows)."""

    def __init__(self, model: Embedder, cache: ModelCache) -> None:
        self.model = model
        self.cache = cache
        self.backend_calls = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def dim(self) -> int:
        return self.model.dim

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)

        def compute(items: list[str]) -> list[npt.NDArray[np.float32]]:
            self.backend_calls += 1
            return list(self.model.embed(items))

        rows = self.cache.memoise(self.name, "embed", texts, {}, compute, _enc_vec, _dec_vec)
        return np.stack(rows).astype(np.float32, copy=False)


def _has_methods(obj: object, *names: str) -> bool:
    return all(callable(getattr(type(obj), n, None)) for n in names)


def as_cache(cache: ModelCache | str | Path) -> ModelCache:
    """A cache object from a cache or a file path."""
    return cache if isinstance(cache, ModelCache) else ModelCache(cache)


@overload
def cached(model: LanguageModel, cache: ModelCache | str | Path) -> CachedLanguageModel: ...
@overload
def cached(model: Embedder, cache: ModelCache | str | Path) -> CachedEmbedder: ...
def cached(
    model: LanguageModel | Embedder, cache: ModelCache | str | Path
) -> CachedLanguageModel | CachedEmbedder:
    """Wrap any backend so its calls are cached (a cached model is not wrapped twice)."""
    store = as_cache(cache)
    if isinstance(model, CachedLanguageModel | CachedEmbedder) and model.cache.path == store.path:
        return model
    # Check methods on the class: isinstance() against a runtime protocol would read
    # every property on Python 3.11 (an HTTP embedder's ``dim`` costs a request).
    if _has_methods(model, "generate", "next_token_logprobs", "continuation_logprobs"):
        return CachedLanguageModel(model, store)  # type: ignore[arg-type]
    if _has_methods(model, "embed"):
        return CachedEmbedder(model, store)  # type: ignore[arg-type]
    raise TypeError(f"{type(model).__name__} is neither a LanguageModel nor an Embedder")
