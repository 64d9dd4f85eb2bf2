"""Projects: a dataset version's records, a set of questions, guidelines and settings.

Creating a project copies each record's *view* (the JSON the pages render) into the
app database, so annotating never reads Parquet and a project keeps working while
new dataset versions appear; ``dataset_ref`` pins the version it came from."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gristmill.annotate.questions import (
    AnswerError,
    Question,
    parse_questions,
    question_dicts,
)
from gristmill.annotate.records_view import record_view, validate_in_view
from gristmill.annotate.tables import inserted_id, items, members, projects, utcnow
from gristmill.records.kinds import RECORD_MODELS, Kind, RecordBase
from gristmill.store import Version, Workspace

ROLES = ("owner", "admin", "reviewer", "annotator")


class Settings(BaseModel):
    """Per-project settings (all optional; the defaults suit a first project)."""

    model_config = ConfigDict(extra="forbid")

    overlap: int = Field(default=1, ge=1, le=50, description="submitted answers per record")
    gold_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of gold tasks")
    order: str = Field(default="dataset", description="dataset | random | attribute:NAME[:asc]")
    seed: int = 0
    show_suggestions: bool = True
    lease_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @field_validator("order")
    @classmethod
    def _order(cls, value: str) -> str:
        if value in ("dataset", "random") or (value.startswith("attribute:") and len(value) > 10):
            return value
        raise ValueError("order must be dataset, random or attribute:NAME[:asc|desc]")


_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """Guidelines as HTML; raw HTML in the markdown is escaped, never passed through."""
    return str(_md.render(text or ""))


def record_from_json(data: dict[str, Any], where: str = "record") -> RecordBase:
    """A record pushed through the API: ``{"kind": ..., <the kind's fields>}``."""
    kind = data.get("kind")
    if kind not in {k.value for k in Kind}:
        raise ValueError(f"{where}: kind must be one of {', '.join(k.value for k in Kind)}")
    body = {k: v for k, v in data.items() if k != "kind"}
    try:
        return RECORD_MODELS[Kind(kind)].model_validate(body)
    except Exception as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _attribute_order(version: Version, spec: str) -> dict[str, float]:
    """Sort keys from an attribute: ``attribute:NAME[.COLUMN][:asc|desc]``; the
    default column is ``score`` and the default direction descending (most uncertain,
    highest score first)."""
    body = spec.removeprefix("attribute:")
    body, _, direction = body.partition(":")
    name, _, column = body.partition(".")
    table = version.read_attribute(name)
    if not column:
        numeric = [
            f.name
            for f in table.schema
            if f.name != "id" and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
        ]
        column = "score" if "score" in table.column_names else (numeric[0] if numeric else "")
    if column not in table.column_names:
        raise ValueError(f"attribute {name!r} has no numeric column {column or 'score'!r}")
    sign = 1.0 if direction == "asc" else -1.0
    ids = table.column("id").to_pylist()
    values = table.column(column).to_pylist()
    return {i: sign * float(v) for i, v in zip(ids, values, strict=True) if v is not None}


def ordered(
    records: list[RecordBase], settings: Settings, version: Version | None
) -> list[RecordBase]:
    if settings.order == "random":
        out = list(records)
        random.Random(settings.seed).shuffle(out)
        return out
    if settings.order.startswith("attribute:"):
        if version is None:
            raise ValueError("ordering by an attribute needs records from a dataset version")
        keys = _attribute_order(version, settings.order)
        missing = float("inf")
        return sorted(records, key=lambda r: keys.get(r.id, missing))  # stable: ties keep order
    return list(records)


def check_gold(
    questions: list[Question], view: dict[str, Any], values: dict[str, Any], where: str
) -> dict[str, Any]:
    """Validate a gold answer set against the questions (like a submitted answer)."""
    unknown = sorted(set(values) - {q.name for q in questions})
    if unknown:
        raise ValueError(f"{where}: unknown question(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for q in questions:
        if q.name not in values:
            continue
        try:
            out[q.name] = validate_in_view(q, values[q.name], view)
        except AnswerError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    if not out:
        raise ValueError(f"{where}: a gold record needs the answer to at least one question")
    return out


def insert_items(
    conn: sa.Connection,
    project_id: int,
    questions: list[Question],
    records: Iterable[RecordBase],
    gold: dict[str, dict[str, Any]] | None = None,
) -> tuple[int, int]:
    """Append records to a project's queue (after those already there); returns
    (added, already present). Gold answers are checked against the questions."""
    gold = dict(gold or {})
    start = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(items.c.position), -1)).where(
            items.c.project_id == project_id
        )
    ).scalar_one()
    existing = set(
        conn.execute(sa.select(items.c.record_id).where(items.c.project_id == project_id)).scalars()
    )
    rows: list[dict[str, Any]] = []
    added = dupes = 0
    for record in records:
        if record.id in existing:
            dupes += 1
            continue
        existing.add(record.id)
        view = record_view(record)
        g = gold.pop(record.id, None)
        rows.append(
            {
                "project_id": project_id,
                "record_id": record.id,
                "position": start + 1 + added,
                "is_gold": g is not None,
                "gold": check_gold(questions, view, g, f"gold {record.id}") if g else None,
                "view": view,
            }
        )
        added += 1
        if len(rows) >= 500:
            conn.execute(items.insert(), rows)
            rows = []
    if rows:
        conn.execute(items.insert(), rows)
    if gold:
        raise ValueError(
            f"gold answers for records not in the project: {', '.join(sorted(gold)[:5])}"
        )
    return added, dupes


