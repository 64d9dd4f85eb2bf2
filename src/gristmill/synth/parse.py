"""Strict parsing of a judge's structured answer: the whole answer must be one JSON
object (a Markdown code fence around it is allowed), with exactly the declared fields
and values in range. Anything else is a failure with a message saying what was wrong;
the caller keeps the raw text. Nothing is guessed out of prose."""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n\s*```$", re.DOTALL)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class ParseFailure(ValueError):
    """The answer is not the JSON object that was asked for."""


def json_object(text: str) -> dict[str, Any]:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise ParseFailure("empty answer")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseFailure(f"not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ParseFailure(f"a JSON {type(value).__name__}, not an object")
    return value


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"]) or "(answer)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def check_dimension_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"dimension {name!r}: use lowercase letters, digits and _")
    if name == "rationale":
        raise ValueError("'rationale' is reserved for the judge's explanation")
    return name


def rating_schema(dimensions: list[str], low: int, high: int) -> type[BaseModel]:
    """A pydantic model: one integer in [low, high] per dimension, and a rationale."""
    fields: dict[str, Any] = {
        check_dimension_name(d): (int, Field(ge=low, le=high)) for d in dimensions
    }
    fields["rationale"] = (str, Field(min_length=1))
    model: type[BaseModel] = create_model(
        "JudgeRatings", __config__=ConfigDict(extra="forbid", strict=True), **fields
    )
    return model


class PairwiseVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    winner: Literal["A", "B", "tie"]
    rationale: str = Field(min_length=1)


def parse_as(schema: type[BaseModel], text: str) -> BaseModel:
    data = json_object(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ParseFailure(_first_errors(exc)) from None


def rating_example(dimensions: list[str], low: int, high: int) -> str:
    """What the judge is shown as the answer's form."""
    inner = ", ".join(f'"{d}": <integer {low}-{high}>' for d in dimensions)
    return "{" + inner + ', "rationale": "<one or two sentences>"}'
