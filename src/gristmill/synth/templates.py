"""The text prompt templates of ``synth/prompts`` (``$name`` fields, so JSON braces in a
template need no escaping). Each run records the sha256 of the templates it used, so a
changed prompt is visible in the run card and never reads another prompt's answers."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from string import Template


@cache
def template_text(name: str) -> str:
    """The text of ``prompts/<name>.txt`` (trailing newline stripped)."""
    path = resources.files("gristmill.synth").joinpath("prompts", f"{name}.txt")
    return path.read_text(encoding="utf-8").rstrip("\n")


def render(name: str, **fields: object) -> str:
    """Fill a template; a missing field raises ``KeyError`` naming it."""
    return Template(template_text(name)).substitute({k: str(v) for k, v in fields.items()})


def template_hash(name: str) -> str:
    return hashlib.sha256(template_text(name).encode()).hexdigest()[:12]
