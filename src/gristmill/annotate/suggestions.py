"""Suggestions: a model's or a scorer's answer shown to the annotator to accept or
correct. Sources: any language model backend (``gristmill.models``) — a label
question takes the label whose first token has the highest next-token log-prob, a
text question a generated draft — or an attribute of the dataset version."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from gristmill.annotate.projects import Project
from gristmill.annotate.questions import (
    AnswerError,
    LabelQuestion,
    MultiLabelQuestion,
    Question,
    RatingQuestion,
    TextQuestion,
)
from gristmill.annotate.records_view import prompt_text, validate_in_view
from gristmill.annotate.tables import items, suggestions, utcnow
from gristmill.models.protocols import GenerationParams, LanguageModel
from gristmill.store import Version, Workspace

LABEL_PROMPT = "{text}\n\n{title}\nAnswer with exactly one of: {labels}.\nAnswer:"
TEXT_PROMPT = "{text}\n\n{title}"


def store(conn: sa.Connection, project: Project, rows: list[dict[str, Any]]) -> int:
    """Validate and store suggestions (one per record and question; a new one
    replaces the old). Rows: ``record_id, question, value, score, agent``."""
    rids = {str(r.get("record_id")) for r in rows}
    views = dict(
        conn.execute(
            sa.select(items.c.record_id, items.c.view).where(
                items.c.project_id == project.id, items.c.record_id.in_(list(rids))
            )
        ).all()
    )
    clean: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        where = f"suggestions[{i}]"
        rid, qname = str(r.get("record_id")), r.get("question")
        if rid not in views:
            raise ValueError(f"{where}: no record {rid!r} in this project")
        q = project.by_name.get(str(qname))
        if q is None:
            raise ValueError(f"{where}: no question {qname!r} in this project")
        agent = str(r.get("agent") or "")
        if not agent:
            raise ValueError(f"{where}: agent is required (e.g. model:smollm2)")
        try:
            value = validate_in_view(q, r.get("value"), views[rid])
        except AnswerError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        score = r.get("score")
        clean.append(
            {
                "project_id": project.id,
                "record_id": rid,
                "question": q.name,
                "value": value,
                "score": float(score) if score is not None else None,
                "agent": agent,
                "created_at": utcnow(),
            }
        )
    for row in clean:
        conn.execute(
            suggestions.delete().where(
                suggestions.c.project_id == project.id,
                suggestions.c.record_id == row["record_id"],
                suggestions.c.question == row["question"],
            )
        )
    if clean:
        conn.execute(suggestions.insert(), clean)
    return len(clean)


def _first_token_variants(label: str) -> list[str]:
    return [label, " " + label, label.capitalize(), " " + label.capitalize()]


def from_model(
    model: LanguageModel,
    questions: list[Question],
    views: list[tuple[str, dict[str, Any]]],
    max_tokens: int = 128,
) -> list[dict[str, Any]]:
    """Suggestions for label and text questions from a language model.

    Label: the next-token log-probability of each label's spellings (logsumexp),
    softmax over labels; the suggestion is the best label, its score that
    probability. Text: a greedy draft (score None)."""
    out: list[dict[str, Any]] = []
    agent = f"model:{model.name}"
    for q in questions:
        if isinstance(q, LabelQuestion):
            prompts: list[str | list[dict[str, Any]]] = [
                LABEL_PROMPT.format(text=prompt_text(v), title=q.title, labels=", ".join(q.labels))
                for _, v in views
            ]
            variants = {lbl: _first_token_variants(lbl) for lbl in q.labels}
            flat = sorted({s for vs in variants.values() for s in vs})
            results = model.next_token_logprobs(prompts, candidates=flat, top_k=20)
            for (rid, _), res in zip(views, results, strict=True):
                scores = {}
                for lbl, vs in variants.items():
                    lps = [res.logprobs[s] for s in vs if s in res.logprobs]
                    m = max(lps) if lps else -1e9
                    scores[lbl] = m + math.log(sum(math.exp(x - m) for x in lps)) if lps else -1e9
                top = max(scores.values())
                z = sum(math.exp(s - top) for s in scores.values())
                best = max(scores, key=lambda k: scores[k])
                out.append(
                    {
                        "record_id": rid,
                        "question": q.name,
                        "value": best,
                        "score": round(1.0 / z, 6),
                        "agent": agent,
                    }
                )
        elif isinstance(q, TextQuestion):
            prompts = [
                [
                    {
                        "role": "user",
                        "content": TEXT_PROMPT.format(text=prompt_text(v), title=q.title),
                    }
                ]
                for _, v in views
            ]
            gens = model.generate(prompts, GenerationParams(max_tokens=max_tokens))
            for (rid, _), gen in zip(views, gens, strict=True):
                text = gen.texts[0].strip() if gen.texts else ""
                if text:
                    out.append(
                        {
                            "record_id": rid,
                            "question": q.name,
                            "value": text,
                            "score": None,
                            "agent": agent,
                        }
                    )
    return out


def _score_of(row: dict[str, Any]) -> float | None:
    """Confidence of an attribute row: ``confidence``/``probability``, the top of
    ``probs`` (a classifier's distribution), else ``score``."""
    for key in ("confidence", "probability"):
        v = row.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    probs = row.get("probs")
    if isinstance(probs, list) and probs:
        return float(max(probs))
    v = row.get("score")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def from_attribute(
    version: Version, attribute: str, questions: list[Question]
) -> list[dict[str, Any]]:
    """Suggestions from an attribute of the version: a ``label``/``value`` column
    gives label, multi-label and text values; numeric columns named like a rating
    question's dimensions give a rating. The score is ``confidence``/``probability``
    /``score`` or the top of ``probs``."""
    table: pa.Table = version.read_attribute(attribute)
    rows = table.to_pylist()
    agent = f"attribute:{attribute}"
    out: list[dict[str, Any]] = []
    for q in questions:
        for row in rows:
            value: Any = None
            if isinstance(q, LabelQuestion | TextQuestion | MultiLabelQuestion):
                value = row.get(q.name, row.get("label", row.get("value")))
                if isinstance(q, MultiLabelQuestion) and isinstance(value, str):
                    value = [value]
            elif isinstance(q, RatingQuestion) and q.target == "record":
                dims = {d.name: row.get(d.name) for d in q.dimensions}
                if all(isinstance(x, int | float) for x in dims.values()):
                    value = {k: round(float(x)) for k, x in dims.items() if x is not None}
            if value is None:
                continue
            score = _score_of(row)
            out.append(
                {
                    "record_id": str(row["id"]),
                    "question": q.name,
                    "value": value,
                    "score": score,
                    "agent": agent,
                }
            )
    return out


def generate(
    workspace: Workspace,
    project: Project,
    source: str,
    views: list[tuple[str, dict[str, Any]]],
    question_names: list[str] | None = None,
    max_tokens: int = 128,
    cache: str | None = None,
) -> list[dict[str, Any]]:
    """Suggestions from ``source``: ``attribute:NAME`` (of the project's version) or a
    ``--model`` value resolved by ``gristmill.models.resolve_language_model``."""
    qs = [q for q in project.questions if question_names is None or q.name in question_names]
    if question_names:
        unknown = sorted(set(question_names) - {q.name for q in qs})
        if unknown:
            raise ValueError(f"no question(s) {', '.join(unknown)} in this project")
    wanted = {rid for rid, _ in views}
    if source.startswith("attribute:"):
        if not project.dataset_ref:
            raise ValueError("attribute suggestions need a project made from a dataset version")
        version = workspace.version(project.dataset_ref)
        rows = from_attribute(version, source.removeprefix("attribute:"), qs)
        return [r for r in rows if r["record_id"] in wanted]
    from gristmill.models.resolve import resolve_language_model

    spec = source.removeprefix("model:")
    model, _ = resolve_language_model(spec or None, cache=cache, threads=1)
    return from_model(model, qs, views, max_tokens=max_tokens)
