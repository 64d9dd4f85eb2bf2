"""Language-model and embedder backends behind two small protocols, and the call cache.

Stages use ``resolve_language_model`` / ``resolve_embedder`` (``--model`` values) and
the protocols; they never import a backend module directly."""

from gristmill.models.cache import CachedEmbedder, CachedLanguageModel, ModelCache, cached
from gristmill.models.errors import BackendMissing, EmptyAnswer, ModelError, NoLogprobs
from gristmill.models.protocols import (
    ChatMessage,
    Embedder,
    Generation,
    GenerationParams,
    LanguageModel,
    NextTokens,
    Prompt,
)
from gristmill.models.resolve import Resolved, resolve_embedder, resolve_language_model
from gristmill.models.text import NO_VARIANTS, YES_VARIANTS, probability, yes_probability

__all__ = [
    "NO_VARIANTS",
    "YES_VARIANTS",
    "BackendMissing",
    "CachedEmbedder",
    "CachedLanguageModel",
    "ChatMessage",
    "Embedder",
    "EmptyAnswer",
    "Generation",
    "GenerationParams",
    "LanguageModel",
    "ModelCache",
    "ModelError",
    "NextTokens",
    "NoLogprobs",
    "Prompt",
    "Resolved",
    "cached",
    "probability",
    "resolve_embedder",
    "resolve_language_model",
    "yes_probability",
]
