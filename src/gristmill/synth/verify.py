"""People in the loop: a stratified sample of AI-judged records for humans to verify
(a new version, ready for an annotation project), and human-vs-judge agreement per
dimension once their ratings are back (``candidates[i].ratings`` with a ``human:``
rater, where the app's write-back puts them, or an ``annotations`` attribute)."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gristmill.records.arrow import to_row
from gristmill.records.kinds import Kind, Preference
from gristmill.store import Version, VersionWriter, Workspace
from gristmill.store.errors import StoreError
from gristmill.store.workspace import check_name
from gristmill.synth.runner import SynthError


def _mean_ratings(record: Preference, rater: str) -> dict[tuple[int, str], float]:
    """(candidate, dimension) → mean rating by raters of kind ``rater`` (model, human)."""
    acc: dict[tuple[int, str], list[float]] = defaultdict(list)
    for i, c in enumerate(record.candidates):
        for r in c.ratings:
            if (r.rater or "").startswith(f"{rater}:"):
                acc[(i, r.dimension)].append(r.value)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _preferences(version: Version) -> list[Preference]:
    if version.kind is not Kind.PREFERENCE:
        raise SynthError(f"{version.ref} is {version.kind}, not preference (a judge run's output)")
    return [r for r in version.iter_records() if isinstance(r, Preference)]


ANNOTATIONS = "annotations"  # the attribute the annotation app's write-back attaches


def _rank_key(seed: int, rid: str) -> str:
    return hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()


def verify_sample(
    workspace: Workspace,
    run_ref: str,
    per_stratum: int = 5,
    seed: int = 0,
    output: str | None = None,
) -> tuple[Version, dict[str, dict[str, int]]]:
    """Up to ``per_stratum`` records per (dimension, judge score bucket) of a judge run,
    plus a stratum of records the judge could not rate; a new version of ``output``
    (default ``<run>-verify``). A record's bucket on a dimension is its candidates'
    mean judge rating, rounded. The draw is seeded and does not depend on order."""
    run = workspace.version(run_ref)
    records = _preferences(run)
    strata: dict[str, list[str]] = defaultdict(list)
    by_id = {r.id: r for r in records}
    for r in records:
        ratings = _mean_ratings(r, "model")
        if not ratings:
            strata["unrated"].append(r.id)
            continue
        per_dim: dict[str, list[float]] = defaultdict(list)
        for (_, dim), value in ratings.items():
            per_dim[dim].append(value)
        for dim, values in per_dim.items():
            bucket = math.floor(sum(values) / len(values) + 0.5)
            strata[f"{dim}={bucket}"].append(r.id)
    chosen: dict[str, list[str]] = {}
    picked: set[str] = set()
    report: dict[str, dict[str, int]] = {}
    for stratum in sorted(strata):
        ids = sorted(strata[stratum], key=lambda i: _rank_key(seed, i))
        take = [i for i in ids if i not in picked][:per_stratum]
        # a record already drawn for another stratum counts for this one too
        already = [i for i in ids if i in picked][: max(0, per_stratum - len(take))]
        picked.update(take)
        chosen[stratum] = take + already
        report[stratum] = {"available": len(ids), "sampled": len(take) + len(already)}
    strata_of: dict[str, list[str]] = defaultdict(list)
    for stratum, ids in chosen.items():
        for i in ids:
            strata_of[i].append(stratum)
    rows = []
    for rid in sorted(picked, key=lambda i: _rank_key(seed, i)):
        rec = by_id[rid]
        meta = {**rec.meta, "verify": {"strata": strata_of[rid], "judge_run": run.ref}}
        rows.append(to_row(rec.model_copy(update={"meta": meta})))
    name = check_name(output or f"{run.name}-verify")
    params = {"input": run.ref, "per_stratum": per_stratum, "seed": seed}
    with VersionWriter(
        workspace, name, Kind.PREFERENCE, operation="synth-verify-sample", params=params,
        parent=run.ref,
    ) as writer:  # fmt: skip
        writer.write_rows(rows)
        writer.stats = {"strata": report, "records_in": len(records), "sampled": len(rows)}
    assert writer.version is not None
    return writer.version, report


def rating_question(run: Version) -> dict[str, Any]:
    """The annotation question (app contract: ``rating``, each response) matching a
    judge run's dimensions and scale, so people rate what the judge rated."""
    scales: dict[str, tuple[float, float]] = {}
    for r in _preferences(run):
        for s in r.scales:
            scales.setdefault(s.dimension, (s.min, s.max))
    if not scales:
        raise SynthError(f"{run.ref} declares no rating scale (not a ratings judge run?)")
    return {
        "name": "ratings",
        "title": "Rate each response",
        "kind": "rating",
        "required": True,
        "target": "each_response",
        "dimensions": [
            {"name": d, "min": int(lo), "max": int(hi)} for d, (lo, hi) in scales.items()
        ],
    }


