"""Errors a model backend raises, so callers can tell a user what to fix."""

from __future__ import annotations


class ModelError(RuntimeError):
    """A model could not be loaded or called (bad spec, missing package, server error)."""


class BackendMissing(ModelError):
    """An optional backend's package is not installed; the message names the pip command."""


class NoLogprobs(ModelError):
    """A server answered without the log-probabilities that were asked for."""
