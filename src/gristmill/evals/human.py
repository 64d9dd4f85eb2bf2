"""Human grades of a run: people rate a run's answers in the annotation app (a project
over the run version with a record-level rating question), the app writes back a new
version whose records carry ``meta["ratings"][question]``, and this turns those
ratings into the ``human_graded`` metric of a new run version, with its bootstrap
interval and per-tag breakdown beside the run's other metrics (so ``eval compare``
compares human grades too).

A rating is a number, or a ``{dimension: value}`` mapping (``dimension`` picks one; a
single dimension is taken as is). Records without a rating are left out of the mean and
counted, never guessed.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from gristmill.evals.metrics import SampleScore, mean_stats
from gristmill.evals.runner import summarise
from gristmill.records.arrow import dumps_json
from gristmill.records.kinds import Kind
from gristmill.store import Version, VersionWriter


class HumanGradeError(ValueError):
    pass


def eval_run_of(version: Version) -> Version:
    """The eval run ``version`` descends from (itself, or an ancestor through
    annotation write-backs)."""
    current: Version | None = version
    while current is not None:
        if current.manifest.operation == "eval":
            return current
        parent = current.manifest.parent
        current = current.workspace.version(parent) if parent else None
    raise HumanGradeError(f"{version.ref} does not descend from an eval run")


def _rating(value: Any, dimension: str | None, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        if dimension is None:
            if len(value) != 1:
                raise HumanGradeError(
                    f"{where}: the rating has dimensions {sorted(value)}; choose one with "
                    "--dimension"
                )
            return _rating(next(iter(value.values())), None, where)
        return _rating(value.get(dimension), None, where) if dimension in value else None
    raise HumanGradeError(f"{where}: expected a number or {{dimension: number}}, got {value!r}")


def add_human_grades(
    annotated: Version,
    question: str,
    dimension: str | None = None,
    name: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[Version, int, int]:
    """A new run version with ``human_graded`` from ``annotated``'s ratings; returns it,
    the records rated and those without a rating."""
    run = eval_run_of(annotated)
    if annotated.kind != Kind.CONVERSATION:
        raise HumanGradeError(f"{annotated.ref} holds {annotated.kind} records, not a run's")
    rows = []
    items: list[dict[str, Any]] = []
    per_sample: list[SampleScore] = []
    rated = missing = 0
    for row in annotated.iter_rows():
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        if "eval_item" not in meta:
            raise HumanGradeError(f"{annotated.ref}: record {row['id']} is not an eval sample")
        value = _rating((meta.get("ratings") or {}).get(question), dimension, f"record {row['id']}")
        scores = dict(meta.get("scores") or {})
        stats = dict(meta.get("stats") or {})
        if value is None:
            missing += 1
            scores.pop("human_graded", None)
            stats.pop("human_graded", None)
        else:
            rated += 1
            scores["human_graded"] = value
            stats["human_graded"] = mean_stats(value)
        meta["scores"], meta["stats"] = scores, stats
        row["meta"] = dumps_json(meta)  # the storage form of meta
        rows.append(row)
        items.append({"tags": meta.get("tags") or []})
        per_sample.append(SampleScore(scores, stats))
    if not rated:
        raise HumanGradeError(f"{annotated.ref}: no record has a rating for {question!r}")
    summary, by_tag = summarise(items, per_sample, resamples, seed)
    stats_out = {**run.manifest.stats, "metrics": summary, "by_tag": by_tag}
    stats_out["human_unrated"] = missing
    params = {
        **run.manifest.params,
        "human": {"from": annotated.ref, "question": question, "dimension": dimension},
    }
    with VersionWriter(
        annotated.workspace,
        name or run.name,
        Kind.CONVERSATION,
        operation="eval",
        params=params,
        parent=annotated.ref,
    ) as writer:
        writer.stats = stats_out
        writer.write_table(pa.Table.from_pylist(rows, schema=annotated.schema))
    assert writer.version is not None
    return writer.version, rated, missing