def set_gold(
    conn: sa.Connection, project_id: int, questions: list[Question], gold: dict[str, dict[str, Any]]
) -> int:
    """Mark records as gold with their answers (given at creation or later)."""
    views = dict(
        conn.execute(
            sa.select(items.c.record_id, items.c.view).where(
                items.c.project_id == project_id, items.c.record_id.in_(list(gold))
            )
        ).all()
    )
    missing = sorted(set(gold) - set(views))
    if missing:
        raise ValueError(f"gold answers for records not in the project: {', '.join(missing[:5])}")
    for rid, values in gold.items():
        checked = check_gold(questions, views[rid], values, f"gold {rid}")
        conn.execute(
            items.update()
            .where(items.c.project_id == project_id, items.c.record_id == rid)
            .values(is_gold=True, gold=checked)
        )
    return len(gold)


def version_records(
    workspace: Workspace, ref: str, limit: int | None = None
) -> tuple[Version, list[RecordBase]]:
    version = workspace.version(ref)
    out: list[RecordBase] = []
    for record in version.iter_records():
        out.append(record)
        if limit is not None and len(out) >= limit:
            break
    return version, out


def create_project(
    conn: sa.Connection,
    workspace: Workspace,
    *,
    name: str,
    questions: Any,
    dataset_ref: str | None = None,
    records: list[RecordBase] | None = None,
    guidelines: str = "",
    settings: dict[str, Any] | Settings | None = None,
    gold: dict[str, dict[str, Any]] | None = None,
    created_by: int | None = None,
    limit: int | None = None,
) -> int:
    """Create a project from a dataset version (``NAME@N``; ``NAME`` pins the latest)
    and/or records; the creator becomes its owner. Returns the project id."""
    qs = parse_questions(questions)
    s = settings if isinstance(settings, Settings) else Settings.model_validate(settings or {})
    if not name.strip():
        raise ValueError("a project needs a name")
    taken = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).first()
    if taken:
        raise ValueError(f"a project named {name!r} already exists")
    version: Version | None = None
    recs: list[RecordBase] = []
    if dataset_ref:
        version, recs = version_records(workspace, dataset_ref, limit)
        dataset_ref = version.ref
    recs += records or []
    recs = ordered(recs, s, version)
    pid = inserted_id(
        conn.execute(
            projects.insert().values(
                name=name,
                dataset_ref=dataset_ref,
                questions=question_dicts(qs),
                guidelines=guidelines,
                settings=s.model_dump(),
                created_by=created_by,
                created_at=utcnow(),
            )
        )
    )
    insert_items(conn, pid, qs, recs, gold)
    if created_by is not None:
        conn.execute(members.insert().values(project_id=pid, user_id=created_by, role="owner"))
    return int(pid)


class Project:
    """A project row with parsed questions and settings."""

    def __init__(self, row: sa.Row[Any]) -> None:
        self.id: int = row.id
        self.name: str = row.name
        self.dataset_ref: str | None = row.dataset_ref
        self.question_list: list[dict[str, Any]] = list(row.questions)
        self.questions: list[Question] = parse_questions(self.question_list)
        self.by_name: dict[str, Question] = {q.name: q for q in self.questions}
        self.guidelines: str = row.guidelines or ""
        self.settings = Settings.model_validate(row.settings)
        self.created_at = row.created_at

    @classmethod
    def load(cls, conn: sa.Connection, project_id: int) -> Project | None:
        row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        return cls(row) if row else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "dataset_ref": self.dataset_ref,
            "questions": self.question_list,
            "guidelines": self.guidelines,
            "guidelines_html": render_markdown(self.guidelines),
            "settings": self.settings.model_dump(),
            "created_at": self.created_at.isoformat() + "Z" if self.created_at else None,
        }


def iter_views(conn: sa.Connection, project_id: int) -> list[tuple[str, dict[str, Any]]]:
    """Every record's view in queue order."""
    rows = conn.execute(
        sa.select(items.c.record_id, items.c.view)
        .where(items.c.project_id == project_id)
        .order_by(items.c.position)
    ).all()
    return [(str(rid), dict(view)) for rid, view in rows]