# -- agreement ---------------------------------------------------------------------------


@dataclass
class DimensionAgreement:
    dimension: str
    n: int
    spearman: float | None
    exact: float | None  # share of equal ratings (rounded)
    within_one: float | None  # share within ±1
    weighted_kappa: float | None  # Cohen's kappa, quadratic weights
    human_mean: float | None
    judge_mean: float | None


def _rating_lists(value: Any) -> Iterator[list[dict[str, Any]]]:
    """Every list of {dimension: number} dicts inside a JSON answer (a rating question
    on each response), however the write-back nests it (by question, under "value")."""
    if isinstance(value, list):
        if (
            value
            and all(isinstance(x, dict) for x in value)
            and all(
                isinstance(v, int | float) and not isinstance(v, bool)
                for x in value
                for v in x.values()
            )
        ):
            yield value
        else:
            for x in value:
                yield from _rating_lists(x)
    elif isinstance(value, dict):
        for x in value.values():
            yield from _rating_lists(x)


def _human_from_attribute(run: Version, name: str) -> dict[str, dict[tuple[int, str], float]]:
    """Human ratings from an ``annotations``-style attribute: per record, JSON holding a
    list of {dimension: value} per response (rating question, each_response)."""
    table = run.read_attribute(name)
    out: dict[str, dict[tuple[int, str], float]] = {}
    for row in table.to_pylist():
        ratings: dict[tuple[int, str], float] = {}
        for col, value in row.items():
            if col == "id" or value is None:
                continue
            if isinstance(value, str | bytes):
                try:
                    data = orjson.loads(value)
                except orjson.JSONDecodeError:
                    continue  # e.g. the write-back's <question>_method column
            else:
                data = value
            for answers in _rating_lists(data):
                for i, per in enumerate(answers):
                    for dim, v in per.items():
                        ratings[(i, dim)] = float(v)
        if ratings:
            out[str(row["id"])] = ratings
    return out


def _weighted_kappa(h: list[int], j: list[int]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    labels = sorted(set(h) | set(j))
    if len(labels) < 2:
        return None
    value = float(cohen_kappa_score(h, j, labels=labels, weights="quadratic"))
    return None if math.isnan(value) else value


def _spearman(h: list[float], j: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(h) < 2 or len(set(h)) < 2 or len(set(j)) < 2:
        return None
    value = float(spearmanr(h, j).statistic)
    return None if math.isnan(value) else value


def agreement(workspace: Workspace, run_ref: str, human: str) -> list[DimensionAgreement]:
    """Human vs judge per dimension, over the (record, candidate) pairs both rated.
    ``human`` is a version (its records' ``human:`` ratings, matched by id, else its
    ``annotations`` attribute, where the app's write-back keeps the answers) or the
    name of an attribute of the run holding annotation answers."""
    run = workspace.version(run_ref)
    judge = {r.id: _mean_ratings(r, "model") for r in _preferences(run)}
    humans: dict[str, dict[tuple[int, str], float]]
    try:
        other = workspace.version(human)
    except StoreError:
        other = None
    if other is not None:
        humans = {r.id: _mean_ratings(r, "human") for r in _preferences(other)}
        humans = {k: v for k, v in humans.items() if v}
        if not humans and ANNOTATIONS in other.attribute_names():
            humans = _human_from_attribute(other, ANNOTATIONS)
    elif human in run.attribute_names():
        humans = _human_from_attribute(run, human)
    else:
        raise SynthError(f"{human!r} is neither a dataset version nor an attribute of {run.ref}")
    pairs: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for rid, hr in humans.items():
        jr = judge.get(rid, {})
        for key, hv in hr.items():
            if key in jr:
                pairs[key[1]][0].append(hv)
                pairs[key[1]][1].append(jr[key])
    if not pairs:
        raise SynthError(
            f"no response was rated both by a person ({human}) and by the judge ({run.ref})"
        )
    out = []
    for dim in sorted(pairs):
        h, j = pairs[dim]
        hi = [round(x) for x in h]
        ji = [round(x) for x in j]
        diff = np.abs(np.asarray(hi) - np.asarray(ji))
        out.append(
            DimensionAgreement(
                dimension=dim,
                n=len(h),
                spearman=_spearman(h, j),
                exact=float(np.mean(diff == 0)),
                within_one=float(np.mean(diff <= 1)),
                weighted_kappa=_weighted_kappa(hi, ji),
                human_mean=float(np.mean(h)),
                judge_mean=float(np.mean(j)),
            )
        )
    return out
