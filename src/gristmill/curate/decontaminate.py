"""`decontaminate`: drop (or tag) training records that contain benchmark text.

- decontaminate: {eval: gsm8k}
- decontaminate: {eval: [gsm8k, mmlu@2], ngram: 13, min_overlap: 1, mode: tag}

The method is GPT-3's (Brown et al. 2020, appendix C) as lm-evaluation-harness
implements it (``lm_eval/decontamination/janitor.py``): text is lowercased, punctuation
is deleted (not replaced by a space, so "Janet's" and "Janets" agree), it is split on
white space, and two texts collide when they share a word 13-gram. Punctuation here is
any character that is neither a word character nor white space, so curly quotes and
dashes count too, and an underscore is punctuation.

What is indexed, per eval item (``fields``, default input, references and choices):

- the input: its 13-grams; an input shorter than 13 words is one n-gram of its whole
  normalized text (GPT-3: "or that overlap with the whole example when it is shorter
  than 13-grams"), unless it has fewer than ``min_words`` words (default 3): "yes" or
  "42" as a whole example would collide with every document.
- each reference and choice: its 13-grams when it has at least 13 words; shorter ones
  (a GSM8K final answer "18", an MMLU choice "Paris") are not indexed, for the same
  reason. ``meta.KEY`` names a text in the item's meta (``meta.solution``: GSM8K's
  worked answer), indexed like a reference.

A training record (document: title and text; conversation: system prompt and every
message, each on its own, so no n-gram spans two messages) is contaminated by an eval
item when it contains at least ``min_overlap`` of the item's distinct n-grams (all of
them if the item has fewer); ``mode: drop`` drops it with the reason
``contaminated: <eval dataset>`` (the first one hit, in the order given), ``mode: tag``
keeps it. Both write the ``contamination`` attribute: the record id, the eval versions
hit (``gsm8k@1``), the colliding eval item ids and the number of distinct colliding
n-grams; and the counters ``records contaminated`` and ``eval item hits`` (record and
item pairs: an item hit by two records counts twice; :func:`find_contamination` and
:func:`items_hit` list the distinct items, for a report).

The index is built once per worker in :meth:`Decontaminate.setup`: tokens of the eval
texts get ids, each n-gram a 64-bit hash of its token ids; a training batch is scanned
with NumPy, one vectorised pass per n-gram length, so only the rare hits reach Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import Step, StepOutput
from gristmill.records.kinds import Kind

PUNCTUATION = re.compile(r"[^\w\s]|_")
DEFAULT_FIELDS = ("input", "references", "choices")
MODES = ("drop", "tag")

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
_MULT = np.uint64(0x100000001B3)  # odd multiplier of the polynomial window hash


def normalize(text: str) -> list[str]:
    """Lowercase, delete punctuation, split on white space (the janitor's way)."""
    return PUNCTUATION.sub("", text.lower()).split()


def _mix(ids: I64) -> U64:
    """SplitMix64 of each token id: random-looking 64-bit values, so a polynomial of
    them collides with chance 2^-64 (small consecutive ids would make that weaker)."""
    z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Flat:
    """Token ids of many segments laid end to end, and where each segment starts, so
    the windows of every length can be hashed for all segments at once."""

    def __init__(self, ids: I64, lengths: I64) -> None:
        total = int(lengths.sum())
        self.lengths = lengths
        self.size = total
        self.values = _mix(ids)
        self.segment = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        starts = np.cumsum(lengths) - lengths
        self.offset = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
        self.room = np.repeat(lengths, lengths) - self.offset  # tokens left in the segment
        self.unknown = np.concatenate(([0], np.cumsum(ids == 0)))  # running count of id 0

    @classmethod
    def of(cls, tokens: list[str], lengths: list[int], vocab: dict[str, int]) -> _Flat:
        """From the tokens of all segments end to end; tokens not in ``vocab`` get 0."""
        ids = np.fromiter(map(vocab.get, tokens, repeat(0)), dtype=np.int64, count=len(tokens))
        return cls(ids, np.asarray(lengths, dtype=np.int64))

    def windows(self, lengths: Iterable[int]) -> Iterator[tuple[int, I64, U64]]:
        """For each k of ``lengths`` (ascending): the start positions of k-token windows
        that stay inside one segment and hold only known tokens, and their hashes."""
        wanted = set(lengths)
        h = np.zeros(self.size, dtype=np.uint64)
        for k in range(1, max(wanted, default=0) + 1):
            n = self.size - k + 1
            if n <= 0:
                return
            h = h[:n] * _MULT + self.values[k - 1 : k - 1 + n]  # hash of tokens i .. i+k-1
            if k in wanted:
                ok = (self.room[:n] >= k) & (self.unknown[k : k + n] == self.unknown[:n])
                yield k, np.flatnonzero(ok), h[ok]


@dataclass
class RecordHit:
    """One contaminated training record."""

    evals: list[str]  # eval version refs hit, in the order the step was given them
    eval_items: list[str]  # ids of the eval items hit
    ngrams: int  # distinct colliding n-grams (with any indexed eval text)


@dataclass
class Contamination:
    """A training record and the eval items it contains (what :func:`find_contamination`
    returns; the step writes the same as its ``contamination`` attribute)."""

    record_id: str
    evals: list[str]
    eval_items: list[str]
    ngrams: int


@dataclass
class _Grams:
    """The n-grams of one length: sorted distinct hashes, and for the i-th the eval
    items ``items[starts[i]:starts[i + 1]]`` that hold it."""

    keys: U64
    starts: I64
    items: I64

    @classmethod
    def of(cls, hashes: U64, items: I64) -> _Grams:
        order = np.lexsort((items, hashes))
        hashes, items = hashes[order], items[order]
        fresh = np.ones(len(hashes), dtype=bool)  # drop repeated (hash, item) pairs
        fresh[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
        hashes, items = hashes[fresh], items[fresh]
        keys, first = np.unique(hashes, return_index=True)
        return cls(keys, np.append(first, len(items)).astype(np.int64), items)

    def find(self, hashes: U64) -> I64:
        """Index into ``keys`` of each hash, or -1 where it is not there."""
        if not len(self.keys):
            return np.full(len(hashes), -1, dtype=np.int64)
        where = np.minimum(np.searchsorted(self.keys, hashes), len(self.keys) - 1)
        return np.where(self.keys[where] == hashes, where, -1).astype(np.int64)


@dataclass
class EvalIndex:
    """The n-grams of one or more eval datasets, per n-gram length."""

    ngram: int
    min_overlap: int = 1
    refs: list[str] = field(default_factory=list)  # eval version refs
    names: list[str] = field(default_factory=list)  # their dataset names (for reasons)
    item_ids: list[str] = field(default_factory=list)
    item_eval: list[int] = field(default_factory=list)  # index into refs
    item_ngrams: list[int] = field(default_factory=list)  # distinct n-grams per item
    vocab: dict[str, int] = field(default_factory=dict)  # token → id (0: in no eval text)
    grams: dict[int, _Grams] = field(default_factory=dict)  # by n-gram length

    @classmethod
    def build(
        cls,
        evals: Sequence[Any],
        ngram: int = 13,
        min_overlap: int = 1,
        fields: Sequence[str] = DEFAULT_FIELDS,
        min_words: int = 3,
    ) -> EvalIndex:
        """Index eval versions (``gristmill.store.Version`` of kind eval_item)."""
        index = cls(ngram=ngram, min_overlap=min_overlap)
        tokens: list[str] = []
        lengths: list[int] = []
        owner: list[int] = []  # item of each segment
        whole: list[bool] = []  # a short segment that counts as one n-gram
        for number, version in enumerate(evals):
            if version.kind != Kind.EVAL_ITEM:
                raise ValueError(
                    f"decontaminate: {version.ref} holds {version.kind} records, not eval_item"
                )
            index.refs.append(version.ref)
            index.names.append(version.name)
            for row in version.iter_rows(columns=["id", "input", "references", "choices", "meta"]):
                item = len(index.item_ids)
                index.item_ids.append(row["id"])
                index.item_eval.append(number)
                for name, text in _eval_texts(row, fields):
                    words = normalize(text)
                    short = len(words) < ngram
                    if short and (name != "input" or len(words) < min_words):
                        continue
                    tokens.extend(words)
                    lengths.append(len(words))
                    owner.append(item)
                    whole.append(short)
        index.vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens), start=1)}
        flat = _Flat.of(tokens, lengths, index.vocab)
        owners = np.asarray(owner, dtype=np.int64)
        is_whole = np.asarray(whole, dtype=bool)
        counts = np.zeros(len(index.item_ids), dtype=np.int64)
        for k, starts, hashes in flat.windows(range(1, ngram + 1)):
            seg = flat.segment[starts]
            if k == ngram:
                keep = ~is_whole[seg]
            else:
                keep = is_whole[seg] & (flat.lengths[seg] == k) & (flat.offset[starts] == 0)
            if keep.any():
                grams = _Grams.of(hashes[keep], owners[seg[keep]])
                index.grams[k] = grams
                counts += np.bincount(grams.items, minlength=len(counts))
        index.item_ngrams = counts.tolist()
        return index

    @property
    def ngram_count(self) -> int:
        return sum(len(g.keys) for g in self.grams.values())

    def scan(self, records: Sequence[Sequence[str | None]]) -> list[RecordHit | None]:
        """For each record (its texts), the eval items it is contaminated by, or None."""
        tokens: list[str] = []
        lengths: list[int] = []
        owner: list[int] = []
        for number, texts in enumerate(records):
            for text in texts:
                if text:
                    words = normalize(text)
                    tokens.extend(words)
                    lengths.append(len(words))
                    owner.append(number)
        out: list[RecordHit | None] = [None] * len(records)
        if not self.grams or not tokens:
            return out
        flat = _Flat.of(tokens, lengths, self.vocab)
        owners = np.asarray(owner, dtype=np.int64)
        found: dict[int, set[tuple[int, int]]] = {}  # record → colliding (k, key index)
        for k, starts, hashes in flat.windows(self.grams):
            where = self.grams[k].find(hashes)
            hit = where >= 0
            records_hit = owners[flat.segment[starts[hit]]].tolist()
            for record, key in zip(records_hit, where[hit].tolist(), strict=True):
                found.setdefault(record, set()).add((k, key))
        for record, keys in found.items():
            per_item: dict[int, int] = {}
            for k, key in keys:
                grams = self.grams[k]
                for item in grams.items[grams.starts[key] : grams.starts[key + 1]].tolist():
                    per_item[item] = per_item.get(item, 0) + 1
            items = sorted(
                (i for i, n in per_item.items() if n >= min(self.min_overlap, self.item_ngrams[i])),
                key=lambda i: (self.item_eval[i], self.item_ids[i]),
            )
            if items:
                evals = sorted({self.item_eval[i] for i in items})
                out[record] = RecordHit(
                    [self.refs[e] for e in evals], [self.item_ids[i] for i in items], len(keys)
                )
        return out


