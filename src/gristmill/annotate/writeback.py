"""Aggregated answers back into the dataset: an ``annotations`` attribute on the
source version, and a new version (operation ``annotate``) whose records carry the
answers where their kind has a place, so ``gristmill export`` makes SFT, DPO and KTO
files from it.

Where each answer lands:

- preference records: a ranking question sets ``candidates[i].rank``; a preference
  question sets ranks 1/2 (a tie: 1/1) and, with a reason, the record's ``rationale``;
  per-response ratings become ``candidates[i].ratings`` with ``rater="human:aggregate"``
  (earlier aggregate ratings on the same dimension are replaced, others kept) and a
  ``scales`` entry per dimension;
- a label question whose labels say good/bad (``KTO_WORDS``, or ``kto_labels``) sets
  ``candidates[0].label`` on a preference record with one candidate (KTO rows);
- conversations: a text question's answer becomes the final assistant turn (replacing
  the last assistant message, whose text is kept in ``meta["original_responses"]``, or
  appended after a final user turn);
- everything (and every kind) also lands in ``meta``: ``labels`` (label and
  multi_label), ``ratings``, ``rankings``, ``preferences``, ``spans``, ``texts``, keyed
  by question name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from gristmill.annotate.qc_values import QCError, question_kind, question_name
from gristmill.records.arrow import to_row
from gristmill.records.kinds import (
    Conversation,
    Message,
    Preference,
    Rating,
    RecordBase,
    ScaleSpec,
)
from gristmill.store import Version, VersionWriter, Workspace

AGGREGATE_RATER = "human:aggregate"
ATTRIBUTE = "annotations"
ANSWERS_ATTRIBUTE = "annotator_answers"
KTO_WORDS: dict[str, bool] = {
    "good": True,
    "bad": False,
    "desirable": True,
    "undesirable": False,
    "acceptable": True,
    "unacceptable": False,
    "thumbs_up": True,
    "thumbs_down": False,
}
META_KEYS = {
    "label": "labels",
    "multi_label": "labels",
    "rating": "ratings",
    "ranking": "rankings",
    "preference": "preferences",
    "spans": "spans",
    "text": "texts",
}
BATCH = 2048


def kto_mapping(
    question: dict[str, Any], explicit: dict[str, dict[str, bool]] | None = None
) -> dict[str, bool] | None:
    """label → desirable for a label question that says good/bad: the mapping given
    for it in ``explicit``, else its labels when every one is a ``KTO_WORDS`` word."""
    name = question_name(question)
    if explicit and name in explicit:
        return dict(explicit[name])
    if question_kind(question) != "label":
        return None
    labels = [str(label).strip().lower() for label in question.get("labels") or []]
    if labels and all(label in KTO_WORDS for label in labels):
        values = {KTO_WORDS[label] for label in labels}
        if values == {True, False}:
            return {
                orig: KTO_WORDS[low] for orig, low in zip(question["labels"], labels, strict=True)
            }
    return None


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def annotations_table(
    questions: list[dict[str, Any]], aggregated: dict[str, pd.DataFrame], ids: list[str]
) -> pa.Table:
    """The attribute: ``id``, then per question ``<q>`` (the value as JSON text),
    ``<q>_confidence`` and ``<q>_method``; null where a record has no answer."""
    columns: dict[str, list[Any]] = {"id": ids}
    position = {rid: i for i, rid in enumerate(ids)}
    schema = [pa.field("id", pa.string())]
    for question in questions:
        name = question_name(question)
        values: list[str | None] = [None] * len(ids)
        conf: list[float | None] = [None] * len(ids)
        method: list[str | None] = [None] * len(ids)
        frame = aggregated.get(name)
        if frame is not None:
            for rid, value, confidence, how in frame[
                ["record_id", "value", "confidence", "method"]
            ].itertuples(index=False):
                i = position[str(rid)]
                values[i] = _json(value)
                conf[i] = None if confidence is None or pd.isna(confidence) else float(confidence)
                method[i] = str(how)
        columns[name], columns[f"{name}_confidence"], columns[f"{name}_method"] = (
            values,
            conf,
            method,
        )
        schema += [
            pa.field(name, pa.string()),
            pa.field(f"{name}_confidence", pa.float64()),
            pa.field(f"{name}_method", pa.string()),
        ]
    return pa.table(columns, schema=pa.schema(schema))


class _Applier:
    """Puts each question's aggregated value into one record, counting what went where
    (the counts become the new version's stats)."""

    def __init__(
        self,
        questions: list[dict[str, Any]],
        aggregated: dict[str, pd.DataFrame],
        kto_labels: dict[str, dict[str, bool]] | None,
    ) -> None:
        self.questions = questions
        self.values: dict[str, dict[str, Any]] = {}
        for question in questions:
            frame = aggregated.get(question_name(question))
            if frame is not None and not frame.empty:
                self.values[question_name(question)] = {
                    str(r): v for r, v in zip(frame["record_id"], frame["value"], strict=True)
                }
        self.kto = {question_name(q): kto_mapping(q, kto_labels) for q in questions}
        self.counts: Counter[str] = Counter()
        ranking = [
            q
            for q in questions
            if question_kind(q) in ("ranking", "preference") and question_name(q) in self.values
        ]
        if len(ranking) > 1:
            names = ", ".join(question_name(q) for q in ranking)
            raise QCError(
                f"questions {names} would all set candidate ranks; write back one of them"
            )

    def apply(self, record: RecordBase) -> bool:
        touched = False
        for question in self.questions:
            name = question_name(question)
            value = self.values.get(name, {}).get(record.id)
            if value is None:
                continue
            touched = True
            kind = question_kind(question)
            record.meta.setdefault(META_KEYS[kind], {})[name] = value
            self.counts[f"{name}: meta"] += 1
            if isinstance(record, Preference):
                self._preference(record, question, kind, value)
            elif isinstance(record, Conversation) and kind == "text":
                self._conversation_text(record, name, str(value))
        if touched:
            self.counts["records annotated"] += 1
        return touched

    def _preference(
        self, record: Preference, question: dict[str, Any], kind: str, value: Any
    ) -> None:
        name = question_name(question)
        n = len(record.candidates)
        if kind == "ranking":
            if len(value) != n:
                raise QCError(
                    f"record {record.id!r}: question {name!r} ranks {len(value)} responses "
                    f"but the record has {n} candidates"
                )
            for candidate, rank in zip(record.candidates, value, strict=True):
                candidate.rank = int(rank)
            self.counts[f"{name}: candidate ranks"] += 1
        elif kind == "preference":
            if n != 2:
                raise QCError(
                    f"record {record.id!r}: preference question {name!r} needs exactly two "
                    f"candidates, the record has {n}"
                )
            ranks = {"a": (1, 2), "b": (2, 1), "tie": (1, 1)}[value["choice"]]
            for candidate, rank in zip(record.candidates, ranks, strict=True):
                candidate.rank = rank
            if value.get("reason"):
                record.rationale = str(value["reason"])
            self.counts[f"{name}: candidate ranks"] += 1
        elif kind == "rating" and question.get("target") == "each_response":
            self._ratings(record, question, value)
        elif kind == "label":
            mapping = self.kto[name]
            if mapping is None or str(value) not in mapping:
                return
            if n != 1:
                self.counts[f"{name}: no KTO label (record has {n} candidates, not 1)"] += 1
                return
            record.candidates[0].label = mapping[str(value)]
            self.counts[f"{name}: candidate KTO label"] += 1

    def _ratings(self, record: Preference, question: dict[str, Any], value: Any) -> None:
        name = question_name(question)
        if len(value) != len(record.candidates):
            raise QCError(
                f"record {record.id!r}: question {name!r} rates {len(value)} responses but "
                f"the record has {len(record.candidates)} candidates"
            )
        for candidate, scores in zip(record.candidates, value, strict=True):
            candidate.ratings = [
                r
                for r in candidate.ratings
                if not (r.rater == AGGREGATE_RATER and r.dimension in scores)
            ] + [
                Rating(dimension=dim, value=float(v), rater=AGGREGATE_RATER)
                for dim, v in scores.items()
            ]
        known = {s.dimension for s in record.scales}
        for dim in question.get("dimensions") or []:
            if dim["name"] not in known:
                record.scales.append(
                    ScaleSpec(dimension=dim["name"], min=dim.get("min", 1), max=dim.get("max", 7))
                )
        self.counts[f"{name}: candidate ratings"] += 1

    def _conversation_text(self, record: Conversation, name: str, text: str) -> None:
        last = record.messages[-1]
        if last.role == "assistant":
            record.meta.setdefault("original_responses", {})[name] = last.content
            record.messages[-1] = last.model_copy(update={"content": text})
            self.counts[f"{name}: replaced the final assistant turn"] += 1
        elif last.role == "user":
            record.messages.append(Message(role="assistant", content=text))
            self.counts[f"{name}: appended an assistant turn"] += 1


def _answers_table(answers: pd.DataFrame) -> pa.Table:
    """Every annotator's answers per record as JSON: [{question, annotator, value}]."""
    need = {"record_id", "annotator", "question", "value"}
    if not need <= set(answers.columns):
        raise QCError(f"annotator_answers need columns {', '.join(sorted(need))}")
    per_record: dict[str, list[dict[str, Any]]] = {}
    for rid, ann, q, value in answers[["record_id", "annotator", "question", "value"]].itertuples(
        index=False
    ):
        per_record.setdefault(str(rid), []).append(
            {"question": str(q), "annotator": str(ann), "value": value}
        )
    ids = list(per_record)
    return pa.table({"id": ids, "answers": [_json(per_record[i]) for i in ids]})


def write_back(
    workspace: Workspace,
    version_ref: str,
    project: str,
    questions: list[dict[str, Any]],
    aggregated: dict[str, pd.DataFrame],
    *,
    annotator_answers: pd.DataFrame | None = None,
    kto_labels: dict[str, dict[str, bool]] | None = None,
    only_annotated: bool = False,
    output: str | None = None,
) -> Version:
    """Attach the aggregated answers to ``version_ref`` (attribute ``annotations``,
    replacing an earlier one) and write the annotated records as a new version of the
    same dataset (or ``output``), parent ``version_ref``. ``only_annotated`` keeps just
    the records that got an answer. The source's attributes are copied to the new
    version; ``annotator_answers`` (with a ``question`` column) is stored beside them
    as ``annotator_answers``."""
    source = workspace.version(version_ref)
    ids = source.table(columns=["id"]).column("id").to_pylist()
    known = set(ids)
    names = [question_name(q) for q in questions]
    for name in aggregated:
        if name not in names:
            raise QCError(f"aggregated answers for {name!r}, which is not among the questions")
    for name, frame in aggregated.items():
        unknown = sorted({str(r) for r in frame["record_id"]} - known)
        if unknown:
            raise QCError(
                f"question {name!r}: {len(unknown)} aggregated record(s) are not in "
                f"{source.ref}, e.g. {', '.join(unknown[:3])}"
            )
    annotated = sorted({str(r) for f in aggregated.values() for r in f["record_id"]})
    methods = {
        name: sorted({str(m) for m in frame["method"]}) for name, frame in aggregated.items()
    }
    params = {"project": project, "input": source.ref, "methods": methods}
    table = annotations_table(questions, aggregated, annotated)

    applier = _Applier(questions, aggregated, kto_labels)
    with VersionWriter(
        workspace,
        output or source.name,
        source.kind,
        operation="annotate",
        params=params,
        parent=source.ref,
    ) as writer:
        rows: list[dict[str, Any]] = []
        kept = 0
        for record in source.iter_records():
            if applier.apply(record) or not only_annotated:
                rows.append(to_row(record))
                kept += 1
            if len(rows) >= BATCH:
                writer.write_rows(rows)
                rows = []
        writer.write_rows(rows)
        writer.stats = {
            "records_in": source.row_count,
            "records_out": kept,
            "applied": dict(sorted(applier.counts.items())),
        }
    version = writer.version
    assert version is not None
    # the attribute goes on the source only once the new version exists, so a refused
    # write-back changes nothing
    source.write_attribute(ATTRIBUTE, table, operation="annotate", params=params, overwrite=True)
    _copy_attributes(source, version, keep=None if not only_annotated else set(annotated))
    if annotator_answers is not None:
        version.write_attribute(
            ANSWERS_ATTRIBUTE,
            _answers_table(annotator_answers),
            operation="annotate",
            params={"project": project},
            overwrite=True,
        )
    return version


def _copy_attributes(source: Version, target: Version, keep: set[str] | None) -> None:
    ids = None if keep is None else pa.array(sorted(keep), pa.string())
    target.copy_attributes_from(source, ids, overwrite=True)
