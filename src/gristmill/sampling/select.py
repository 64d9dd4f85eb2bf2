"""Selectors: from scores stored as attributes to the ids of a sample.

A selection is a chain read left to right, as on the command line:

1. ``where``: SQL conditions over the records and their attributes (DuckDB), e.g.
   ``ask_llm >= 0.1``;
2. ``band``: keep the records whose ``by`` score lies between two percentiles
   (computed over what ``where`` left);
3. ``eps`` (SemDeDup): drop records whose similarity to an earlier record of their
   cluster is above ``1 - eps``;
4. ``by`` at ``rate`` (or ``size``): the sampler proper — top-k, bottom-k, inverse
   propensity (Density) or uniform at random, without replacement.

``rate`` is a share of the *input* version, so "--rate 0.2" means 20 % of the
corpus whatever the filters removed (fewer if fewer remain). Scores are computed
once by a scoring run (``gristmill score``) and any number of samples at any rate
read them.

Randomness comes from a hash of (seed, record id), not from the record's position:
the same seed gives the same sample whatever the shard layout, and, for random and
density sampling, the sample at a smaller rate is contained in the sample at a
larger one (Efraimidis–Spirakis keys, one per record).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.store import StoreError, Version

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# How each scorer's `score` column orders records (best first).
ORDERS: dict[str, str] = {
    "ask_llm": "desc",  # most informative first
    "perplexity": "asc",  # lowest perplexity first
    "density": "inverse_propensity",  # P(keep) ∝ 1 / d(x)
    "semdedup": "asc",  # least duplicated first (score = similarity to an earlier record)
    "prototypes": "desc",  # farthest from the centroid first (drop the prototypical)
    "uncertainty": "desc",  # most uncertain first (annotation queues)
    "random": "random",
}
SCORE_COLUMN = "score"


class MissingScores(StoreError):
    """The selection needs an attribute the version does not have yet."""


@dataclass(frozen=True)
class Plan:
    """What to select. ``by``: an attribute name (a scorer's, or any with a numeric
    column named like it or ``score``) or ``random``."""

    by: str | None = None
    rate: float | None = None
    size: int | None = None
    seed: int = 0
    where: tuple[str, ...] = ()
    band: tuple[float, float] | None = None
    eps: float | None = None
    order: str | None = None  # override: desc | asc | inverse_propensity | random

    def __post_init__(self) -> None:
        if self.rate is not None and not 0 < self.rate <= 1:
            raise ValueError("--rate must be in (0, 1]")
        if self.size is not None and self.size < 0:
            raise ValueError("--size must be ≥ 0")
        if self.rate is not None and self.size is not None:
            raise ValueError("give --rate or --size, not both")
        if self.band is not None:
            lo, hi = self.band
            if not 0 <= lo < hi <= 100:
                raise ValueError("--band LOW:HIGH needs 0 ≤ LOW < HIGH ≤ 100 (percentiles)")
        if self.eps is not None and not 0 <= self.eps <= 1:
            raise ValueError("--eps must be in [0, 1]")
        if self.order is not None and self.order not in set(ORDERS.values()):
            raise ValueError(f"unknown order {self.order!r}")
        if self.by is None and (self.rate is not None or self.size is not None):
            raise ValueError("--rate/--size need --by (a score, or random)")
        if self.by is None and not self.where:
            raise ValueError("nothing to select by: give --by and/or --where")

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "rate": self.rate,
            "size": self.size,
            "seed": self.seed,
            "where": list(self.where),
            "band": list(self.band) if self.band else None,
            "eps": self.eps,
            "order": self.order,
        }


@dataclass
class Selection:
    """The outcome: a keep mask over the input version's rows, in their order."""

    source: str
    keep: npt.NDArray[np.bool_]
    steps: list[dict[str, Any]] = field(default_factory=list)  # records left after each link
    method: str | None = None
    scores: F64 | None = None  # the `by` score of every input row (NaN where not needed)
    scorer: dict[str, Any] | None = None  # how the score was made (the scoring run's params)
    warnings: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return int(self.keep.sum())


# -- random keys --------------------------------------------------------------------------


def uniform_keys(ids: list[str], seed: int) -> F64:
    """A uniform (0, 1) number per record from blake2b(seed, id): reproducible and
    independent of the record's position."""
    salt = str(seed).encode()
    out = np.empty(len(ids), dtype=np.float64)
    for i, rid in enumerate(ids):
        h = hashlib.blake2b(rid.encode(), digest_size=8, key=salt[:64]).digest()
        out[i] = ((int.from_bytes(h, "little") >> 11) + 0.5) / float(1 << 53)
    return out


