"""The record kinds every stage speaks (DESIGN.md, "Record kinds").

These pydantic models are the single definition of each kind: the Arrow schemas in
``records.arrow`` are derived from them, so storage and the typed API cannot drift.
Free-form payloads (``meta``, tool arguments, grader specs) are JSON strings in storage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Kind(StrEnum):
    DOCUMENT = "document"
    CONVERSATION = "conversation"
    PREFERENCE = "preference"
    EVAL_ITEM = "eval_item"
    AGENT_TRACE = "agent_trace"
    MEDIA = "media"


class TaskCategory(StrEnum):
    """InstructGPT's task categories (Ouyang et al. 2022, Table 1)."""

    GENERATION = "generation"
    OPEN_QA = "open_qa"
    BRAINSTORMING = "brainstorming"
    CHAT = "chat"
    REWRITE = "rewrite"
    SUMMARIZATION = "summarization"
    CLASSIFICATION = "classification"
    CLOSED_QA = "closed_qa"
    EXTRACTION = "extraction"


ORIGIN_PREFIXES = ("import:", "human:", "model:", "synthetic:")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordBase(_Model):
    """Fields every record carries, whatever its kind: identity and lineage."""

    id: str = Field(min_length=1)
    source: str = ""
    source_row: int | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    origin: str = "import:unknown"
    meta: dict[str, Any] = Field(default_factory=dict)
    task_category: TaskCategory | None = None
    domain: str | None = None

    @field_validator("origin")
    @classmethod
    def _origin_has_prefix(cls, value: str) -> str:
        if not value.startswith(ORIGIN_PREFIXES):
            raise ValueError(f"origin must start with one of {ORIGIN_PREFIXES}, got {value!r}")
        return value


# --- conversation --------------------------------------------------------------------


class ToolCall(_Model):
    id: str | None = None
    name: str
    arguments: str = "{}"  # JSON text, as the OpenAI API sends it


Role = Literal["system", "user", "assistant", "tool"]


class Message(_Model):
    role: Role
    content: str
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None
    weight: float | None = None  # per-message loss weight; None means "trainer default"


class Document(RecordBase):
    text: str = Field(min_length=1)
    title: str | None = None
    url: str | None = None
    language: str | None = None


class Conversation(RecordBase):
    system: str | None = None
    messages: list[Message] = Field(min_length=1)
    tools: str | None = None  # JSON list of tool schemas offered to the model


# --- preference ----------------------------------------------------------------------


class Rating(_Model):
    dimension: str
    value: float
    rater: str | None = None  # human:<user> or model:<name>


class Candidate(_Model):
    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    origin: str | None = None
    rank: int | None = None  # 1 is best; equal ranks are ties
    ratings: list[Rating] = Field(default_factory=list)
    label: bool | None = None  # unpaired preference (KTO): desirable or not
    step_labels: list[bool] | None = None  # stepwise supervision: one label per message


class ScaleSpec(_Model):
    dimension: str
    min: float
    max: float
    kind: Literal["likert", "interval", "binary"] = "likert"


class Preference(RecordBase):
    system: str | None = None
    prompt: list[Message] = Field(min_length=1)
    candidates: list[Candidate] = Field(min_length=1)
    scales: list[ScaleSpec] = Field(default_factory=list)
    rationale: str | None = None


# --- eval item -----------------------------------------------------------------------


class EvalItem(RecordBase):
    input: str = Field(min_length=1)
    references: list[str] = Field(default_factory=list)
    choices: list[str] = Field(default_factory=list)
    answer_index: int | None = None
    grader: str = '{"type": "exact_match"}'  # JSON grader spec
    tags: list[str] = Field(default_factory=list)


# --- agent trace ---------------------------------------------------------------------


StepType = Literal["plan", "message", "tool_call", "tool_result"]


class TraceStep(_Model):
    type: StepType
    role: str | None = None
    content: str | None = None
    tool_name: str | None = None
    arguments: str | None = None  # JSON
    call_id: str | None = None


class AgentTrace(RecordBase):
    task: str = Field(min_length=1)
    steps: list[TraceStep] = Field(default_factory=list)
    outcome: str | None = None  # e.g. success, failure, error
    reward: float | None = None
    failure_labels: list[str] = Field(default_factory=list)
    tools: str | None = None


# --- media ---------------------------------------------------------------------------


class Box(_Model):
    label: str
    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0
    annotator: str | None = None


class Polygon(_Model):
    label: str
    points: list[list[float]]
    annotator: str | None = None


class TimeSegment(_Model):
    label: str
    start: float
    end: float
    annotator: str | None = None


class TranscriptLine(_Model):
    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None


class Media(RecordBase):
    uri: str = Field(min_length=1)
    media_type: Literal["image", "audio", "video", "other"] = "other"
    labels: list[str] = Field(default_factory=list)
    captions: list[str] = Field(default_factory=list)
    boxes: list[Box] = Field(default_factory=list)
    polygons: list[Polygon] = Field(default_factory=list)
    segments: list[TimeSegment] = Field(default_factory=list)
    transcripts: list[TranscriptLine] = Field(default_factory=list)


RECORD_MODELS: dict[Kind, type[RecordBase]] = {
    Kind.DOCUMENT: Document,
    Kind.CONVERSATION: Conversation,
    Kind.PREFERENCE: Preference,
    Kind.EVAL_ITEM: EvalItem,
    Kind.AGENT_TRACE: AgentTrace,
    Kind.MEDIA: Media,
}
