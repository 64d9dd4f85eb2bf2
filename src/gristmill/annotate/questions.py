"""Question kinds and the validation of answers to them (the app contract's table).

A question is plain JSON so that it can travel to the browser, the SDK and QC as is;
the pydantic models here are the one place that says what is valid."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9_]+$"


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str | None = None
    required: bool = True

    @model_validator(mode="after")
    def _default_title(self) -> _Base:
        if not self.title:
            self.title = self.name.replace("_", " ").capitalize()
        return self


class _Labelled(_Base):
    labels: list[str]

    @field_validator("labels")
    @classmethod
    def _labels_ok(cls, labels: list[str]) -> list[str]:
        if not labels:
            raise ValueError("needs at least one label")
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels


class LabelQuestion(_Labelled):
    kind: Literal["label"] = "label"


class MultiLabelQuestion(_Labelled):
    kind: Literal["multi_label"] = "multi_label"


class SpansQuestion(_Labelled):
    kind: Literal["spans"] = "spans"
    field: str = "text"


class TextQuestion(_Base):
    kind: Literal["text"] = "text"
    mode: Literal["write", "correct"] = "write"


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    min: int = 1
    max: int = 7
    description: str | None = None

    @model_validator(mode="after")
    def _range(self) -> Dimension:
        if self.max <= self.min:
            raise ValueError(f"dimension {self.name!r}: max must be above min")
        return self


class RatingQuestion(_Base):
    kind: Literal["rating"] = "rating"
    dimensions: list[Dimension] = Field(min_length=1)
    target: Literal["record", "each_response"] = "record"

    @field_validator("dimensions")
    @classmethod
    def _unique(cls, v: list[Dimension]) -> list[Dimension]:
        names = [d.name for d in v]
        if len(set(names)) != len(names):
            raise ValueError("dimension names must be unique")
        return v


class RankingQuestion(_Base):
    kind: Literal["ranking"] = "ranking"
    allow_ties: bool = False


class PreferenceQuestion(_Base):
    kind: Literal["preference"] = "preference"
    strengths: list[int] = Field(default_factory=lambda: [1, 2, 3])
    require_reason: bool = False


Question = Annotated[
    LabelQuestion
    | MultiLabelQuestion
    | SpansQuestion
    | TextQuestion
    | RatingQuestion
    | RankingQuestion
    | PreferenceQuestion,
    Field(discriminator="kind"),
]
KINDS = ("label", "multi_label", "spans", "text", "rating", "ranking", "preference")
_QUESTIONS: TypeAdapter[list[Question]] = TypeAdapter(list[Question])


class AnswerError(ValueError):
    """An answer value that does not fit its question; ``question`` names which."""

    def __init__(self, question: str, message: str) -> None:
        super().__init__(f"{question}: {message}")
        self.question = question
        self.message = message


def parse_questions(data: Any) -> list[Question]:
    """Validate a list of question dicts (from YAML/JSON); names must be unique."""
    if isinstance(data, dict) and "questions" in data:
        data = data["questions"]
    if not isinstance(data, list) or not data:
        raise ValueError("questions: expected a non-empty list of questions")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"questions[{i}]: expected a mapping, got {type(item).__name__}")
        if item.get("kind") not in KINDS:
            raise ValueError(
                f"questions[{i}] ({item.get('name')!r}): kind must be one of "
                f"{', '.join(KINDS)}, got {item.get('kind')!r}"
            )
    questions = _QUESTIONS.validate_python(data)
    names = [q.name for q in questions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"questions: duplicate names {', '.join(dupes)}")
    return questions


def question_dicts(questions: list[Question]) -> list[dict[str, Any]]:
    return [q.model_dump(mode="json") for q in questions]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_rating(q: RatingQuestion, value: Any, where: str = "") -> dict[str, int]:
    if not isinstance(value, dict):
        raise AnswerError(q.name, f"{where}expected an object of dimension → score")
    dims = {d.name: d for d in q.dimensions}
    unknown = sorted(set(value) - set(dims))
    if unknown:
        raise AnswerError(q.name, f"{where}unknown dimension(s) {', '.join(unknown)}")
    out: dict[str, int] = {}
    for name, dim in dims.items():
        if name not in value or value[name] is None:
            if q.required:
                raise AnswerError(q.name, f"{where}{name}: a score is required")
            continue
        score = value[name]
        if isinstance(score, float) and score.is_integer():
            score = int(score)
        if not _int(score) or not dim.min <= score <= dim.max:
            raise AnswerError(
                q.name, f"{where}{name}: expected a whole number {dim.min}-{dim.max}, got {score!r}"
            )
        out[name] = score
    return out


def validate_answer(q: Question, value: Any, n_responses: int | None = None, text: str = "") -> Any:
    """Check ``value`` against ``q`` and return its normal form; raises AnswerError.

    ``n_responses`` is how many responses the record shows (ranking, preference,
    per-response ratings); ``text`` is the annotated text for span offsets."""
    name = q.name
    if value is None:
        if q.required:
            raise AnswerError(name, "an answer is required")
        return None
    if isinstance(q, LabelQuestion):
        if value not in q.labels:
            raise AnswerError(name, f"{value!r} is not one of {', '.join(q.labels)}")
        return value
    if isinstance(q, MultiLabelQuestion):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AnswerError(name, "expected a list of labels")
        bad = [v for v in value if v not in q.labels]
        if bad:
            raise AnswerError(name, f"{', '.join(map(repr, bad))} not in {', '.join(q.labels)}")
        return sorted(set(value), key=q.labels.index)
    if isinstance(q, SpansQuestion):
        return _check_spans(q, value, text)
    if isinstance(q, TextQuestion):
        if not isinstance(value, str):
            raise AnswerError(name, "expected text")
        if q.required and not value.strip():
            raise AnswerError(name, "the text is empty")
        return value
    if isinstance(q, RatingQuestion):
        if q.target == "record":
            return _check_rating(q, value)
        if not isinstance(value, list):
            raise AnswerError(name, "expected one rating object per response")
        if n_responses is not None and len(value) != n_responses:
            raise AnswerError(name, f"expected {n_responses} ratings, got {len(value)}")
        return [_check_rating(q, v, f"response {i + 1}: ") for i, v in enumerate(value)]
    if isinstance(q, RankingQuestion):
        return _check_ranking(q, value, n_responses)
    assert isinstance(q, PreferenceQuestion)
    return _check_preference(q, value, n_responses)


def _check_spans(q: SpansQuestion, value: Any, text: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise AnswerError(q.name, "expected a list of spans")
    out = []
    for i, span in enumerate(value):
        if not isinstance(span, dict):
            raise AnswerError(q.name, f"span {i + 1}: expected an object")
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (isinstance(start, int) and isinstance(end, int)) or not (
            0 <= start < end <= len(text)
        ):
            raise AnswerError(
                q.name, f"span {i + 1}: offsets must satisfy 0 <= start < end <= {len(text)}"
            )
        if label not in q.labels:
            raise AnswerError(q.name, f"span {i + 1}: label {label!r} not in {q.labels}")
        covered = text[start:end]
        if span.get("text") not in (None, covered):
            raise AnswerError(
                q.name,
                f"span {i + 1}: text {span['text']!r} differs from the text at {start}:{end}",
            )
        out.append({"start": start, "end": end, "label": label, "text": covered})
    out.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return out


def _check_ranking(q: RankingQuestion, value: Any, n: int | None) -> list[int]:
    if not isinstance(value, list) or not value or not all(_int(v) for v in value):
        raise AnswerError(q.name, "expected a list of ranks (1 = best)")
    if n is not None and len(value) != n:
        raise AnswerError(q.name, f"expected {n} ranks, one per response, got {len(value)}")
    distinct = sorted(set(value))
    if distinct != list(range(1, len(distinct) + 1)):
        raise AnswerError(q.name, "ranks must be dense: 1, 2, … without gaps")
    if len(distinct) != len(value) and not q.allow_ties:
        raise AnswerError(q.name, "ties are not allowed in this question")
    return list(value)


def _check_preference(q: PreferenceQuestion, value: Any, n: int | None) -> dict[str, Any]:
    if n is not None and n != 2:
        raise AnswerError(q.name, f"a preference needs exactly two responses, this record has {n}")
    if not isinstance(value, dict):
        raise AnswerError(q.name, 'expected {"choice": "a"|"b"|"tie", ...}')
    unknown = sorted(set(value) - {"choice", "strength", "reason"})
    if unknown:
        raise AnswerError(q.name, f"unknown field(s) {', '.join(unknown)}")
    choice = value.get("choice")
    if choice not in ("a", "b", "tie"):
        raise AnswerError(q.name, f"choice must be a, b or tie, got {choice!r}")
    strength = value.get("strength")
    if choice == "tie":
        strength = None
    elif strength is None:
        raise AnswerError(q.name, f"strength is required ({', '.join(map(str, q.strengths))})")
    elif strength not in q.strengths or not _int(strength):
        raise AnswerError(q.name, f"strength must be one of {q.strengths}, got {strength!r}")
    reason = value.get("reason") or ""
    if not isinstance(reason, str):
        raise AnswerError(q.name, "reason must be text")
    if q.require_reason and not reason.strip():
        raise AnswerError(q.name, "a reason is required")
    return {"choice": choice, "strength": strength, "reason": reason}


def same_value(a: Any, b: Any) -> bool:
    """Whether an answer accepts a suggestion: a preference by its choice (strength
    and reason are the annotator's own), spans by offsets and labels, multi-label as
    a set, text ignoring surrounding white space, anything else by equality."""
    if isinstance(a, dict) and isinstance(b, dict) and "choice" in a and "choice" in b:
        return bool(a["choice"] == b["choice"])
    if isinstance(a, list) and isinstance(b, list):
        if all(isinstance(x, str) for x in a + b):
            return sorted(a) == sorted(b)
        if all(isinstance(x, dict) and "start" in x for x in a + b):
            key = lambda s: (s["start"], s["end"], s["label"])  # noqa: E731
            return sorted(map(key, a)) == sorted(map(key, b))
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    return bool(a == b)
