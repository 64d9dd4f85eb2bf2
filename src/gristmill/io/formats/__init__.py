"""Row formats: every family of rows gristmill can import, and their detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.io.formats import (
    agent,
    chat,
    evalsets,
    label_studio,
    native,
    preference,
    text,
)
from gristmill.io.formats.base import Converted, Format, RowContext, RowError

__all__ = [
    "Converted",
    "Format",
    "RowContext",
    "RowError",
    "all_formats",
    "detect_format",
    "get_format",
]


def all_formats() -> list[Format]:
    return [
        *native.FORMATS,
        *chat.FORMATS,
        *preference.FORMATS,
        *evalsets.FORMATS,
        *agent.FORMATS,
        *label_studio.FORMATS,
        *text.FORMATS,
    ]


def get_format(name: str) -> Format:
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    names = ", ".join(sorted(f.name for f in all_formats()))
    raise ValueError(f"unknown format {name!r}; known formats: {names}")


def detect_format(
    sample: list[dict[str, Any]], file: Path
) -> tuple[Format | None, list[tuple[str, float]]]:
    """The best-scoring format for ``sample`` (None if nothing scores above 0), and
    every non-zero score, best first, so the choice can be printed and explained."""
    scores = [(fmt, fmt.detect(sample, file)) for fmt in all_formats()]
    ranked = sorted((s for s in scores if s[1] > 0), key=lambda s: -s[1])
    best = ranked[0][0] if ranked else None
    return best, [(f.name, round(s, 3)) for f, s in ranked]
