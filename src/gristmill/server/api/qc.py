"""Quality control over HTTP: agreement, gold accuracy, suggestion agreement,
aggregation, review and adjudication, and export (aggregate + write-back).

The statistics are QC's (``gristmill.annotate.agreement/aggregate/writeback``);
this module only gathers answers in long format and hands them over."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import orjson
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gristmill.annotate.projects import Project
from gristmill.annotate.questions import AnswerError
from gristmill.annotate.queue import project_progress
from gristmill.annotate.records_view import validate_in_view
from gristmill.annotate.tables import answers, items, resolutions, suggestions, users, utcnow
from gristmill.server.api.queue import long_answers
from gristmill.server.deps import Access, AppState, project_access
from gristmill.store import StoreError, Version

router = APIRouter(prefix="/api/projects", tags=["quality"])
Member = Annotated[Access, Depends(project_access("annotator"))]
Reviewer = Annotated[Access, Depends(project_access("reviewer"))]
Admin = Annotated[Access, Depends(project_access("admin"))]


def frame(rows: list[dict[str, Any]], question: str, gold: bool | None = False) -> pd.DataFrame:
    """Long-format answers of one question: record_id, annotator, value."""
    picked = [
        {"record_id": r["record_id"], "annotator": r["annotator"], "value": r["value"]}
        for r in rows
        if r["question"] == question and (gold is None or r["is_gold"] == gold)
    ]
    return pd.DataFrame(picked, columns=["record_id", "annotator", "value"])


def _jsonable(x: Any) -> Any:
    if x is None or isinstance(x, bool | int | str):
        return x
    if isinstance(x, float):
        return None if x != x else x  # NaN → null
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        return _jsonable(x.item())
    return orjson.loads(orjson.dumps(x, option=orjson.OPT_SERIALIZE_NUMPY, default=str))


def _agreement_row(ag: Any) -> dict[str, Any]:
    return {
        "question": ag.question,
        "kind": ag.kind,
        "level": getattr(ag, "level", None),
        "krippendorff_alpha": _jsonable(ag.krippendorff_alpha),
        "fleiss_kappa": _jsonable(ag.fleiss_kappa),
        "n_items": int(ag.n_items),
        "n_annotators": int(getattr(ag, "n_annotators", 0) or 0),
        "dimensions": {
            k: {
                "krippendorff_alpha": _jsonable(d.krippendorff_alpha),
                "fleiss_kappa": _jsonable(d.fleiss_kappa),
                "n_items": int(d.n_items),
            }
            for k, d in (getattr(ag, "dimensions", None) or {}).items()
        },
    }


Loaded = tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]]]


def _load(st: AppState, project: Project) -> Loaded:
    """Every answer (long format), the gold answers and the suggestions."""
    with st.tx() as conn:
        rows = long_answers(conn, project.id, None)
        gold = {
            r.record_id: r.gold
            for r in conn.execute(
                sa.select(items.c.record_id, items.c.gold).where(
                    items.c.project_id == project.id, items.c.is_gold.is_(True)
                )
            )
        }
        sug = [
            {"record_id": r.record_id, "question": r.question, "value": r.value}
            for r in conn.execute(
                sa.select(suggestions).where(suggestions.c.project_id == project.id)
            )
        ]
    return rows, gold, sug


def compute_stats(
    project: Project,
    rows: list[dict[str, Any]],
    gold: dict[str, dict[str, Any]],
    sug: list[dict[str, Any]],
) -> dict[str, Any]:
    """Agreement per question, gold accuracy per annotator, human-vs-model agreement."""
    from gristmill.annotate.agreement import agreement, gold_accuracy, suggestion_agreement

    submitted = [r for r in rows if r["status"] == "submitted"]
    out_agreement: list[dict[str, Any]] = []
    out_sugg: list[dict[str, Any]] = []
    gold_tot: dict[str, list[float]] = {}
    for q in project.question_list:
        df = frame(submitted, q["name"])
        if not df.empty and df["annotator"].nunique() >= 2:
            out_agreement.append(_agreement_row(agreement(q, df)))
        qs = [s for s in sug if s["question"] == q["name"]]
        if qs and not df.empty:
            sdf = pd.DataFrame(
                [{"record_id": s["record_id"], "value": s["value"]} for s in qs],
                columns=["record_id", "value"],
            )
            res = suggestion_agreement(q, df, sdf)
            if res.get("n"):
                out_sugg.append({"question": q["name"], **_jsonable(res)})
        g = {rid: v[q["name"]] for rid, v in gold.items() if q["name"] in (v or {})}
        gdf = frame(submitted, q["name"], gold=True)
        if g and not gdf.empty:
            acc = gold_accuracy(q, gdf, g)
            for r in acc.to_dict("records"):
                n = int(r["n"])
                if n:
                    t = gold_tot.setdefault(str(r["annotator"]), [0.0, 0.0])
                    t[0] += float(r["accuracy"]) * n
                    t[1] += n
    gold_accuracy_by = {name: t[0] / t[1] for name, t in gold_tot.items() if t[1]}
    return {
        "agreement": out_agreement,
        "suggestion_agreement": out_sugg,
        "gold_accuracy": gold_accuracy_by,
    }


def _count_statuses(conn: sa.Connection, pid: int) -> dict[str, Counter[str]]:
    per: dict[str, Counter[str]] = {}
    for name, status, n in conn.execute(
        sa.select(users.c.username, answers.c.status, sa.func.count())
        .join(users, users.c.id == answers.c.user_id)
        .where(answers.c.project_id == pid)
        .group_by(users.c.username, answers.c.status)
    ):
        per.setdefault(name, Counter())[status] = int(n)
    return per


def project_stats(st: AppState, project: Project) -> dict[str, Any]:
    """Everything the project page shows a reviewer."""
    rows, gold, sug = _load(st, project)
    stats = compute_stats(project, rows, gold, sug)
    with st.tx() as conn:
        counts = _count_statuses(conn, project.id)
        prog = project_progress(conn, project)
    acc = stats.pop("gold_accuracy")
    stats["per_annotator"] = [
        {
            "username": name,
            "submitted": c["submitted"],
            "skipped": c["skipped"],
            "drafts": c["draft"],
            "gold_accuracy": acc.get(name),
        }
        for name, c in sorted(counts.items())
    ]
    stats["progress"] = {**prog, "per_annotator": stats["per_annotator"]}
    return stats


@router.get("/{pid}/stats")
async def stats(a: Reviewer) -> dict[str, Any]:
    """Agreement per question, gold accuracy per annotator, suggestion agreement."""
    return await run_in_threadpool(project_stats, a.st, a.project)


def aggregated(st: AppState, project: Project, method: str = "auto") -> dict[str, pd.DataFrame]:
    """QC's aggregate per question over regular records, with reviewer resolutions
    replacing the aggregate (confidence 1, method ``resolved``)."""
    from gristmill.annotate.aggregate import aggregate

    rows, gold, _ = _load(st, project)
    submitted = [r for r in rows if r["status"] == "submitted"]
    with st.tx() as conn:
        resolved = conn.execute(
            sa.select(resolutions).where(resolutions.c.project_id == project.id)
        ).all()
    out: dict[str, pd.DataFrame] = {}
    for q in project.question_list:
        df = frame(submitted, q["name"])
        agg = (
            aggregate(q, df, method=method)
            if not df.empty
            else pd.DataFrame(columns=["record_id", "value", "confidence", "method"])
        )
        fixed = {r.record_id: r.value for r in resolved if r.question == q["name"]}
        fixed.update({rid: v[q["name"]] for rid, v in gold.items() if q["name"] in (v or {})})
        if fixed:
            agg = agg[~agg["record_id"].isin(list(fixed))]
            extra = pd.DataFrame(
                [
                    {
                        "record_id": rid,
                        "value": v,
                        "confidence": 1.0,
                        "method": "gold" if rid in gold else "resolved",
                    }
                    for rid, v in fixed.items()
                ],
                columns=["record_id", "value", "confidence", "method"],
            )
            agg = pd.concat([agg, extra], ignore_index=True) if not agg.empty else extra
        out[q["name"]] = agg.reset_index(drop=True)
    return out


@router.get("/{pid}/aggregate")
async def get_aggregate(a: Reviewer, method: str = "auto") -> dict[str, list[dict[str, Any]]]:
    """The aggregated answer per record and question (QC's methods)."""
    frames = await run_in_threadpool(aggregated, a.st, a.project, method)
    return {q: _jsonable(df.to_dict("records")) for q, df in frames.items()}


def _item_agreement(values: list[Any]) -> float | None:
    """Share of annotators who gave the most common answer to one item."""
    if len(values) < 2:
        return None
    keys = Counter(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in values)
    return keys.most_common(1)[0][1] / len(values)


def review_items(a: Access, only_disagreements: bool) -> dict[str, Any]:
    frames = aggregated(a.st, a.project)
    rows, _, _ = _load(a.st, a.project)
    with a.st.tx() as conn:
        views = dict(
            conn.execute(
                sa.select(items.c.record_id, items.c.view)
                .where(items.c.project_id == a.project.id, items.c.is_gold.is_(False))
                .order_by(items.c.position)
            ).all()
        )
        resolved = {
            (r.record_id, r.question): r.value
            for r in conn.execute(
                sa.select(resolutions).where(resolutions.c.project_id == a.project.id)
            )
        }
        a.audit(conn, "review.read")
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "submitted" and not r["is_gold"] and r["question"]:
            by.setdefault((r["record_id"], r["question"]), []).append(
                {"annotator": r["annotator"], "value": r["value"]}
            )
    out = []
    for rid, view in views.items():
        for q in a.project.question_list:
            given = by.get((rid, q["name"]))
            if not given:
                continue
            ag = _item_agreement([g["value"] for g in given])
            if only_disagreements and (ag is None or ag >= 1.0):
                continue
            df = frames.get(q["name"])
            agg = None
            if df is not None and not df.empty:
                hit = df[df["record_id"] == rid]
                if not hit.empty:
                    row = hit.iloc[0]
                    agg = {
                        "value": _jsonable(row["value"]),
                        "confidence": _jsonable(row["confidence"]),
                        "method": row["method"],
                    }
            out.append(
                {
                    "record": view,
                    "question": q,
                    "answers": _jsonable(given),
                    "aggregate": agg,
                    "agreement": ag,
                    "resolved": resolved.get((rid, q["name"])),
                }
            )
    return {"items": out}


@router.get("/{pid}/review")
async def review(a: Reviewer, only_disagreements: bool = False) -> dict[str, Any]:
    """Records with their answers, aggregate and agreement, for reviewers."""
    return await run_in_threadpool(review_items, a, only_disagreements)


class ResolveIn(BaseModel):
    question: str
    value: Any


@router.post("/{pid}/records/{rid}/resolve")
def resolve(rid: str, body: ResolveIn, a: Reviewer) -> dict[str, Any]:
    """A reviewer's final answer to one question of a record (adjudication)."""
    if body.question not in a.project.by_name:
        raise HTTPException(422, f"no question {body.question!r} in this project")
    with a.st.tx() as conn:
        view = conn.execute(
            sa.select(items.c.view).where(
                items.c.project_id == a.project.id, items.c.record_id == rid
            )
        ).scalar()
        if view is None:
            raise HTTPException(404, "no such record")
        q = a.project.by_name[body.question]
        try:
            value = validate_in_view(q, body.value, view)
        except AnswerError as exc:
            raise HTTPException(422, [{"question": q.name, "error": exc.message}]) from exc
        conn.execute(
            resolutions.delete().where(
                resolutions.c.project_id == a.project.id,
                resolutions.c.record_id == rid,
                resolutions.c.question == body.question,
            )
        )
        conn.execute(
            resolutions.insert().values(
                project_id=a.project.id,
                record_id=rid,
                question=body.question,
                value=value,
                user_id=a.who.id,
                created_at=utcnow(),
            )
        )
        a.audit(conn, "record.resolved", {"question": body.question, "value": value}, record_id=rid)
    return {"ok": True, "record_id": rid, "question": body.question, "value": value}


class ExportIn(BaseModel):
    method: str = "auto"


def export_project(st: AppState, project: Project, method: str = "auto") -> Version:
    """Aggregate every question (resolutions and gold first) and write the answers
    back as a new version of the project's dataset (QC's ``write_back``)."""
    from gristmill.annotate.writeback import write_back

    if not project.dataset_ref:
        raise ValueError("export writes back to a dataset version; this project has none")
    frames = aggregated(st, project, method)
    rows, _, _ = _load(st, project)
    submitted = [r for r in rows if r["status"] == "submitted" and r["question"]]
    long = pd.DataFrame(
        [
            {
                "record_id": r["record_id"],
                "annotator": r["annotator"],
                "question": r["question"],
                "value": r["value"],
            }
            for r in submitted
        ],
        columns=["record_id", "annotator", "question", "value"],
    )
    return write_back(
        st.workspace,
        project.dataset_ref,
        project.name,
        project.question_list,
        frames,
        annotator_answers=long,
    )


def _export(a: Access, method: str) -> dict[str, Any]:
    version = export_project(a.st, a.project, method)
    with a.st.tx() as conn:
        a.audit(conn, "project.exported", {"ref": version.ref, "method": method})
    return {"ref": version.ref, "rows": version.row_count}


@router.post("/{pid}/export")
async def export(a: Admin, body: ExportIn | None = None) -> dict[str, Any]:
    """Aggregate every question and write the answers back as a new dataset version;
    returns its ref (``NAME@N``) for ``gristmill export``."""
    try:
        return await run_in_threadpool(_export, a, (body or ExportIn()).method)
    except (ValueError, StoreError) as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/{pid}/export")
def export_answers(a: Admin) -> Response:
    """Every submitted answer as JSONL (long format), for download."""
    with a.st.tx() as conn:
        rows = long_answers(conn, a.project.id, "submitted")
        a.audit(conn, "answers.downloaded", {"rows": len(rows)})
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={
            "Content-Disposition": f'attachment; filename="project-{a.project.id}-answers.jsonl"'
        },
    )


@router.get("/{pid}/audit")
def project_audit(a: Admin, limit: int = 500) -> list[dict[str, Any]]:
    """Who saw and changed what in this project, newest first."""
    from gristmill.annotate.tables import audit as audit_table
    from gristmill.server.api.users import audit_row

    with a.st.tx() as conn:
        rows = conn.execute(
            sa.select(audit_table)
            .where(audit_table.c.project_id == a.project.id)
            .order_by(audit_table.c.id.desc())
            .limit(min(limit, 5000))
        ).all()
    return [audit_row(r) for r in rows]