def top_k(order_key: F64, k: int) -> I64:
    """Positions of the k largest keys (ties: the lower position)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= order_key.size:
        return np.arange(order_key.size, dtype=np.int64)
    positions = np.arange(order_key.size)
    order = np.lexsort((positions, -order_key))
    return np.sort(order[:k]).astype(np.int64)


def inverse_propensity_keys(density: F64, u: F64) -> F64:
    """Efraimidis–Spirakis keys for sampling without replacement with probability
    ∝ 1/d(x): key = u^(1/w) with w = 1/d, i.e. log key = d·log u; the k largest keys
    are the sample."""
    d = np.where(np.isfinite(density) & (density > 0), density, np.inf)
    return np.asarray(d * np.log(u), dtype=np.float64)


# -- the attributes a selection reads -------------------------------------------------------


def scorer_of(version: Version, attribute: str) -> tuple[str | None, dict[str, Any]]:
    """Which scoring step made ``attribute`` (from its scoring run's pipeline), and
    that step's parameters (the model among them)."""
    info = version.attribute_info(attribute)
    pipeline = info.params.get("pipeline") or []
    for entry in pipeline:
        if isinstance(entry, dict):
            for name, params in entry.items():
                params = params or {}
                if (params.get("attribute") or name) == attribute:
                    return str(name), dict(params)
    scorer = info.params.get("scorer")
    if isinstance(scorer, str):
        return scorer, dict(info.params.get("scorer_params") or {})
    return (attribute if attribute in ORDERS else None), {}


def _score_hint(version: Version, name: str) -> str:
    scorer = name if name in ORDERS and name != "random" else "<scorer>"
    extra = "" if scorer != "<scorer>" else f" --as {name}"
    return f"run `gristmill score {version.ref} --by {scorer}{extra}` first"


def _attribute_columns(version: Version, attribute: str) -> pa.Table:
    """An attribute's columns for SQL: its score as ``<attr>``, others as ``<attr>_<col>``."""
    table = version.read_attribute(attribute)
    names = []
    for col in table.column_names:
        if col == "id":
            names.append("id")
        elif col in (SCORE_COLUMN, attribute):
            names.append(attribute)
        else:
            names.append(f"{attribute}_{col}")
    table = table.rename_columns(names)
    if len(set(names)) != len(names):  # both `score` and `<attr>`: keep the first
        seen: set[str] = set()
        keep = [i for i, n in enumerate(names) if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]
        table = table.select(keep)
    ids = table.column("id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise StoreError(f"attribute {attribute!r} has several rows per record: not a score")
    return table


def _mentioned(sql: str, names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])|(?<![\w.]){re.escape(n)}_", sql)
    ]


def _candidates_table(version: Version, attributes: list[str], columns: list[str]) -> pa.Table:
    """``_pos`` (row position), ``id``, the named record columns, and the attributes."""
    base = version.table(columns=["id", *[c for c in columns if c != "id"]])
    base = base.append_column("_pos", pa.array(np.arange(base.num_rows, dtype=np.int64)))
    for attribute in attributes:
        attr = _attribute_columns(version, attribute)
        drop = [
            f.name
            for f in attr.schema
            if f.name != "id"
            and (f.name in base.column_names or pa.types.is_nested(f.type))  # joins take scalars
        ]
        if drop:
            attr = attr.drop_columns(drop)
        base = base.join(attr, "id", join_type="left outer")
    return base.sort_by("_pos")