def _eval_texts(row: dict[str, Any], fields: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(field, text) pairs of an eval item row, for the fields chosen."""
    meta: dict[str, Any] | None = None
    for name in fields:
        if name == "input":
            if row.get("input"):
                yield name, row["input"]
        elif name in ("references", "choices"):
            for text in row.get(name) or []:
                if text:
                    yield name, text
        elif name.startswith("meta."):
            if meta is None:
                meta = orjson.loads(row["meta"]) if row.get("meta") else {}
            value = meta.get(name[5:]) if isinstance(meta, dict) else None
            if isinstance(value, str) and value:
                yield name, value


def record_texts(kind: Kind, table: pa.Table) -> list[list[str | None]]:
    """The texts of each record that are checked: a document's title and text, a
    conversation's system prompt and each message's content."""
    if kind == Kind.DOCUMENT:
        titles = table.column("title").to_pylist()
        texts = table.column("text").to_pylist()
        return [[title, text] for title, text in zip(titles, texts, strict=True)]
    systems = table.column("system").to_pylist()
    conversations = table.column("messages").to_pylist()
    return [
        [system, *(m.get("content") for m in messages or [])]
        for system, messages in zip(systems, conversations, strict=True)
    ]


def check_fields(fields: Iterable[str]) -> list[str]:
    out = list(fields)
    bad = [f for f in out if f not in DEFAULT_FIELDS and not (f.startswith("meta.") and f[5:])]
    if bad or not out:
        raise TypeError(
            f"fields must name input, references, choices or meta.KEY; got {out or 'nothing'}"
        )
    return out


ATTRIBUTE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("eval", pa.list_(pa.string())),
        ("eval_items", pa.list_(pa.string())),
        ("ngrams", pa.int64()),
    ]
)


@register
class Decontaminate(Step):
    """Drop or tag records sharing word 13-grams with eval items (module doc)."""

    name = "decontaminate"
    kinds = (Kind.DOCUMENT, Kind.CONVERSATION)

    def __init__(
        self,
        eval: str | list[str],
        ngram: int = 13,
        min_overlap: int = 1,
        mode: str = "drop",
        fields: list[str] | None = None,
        min_words: int = 3,
        **rest: Any,
    ) -> None:
        if rest:
            raise TypeError(f"unknown parameters: {', '.join(rest)}")
        refs = [eval] if isinstance(eval, str) else list(eval)
        if not refs or not all(isinstance(r, str) and r for r in refs):
            raise TypeError("eval must name an eval_item dataset or a list of them")
        if mode not in MODES:
            raise TypeError(f"mode must be drop or tag, not {mode!r}")
        if ngram < 1 or min_overlap < 1 or min_words < 1:
            raise TypeError("ngram, min_overlap and min_words must be at least 1")
        chosen = check_fields(fields or DEFAULT_FIELDS)
        super().__init__(
            eval=eval,
            ngram=ngram,
            min_overlap=min_overlap,
            mode=mode,
            fields=fields,
            min_words=min_words,
        )
        self.refs = refs
        self.ngram = ngram
        self.min_overlap = min_overlap
        self.mode = mode
        self.fields = chosen
        self.min_words = min_words
        self.index: EvalIndex | None = None

    def setup(self) -> None:
        workspace = self.ctx.workspace
        if workspace is None:
            raise ValueError("decontaminate needs the workspace that holds the eval sets")
        versions = [workspace.version(ref) for ref in self.refs]
        self.index = EvalIndex.build(
            versions, self.ngram, self.min_overlap, self.fields, self.min_words
        )

    def process(self, table: pa.Table) -> StepOutput:
        assert self.index is not None, "setup() builds the index"
        hits = self.index.scan(record_texts(self.ctx.kind, table))
        ids = table.column("id").to_pylist()
        attr: dict[str, list[Any]] = {name: [] for name in ATTRIBUTE_SCHEMA.names}
        drop: list[str | None] = []
        item_hits = 0
        names = dict(zip(self.index.refs, self.index.names, strict=True))
        for record_id, hit in zip(ids, hits, strict=True):
            if hit is None:
                drop.append(None)
                continue
            drop.append(f"contaminated: {names[hit.evals[0]]}")
            item_hits += len(hit.eval_items)
            attr["id"].append(record_id)
            attr["eval"].append(hit.evals)
            attr["eval_items"].append(hit.eval_items)
            attr["ngrams"].append(hit.ngrams)
        contaminated = len(attr["id"])
        counters = (
            {"records contaminated": contaminated, "eval item hits": item_hits}
            if contaminated
            else {}
        )
        return StepOutput(
            table,
            drop if self.mode == "drop" else None,
            attributes=(
                {"contamination": pa.table(attr, schema=ATTRIBUTE_SCHEMA)} if contaminated else {}
            ),
            counters=counters,
        )


def find_contamination(
    train: Any,
    evals: Any,
    ngram: int = 13,
    min_overlap: int = 1,
    fields: Sequence[str] = DEFAULT_FIELDS,
    min_words: int = 3,
    batch_rows: int = 4096,
) -> list[Contamination]:
    """The records of ``train`` (a document or conversation ``Version``) that contain
    eval items of ``evals`` (an eval_item ``Version`` or a list of them), in the
    training set's order; the same rule as the step (for ``gristmill eval`` reports)."""
    versions = list(evals) if isinstance(evals, list | tuple) else [evals]
    index = EvalIndex.build(versions, ngram, min_overlap, check_fields(fields), min_words)
    kind = Kind(train.kind)
    if kind not in (Kind.DOCUMENT, Kind.CONVERSATION):
        raise ValueError(
            f"{train.ref} holds {kind} records; decontamination checks documents and conversations"
        )
    columns = ["id", "title", "text"] if kind == Kind.DOCUMENT else ["id", "system", "messages"]
    out: list[Contamination] = []
    for batch in train.iter_batches(columns=columns, batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        hits = index.scan(record_texts(kind, table))
        for record_id, hit in zip(table.column("id").to_pylist(), hits, strict=True):
            if hit is not None:
                out.append(Contamination(record_id, hit.evals, hit.eval_items, hit.ngrams))
    return out


def items_hit(found: Iterable[Contamination]) -> dict[str, list[str]]:
    """Eval item id → ids of the training records that contain it (for a report of
    which eval items collide)."""
    out: dict[str, list[str]] = {}
    for c in found:
        for item in c.eval_items:
            out.setdefault(item, []).append(c.record_id)
    return out
