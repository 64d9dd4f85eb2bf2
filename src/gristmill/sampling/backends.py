"""The one way sampling reaches a model: the resolvers of ``gristmill.models``.

Scorers hold a model *spec* (a path, a packaged model name, ``openai:<url>/<model>``
or None for the offline default) and resolve it lazily, on the first batch a worker
sees: the driver never loads a model it will not use. A process loads a spec once
(scoring runs rebuild their steps for every stage, and a worker runs many tasks),
and a forked worker loads its own copy rather than reuse its parent's.

Every model is wrapped in the workspace's call cache
(``<workspace>/cache/models.sqlite``): the second pass of Density reads its
embeddings back from it instead of running the model again, and a rerun or a
resumed scoring run costs no model calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gristmill.models.cache import ModelCache, cached
from gristmill.models.protocols import Embedder, LanguageModel

_LOADED: dict[tuple[int, str, str | None], Any] = {}


def _cache(workspace_root: Path | None) -> ModelCache | None:
    return ModelCache.for_workspace(workspace_root) if workspace_root is not None else None


def language_model(spec: str | None, workspace_root: Path | None = None) -> LanguageModel:
    """The language model ``spec`` names, its calls cached in the workspace."""
    key = (os.getpid(), "lm", spec)
    if key not in _LOADED:
        from gristmill.models.resolve import resolve_language_model

        _LOADED[key] = resolve_language_model(spec).model
    model: LanguageModel = _LOADED[key]
    store = _cache(workspace_root)
    return cached(model, store) if store is not None else model


def embedder(spec: str | None, workspace_root: Path | None = None) -> Embedder:
    """The embedder ``spec`` names, its calls cached in the workspace."""
    key = (os.getpid(), "embedder", spec)
    if key not in _LOADED:
        from gristmill.models.resolve import resolve_embedder

        _LOADED[key] = resolve_embedder(spec).model
    model: Embedder = _LOADED[key]
    store = _cache(workspace_root)
    return cached(model, store) if store is not None else model