def _where_mask(table: pa.Table, conditions: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    con = duckdb.connect()
    try:
        con.register("records", table)
        sql = " AND ".join(f"coalesce(({c}), false)" for c in conditions)
        try:
            rows = con.execute(f"SELECT _pos FROM records WHERE {sql}").fetchnumpy()["_pos"]
        except duckdb.Error as exc:
            raise ValueError(f"--where: the condition failed: {exc}") from exc
    finally:
        con.close()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    return mask


def select(version: Version, plan: Plan) -> Selection:
    """Apply ``plan`` to ``version``: the keep mask, and how many records each link left."""
    n = version.row_count
    known = version.attribute_names()
    by = plan.by
    method = plan.order
    scorer: dict[str, Any] | None = None
    if by is not None and by != "random":
        if by not in known:
            raise MissingScores(
                f"{version.ref} has no {by!r} scores; {_score_hint(version, by)}"
                + (f" (attributes: {', '.join(known)})" if known else "")
            )
        step_name, step_params = scorer_of(version, by)
        scorer = {"step": step_name, "params": step_params}
        if method is None:
            method = ORDERS.get(step_name or "", "desc")
    elif by == "random":
        method = "random"

    needed: list[str] = []
    for condition in plan.where:
        needed += _mentioned(condition, known)
    missing_words = _unknown_score_names(plan.where, known)
    if missing_words:
        word = missing_words[0]
        raise MissingScores(
            f"--where uses {word!r}, but {version.ref} has no {word!r} scores; "
            f"{_score_hint(version, word)}"
        )
    if by is not None and by != "random":
        needed.append(by)
    needed = list(dict.fromkeys(needed))
    record_cols = [
        f.name for f in version.schema if any(_mentioned(c, [f.name]) for c in plan.where)
    ]
    table = _candidates_table(version, needed, record_cols)
    ids: list[str] = table.column("id").to_pylist()

    keep = np.ones(n, dtype=bool)
    steps: list[dict[str, Any]] = [{"link": "input", "records": n}]
    if plan.where:
        keep &= _where_mask(table, plan.where)
        steps.append({"link": "where", "records": int(keep.sum())})

    scores: F64 | None = None
    warnings: list[str] = []
    if by is not None and by != "random":
        column = table.column(by)
        if column.null_count:
            missing = column.null_count
            raise MissingScores(
                f"{missing:,} of {n:,} records of {version.ref} have no {by!r} score "
                f"(the attribute was made for other records); {_score_hint(version, by)}"
            )
        scores = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)

    if plan.band is not None:
        if scores is None:
            raise ValueError("--band needs --by SCORE")
        lo_p, hi_p = plan.band
        current = scores[keep]
        if current.size:
            lo, hi = np.percentile(current, [lo_p, hi_p])
            keep &= (scores >= lo) & (scores <= hi)
        steps.append({"link": f"band {lo_p:g}:{hi_p:g}", "records": int(keep.sum())})

    if plan.eps is not None:
        if scores is None or (scorer or {}).get("step") != "semdedup":
            raise ValueError("--eps works with --by semdedup (a SemDeDup scoring run)")
        keep &= scores <= 1.0 - plan.eps
        steps.append({"link": f"semdedup eps {plan.eps:g}", "records": int(keep.sum())})

    k: int | None = None
    if plan.rate is not None:
        k = math.floor(plan.rate * n + 0.5)
    elif plan.size is not None:
        k = plan.size
    if k is None and by is not None and plan.band is None and plan.eps is None:
        raise ValueError(f"--by {by} selects at a rate: give --rate or --size")
    if k is not None and by is not None:
        available = int(keep.sum())
        if k > available:
            warnings.append(
                f"asked for {k:,} records but only {available:,} pass the filters: keeping all"
            )
        positions = np.flatnonzero(keep)
        u = uniform_keys([ids[i] for i in positions], plan.seed)
        if method == "random":
            key = u
        elif method == "inverse_propensity":
            assert scores is not None
            key = inverse_propensity_keys(scores[positions], u)
        elif method == "asc":
            assert scores is not None
            key = -scores[positions]
        else:
            assert scores is not None
            key = scores[positions]
        chosen = positions[top_k_tiebreak(key, u, k)]
        keep = np.zeros(n, dtype=bool)
        keep[chosen] = True
        steps.append({"link": f"{method} {by}", "records": int(keep.sum())})
    return Selection(version.ref, keep, steps, method, scores, scorer, warnings)


def top_k_tiebreak(key: F64, tiebreak: F64, k: int) -> I64:
    """Positions of the k largest ``key``; equal keys broken by the seeded ``tiebreak``
    (not by position, so ties do not favour the start of the corpus)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= key.size:
        return np.arange(key.size, dtype=np.int64)
    order = np.lexsort((-tiebreak, -key))
    return np.sort(order[:k]).astype(np.int64)


def _unknown_score_names(conditions: tuple[str, ...], known: list[str]) -> list[str]:
    """Scorer names a condition uses that the version has no attribute for (so the
    error says which `gristmill score` to run instead of a DuckDB binder error)."""
    out = []
    for name in ORDERS:
        if name == "random" or name in known:
            continue
        if any(_mentioned(c, [name]) for c in conditions):
            out.append(name)
    return out
