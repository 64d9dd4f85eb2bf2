"""Errors a model backend raises, so callers can tell a user what to fix."""

from __future__ import annotations


class ModelError(RuntimeError):
    """A model could not be loaded or called (bad spec, missing package, server error)."""


class BackendMissing(ModelError):
    """An optional backend's package is not installed; the message names the pip command."""


class NoLogprobs(ModelError):
    """A server answered without the log-probabilities that were asked for."""


class EmptyAnswer(ModelError):
    """One prompt's next-token distribution could not be read: the model ended its answer
    at once every time and the server reports nothing for an empty answer. A failure of
    that prompt, not of the server (which does support log-probabilities)."""
