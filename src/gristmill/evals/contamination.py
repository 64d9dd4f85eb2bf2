"""Which eval items leak into a training set: word 13-gram collisions (the curate stage's
``decontaminate`` rule, reused as is: GPT-3 / lm-eval-harness normalisation), and for
each colliding (record, item) pair the longest common substring in words, so a report
can tell a shared boilerplate phrase from a copied question.

``contaminated_ids`` is the check an exporter calls; ``drop_contaminated`` writes a
clean version of the training set (parent: the checked one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.curate.decontaminate import (
    DEFAULT_FIELDS,
    _eval_texts,
    find_contamination,
    normalize,
    record_texts,
)
from gristmill.records.kinds import Kind
from gristmill.store import Version, derive_version


@dataclass
class Collision:
    record_id: str
    eval: str  # eval version ref
    item_id: str
    ngrams: int  # distinct n-grams the pair shares
    lcs_words: int  # longest common substring, in normalised words
    lcs_text: str  # that substring (normalised words, shortened past 40)
    item_input: str


@dataclass
class ContaminationReport:
    train: str
    evals: list[str]
    ngram: int
    records_checked: int
    eval_items: int
    collisions: list[Collision] = field(default_factory=list)

    @property
    def records(self) -> list[str]:
        return list(dict.fromkeys(c.record_id for c in self.collisions))

    @property
    def items(self) -> list[str]:
        return list(dict.fromkeys(c.item_id for c in self.collisions))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["contaminated_records"] = len(self.records)
        out["eval_items_hit"] = len(self.items)
        return out


def _as_list(evals: Version | Sequence[Version]) -> list[Version]:
    return [evals] if isinstance(evals, Version) else list(evals)


def contaminated_ids(
    train: Version, evals: Version | Sequence[Version], ngram: int = 13, min_overlap: int = 1
) -> set[str]:
    """Ids of the training records that contain an eval item (the export hook)."""
    return {c.record_id for c in find_contamination(train, _as_list(evals), ngram, min_overlap)}


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def longest_common_words(a: list[str], b: list[str]) -> tuple[int, list[str]]:
    """Longest run of words found in both (difflib's longest match, no junk heuristic)."""
    if not a or not b:
        return 0, []
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size, a[match.a : match.a + match.size]


def contamination_report(
    train: Version,
    evals: Version | Sequence[Version],
    ngram: int = 13,
    min_overlap: int = 1,
    fields: Sequence[str] = DEFAULT_FIELDS,
) -> ContaminationReport:
    """Every (training record, eval item) pair that collides, with the n-grams they
    share and their longest common substring."""
    versions = _as_list(evals)
    found = find_contamination(train, versions, ngram, min_overlap, fields)
    report = ContaminationReport(
        train.ref,
        [v.ref for v in versions],
        ngram,
        train.row_count,
        sum(v.row_count for v in versions),
    )
    if not found:
        return report
    wanted_items = {i for c in found for i in c.eval_items}
    items: dict[str, tuple[str, dict[str, Any]]] = {}
    for v in versions:
        for row in v.iter_rows(columns=["id", "input", "references", "choices", "meta"]):
            if row["id"] in wanted_items:
                items.setdefault(row["id"], (v.ref, row))
    kind = Kind(train.kind)
    columns = ["id", "title", "text"] if kind == Kind.DOCUMENT else ["id", "system", "messages"]
    ids = pa.array([c.record_id for c in found])
    full = train.table(columns=columns)
    table = full.filter(pc.is_in(full.column("id"), value_set=ids))
    texts = dict(zip(table.column("id").to_pylist(), record_texts(kind, table), strict=True))
    for c in found:
        record_words = [normalize(t) for t in texts.get(c.record_id, []) if t]
        for item_id in c.eval_items:
            ref, row = items[item_id]
            item_words = [normalize(t) for _, t in _eval_texts(row, fields)]
            grams: set[tuple[str, ...]] = set()
            for iw in item_words:
                grams |= _ngrams(iw, ngram)
            shared = sum(1 for g in grams if any(g in _ngrams(rw, len(g)) for rw in record_words))
            best, words = 0, []
            for rw in record_words:
                for iw in item_words:
                    size, run = longest_common_words(rw, iw)
                    if size > best:
                        best, words = size, run
            text = " ".join(words if len(words) <= 40 else [*words[:40], "…"])
            report.collisions.append(
                Collision(c.record_id, ref, item_id, shared, best, text, row["input"])
            )
    return report


def drop_contaminated(
    train: Version,
    evals: Version | Sequence[Version],
    ids: set[str],
    name: str | None = None,
    ngram: int = 13,
) -> Version:
    """A new version of ``train`` without the records ``ids`` (from a report)."""
    table = train.table()
    keep = pc.invert(pc.is_in(table.column("id"), value_set=pa.array(sorted(ids), pa.string())))
    clean = table.filter(keep)
    params = {
        "against": [v.ref for v in _as_list(evals)],
        "ngram": ngram,
        "dropped": len(ids),
        "dropped_ids": sorted(ids)[:1000],
    }
    return derive_version(train, clean, "eval-decontaminate", params, name=name)


def report_json(report: ContaminationReport) -> bytes:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2)
