"""`minhash_dedup`: drop near-duplicate documents (MinHash + LSH), keeping the first of
each cluster in input order.

How a run decides, and why each piece is there:

1. **Tokens.** The text is lowercased, Unicode punctuation and symbols (categories P*
   and S*) are deleted, and what is left is split on whitespace: "It's a Dog!" and
   "its a dog" give the same tokens, so formatting noise never hides a copy. Shingles
   are word ``ngram``-grams (5 by default). A document with fewer words than
   ``ngram`` is one shingle of all its words; one with no words has no signature and
   is never a near-duplicate (``exact_dedup`` handles empty texts). Scripts written
   without spaces (Chinese, Japanese) give few, long "words", so this step finds
   little there.
2. **Signatures.** Each distinct word of a batch is hashed once (64 bits), the words
   of a shingle are combined and mixed to a 32-bit key ``x``; hash function ``i`` is
   ``((a_i·x + b_i) mod 2^64) >> 32`` with random 64-bit ``a_i``, ``b_i`` (seeded),
   Dietzfelbinger's multiply-add-shift: strongly universal on 32-bit keys and, unlike
   ``mod p`` with a 61-bit prime, exact in numpy's 64-bit arithmetic. All shingles of
   a batch of documents go through all ``num_perm`` functions as one numpy operation;
   the signature is the per-document minimum (``num_perm`` × uint32).
3. **LSH.** The first ``bands × rows`` values are cut into bands, each hashed to 8
   bytes; documents sharing a band hash are candidates. Bands and rows are given (e.g.
   datatrove's 14 × 8) or derived from ``threshold`` as datasketch's
   ``_optimal_param`` does: minimise the weighted false-positive and false-negative
   areas of the S-curve ``1 - (1 - s^r)^b``. datasketch weighs both 0.5; with
   ``verify`` a false candidate costs one comparison while a missed one is lost, so
   false negatives weigh 0.8 (12 × 10 at 0.8 and 128: candidate with probability 0.74
   at J = 0.8, 0.99 at 0.9, 0.01 at 0.5).
4. **Verify** (default on). A candidate pair is linked only if the share of equal
   signature values, the Jaccard estimate, is ≥ ``threshold``: band collisions alone
   also link pairs well below the threshold, so this is where precision comes from.
   Pairs checked: every pair in a bucket of up to ``WINDOW + 1`` documents; in larger
   buckets (thousands of copies of a boilerplate page) each document against the
   ``WINDOW`` before it and against the bucket's first, which keeps the work linear.
5. **Clusters.** Connected components over the linked pairs (union-find, done in bulk
   with numpy: hook each root under the smaller one, then compress paths). The root
   of a component is its smallest input position, which is the document kept; so the
   result depends only on input order, never on tasks or workers.

Memory: ``collect`` returns 8 bytes per band per document (12 bands at the defaults:
92 MiB per million documents) and writes the signatures (``num_perm`` × 4
bytes: 512 MB per million at 128) to files under ``ctx.scratch``; ``merge`` reads back
only the signatures of documents in candidate pairs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from gristmill.pipeline.spec import register
from gristmill.pipeline.step import GlobalStep, StepOutput
from gristmill.records.kinds import Kind

DROP_REASON = "near-duplicate (MinHash)"
ATTRIBUTE = "minhash"
ATTRIBUTE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("cluster", pa.string()),  # id of the record kept for the cluster
        ("cluster_size", pa.int64()),
        ("kept", pa.bool_()),
    ]
)
WINDOW = 32  # bucket neighbours checked per document (all pairs in buckets up to 33)
SIGNATURE_BATCH = 2048  # documents hashed together
CHUNK_VALUES = 1 << 20  # shingles × hash functions in one numpy operation (8 MiB)

_PUNCT = r"[\p{P}\p{S}]+"
_U64 = np.uint64
_MAX64 = np.iinfo(np.uint64).max
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_WORD_BASE = _U64(0xFF51AFD7ED558CCD)  # odd: combines the words of a shingle

U64Array = NDArray[np.uint64]
U32Array = NDArray[np.uint32]
I64Array = NDArray[np.int64]


# -- parameters ----------------------------------------------------------------------------


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The LSH S-curve: chance that two documents of this Jaccard share a band."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)


@cache
def lsh_params(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) with ``bands × rows ≤ num_perm`` minimising the weighted area of
    false positives (S-curve below ``threshold``) and false negatives (1 - S-curve
    above it): datasketch's ``_optimal_param``, integrated with Simpson's rule on a
    fine grid instead of scipy's ``quad``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be between 0 and 1")
    combos = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b = np.array([c[0] for c in combos], dtype=np.float64)[:, None]
    r = np.array([c[1] for c in combos], dtype=np.float64)[:, None]
    fp = _simpson(lambda s: 1.0 - (1.0 - s**r) ** b, 0.0, threshold)
    fn = _simpson(lambda s: (1.0 - s**r) ** b, threshold, 1.0)
    error = fp * false_positive_weight + fn * false_negative_weight
    best = int(np.argmin(error))  # first minimum, in datasketch's (b, r) order
    return combos[best]


def _simpson(f: Any, lo: float, hi: float, intervals: int = 2000) -> NDArray[np.float64]:
    s = np.linspace(lo, hi, intervals + 1)[None, :]
    weights = np.ones(intervals + 1)
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    values: NDArray[np.float64] = f(s)
    result: NDArray[np.float64] = values @ weights * (hi - lo) / (3 * intervals)
    return result


def splitmix64(seed: int, n: int) -> U64Array:
    """``n`` pseudo-random 64-bit values from ``seed`` (the splitmix64 sequence):
    plain integer arithmetic, so the same in every numpy version and process."""
    state = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
    state += _U64(seed & 0xFFFFFFFFFFFFFFFF)
    return _fmix64(state)


def hash_coefficients(num_perm: int, seed: int) -> tuple[U64Array, U64Array]:
    """The ``a`` (odd) and ``b`` of each hash function, fixed by the seed."""
    values = splitmix64(seed, 2 * num_perm)
    return values[0::2] | _U64(1), values[1::2]


# -- signatures ----------------------------------------------------------------------------


def tokenize(texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Lowercase, delete punctuation and symbols, split on whitespace (Arrow kernels,
    so a batch is tokenised in C++ without a Python loop)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    stripped = pc.replace_substring_regex(pc.utf8_lower(texts), _PUNCT, "")
    tokens: pa.ListArray = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(stripped))
    words = tokens.flatten()
    filled = pc.greater(pc.binary_length(words), 0)
    if words.null_count == 0 and pc.all(filled).as_py() is not False:
        return tokens
    # Arrow splits "" into [""]: rebuild the lists without empty words
    keep = filled.to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(tokens).fill_null(0).to_numpy()
    doc_of = np.repeat(np.arange(len(tokens)), lengths)
    counts = np.bincount(doc_of[keep], minlength=len(tokens))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    rebuilt: pa.ListArray = pa.ListArray.from_arrays(pa.array(offsets), words.filter(filled))
    return rebuilt


def _fmix64(h: U64Array) -> U64Array:
    """splitmix64's finaliser, in place: every input bit reaches every output bit."""
    h ^= h >> _U64(30)
    h *= _M1
    h ^= h >> _U64(27)
    h *= _M2
    h ^= h >> _U64(31)
    return h


_BYTE_WEIGHTS = splitmix64(0x6772697374, 4096)  # one random weight per byte position


def hash_strings(strings: pa.Array) -> U64Array:
    """A stable 64-bit hash of each string, for the whole array at once: the sum of
    its UTF-8 bytes times a random weight per position (cycling every 4096 bytes),
    then the length and a finaliser mixed in. The same word gets the same hash in
    every batch, task and process."""
    strings = strings.cast(pa.large_string())
    n = len(strings)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    buffers = strings.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[strings.offset : strings.offset + n + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)[first:last]
        if buffers[2] is not None
        else np.empty(0, dtype=np.uint8)
    )
    offsets = offsets - first
    lengths = np.diff(offsets)
    out = lengths.astype(np.uint64) * _GOLDEN
    filled = lengths > 0
    if data.size:
        position = np.arange(data.size) - np.repeat(offsets[:-1], lengths)
        contrib = (data.astype(np.uint64) + _U64(1)) * _BYTE_WEIGHTS[position & 4095]
        out[filled] ^= np.add.reduceat(contrib, offsets[:-1][filled])
    return _fmix64(out)


def shingle_keys(tokens: pa.ListArray, ngram: int) -> tuple[U64Array, I64Array]:
    """32-bit keys of every word ``ngram``-gram (in uint64) and the document (position
    in ``tokens``) each belongs to, ordered by document."""
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    lengths = np.diff(offsets)
    words = tokens.flatten()
    if len(words):
        encoded = pc.dictionary_encode(words)
        word_hashes = hash_strings(encoded.dictionary)[encoded.indices.to_numpy()]
    else:
        word_hashes = np.empty(0, dtype=np.uint64)
    total = len(word_hashes)
    keys: list[U64Array] = []
    docs: list[I64Array] = []
    if total >= ngram:
        count = total - ngram + 1
        h = word_hashes[:count].copy()
        for j in range(1, ngram):
            h *= _WORD_BASE
            h += word_hashes[j : count + j]
        doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)[:count]
        inside = np.arange(ngram, count + ngram) <= offsets[1:][doc]  # no doc boundary crossed
        keys.append(h[inside])
        docs.append(doc[inside])
    short = np.flatnonzero((lengths > 0) & (lengths < ngram))
    if short.size:  # one shingle of all the words
        starts, sizes = offsets[:-1][short], lengths[short]
        h = word_hashes[starts].copy()
        for j in range(1, ngram - 1):
            more = sizes > j
            h[more] = h[more] * _WORD_BASE + word_hashes[starts[more] + j]
        keys.append(h)
        docs.append(short.astype(np.int64))
    if not keys:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    key, doc_of = np.concatenate(keys), np.concatenate(docs)
    if len(keys) > 1:
        order = np.argsort(doc_of, kind="stable")
        key, doc_of = key[order], doc_of[order]
    return _fmix64(key) >> _U64(32), doc_of


def min_hashes(keys: U64Array, doc_of: I64Array, n_docs: int, a: U64Array, b: U64Array) -> U32Array:
    """(n_docs, num_perm) uint32 signatures: per document, the minimum of each hash
    function over its shingle keys; a document with no shingle gets 0xFFFFFFFF."""
    perms = len(a)
    mins = np.full((perms, n_docs), _MAX64, dtype=np.uint64)
    step = max(1, CHUNK_VALUES // perms)
    buffer = np.empty((perms, min(step, max(len(keys), 1))), dtype=np.uint64)
    for start in range(0, len(keys), step):
        x = keys[start : start + step]
        d = doc_of[start : start + step]
        values = buffer[:, : len(x)]
        np.multiply(a[:, None], x[None, :], out=values)
        values += b[:, None]
        # min over each document's run (the high 32 bits are monotone in the value)
        runs = np.flatnonzero(np.concatenate(([True], d[1:] != d[:-1])))
        run_min = np.minimum.reduceat(values, runs, axis=1)
        run_doc = d[runs]
        mins[:, run_doc] = np.minimum(mins[:, run_doc], run_min)
    return np.ascontiguousarray((mins >> _U64(32)).astype(np.uint32).T)


def signatures(
    texts: pa.Array | pa.ChunkedArray, num_perm: int = 128, ngram: int = 5, seed: int = 1
) -> U32Array:
    """MinHash signatures of documents, ``(len(texts), num_perm)`` uint32."""
    a, b = hash_coefficients(num_perm, seed)
    return _signatures(texts, ngram, a, b)


def _signatures(
    texts: pa.Array | pa.ChunkedArray, ngram: int, a: U64Array, b: U64Array
) -> U32Array:
    n = len(texts)
    out = np.empty((n, len(a)), dtype=np.uint32)
    for start in range(0, n, SIGNATURE_BATCH):
        batch = texts.slice(start, SIGNATURE_BATCH)
        keys, doc_of = shingle_keys(tokenize(batch), ngram)
        out[start : start + len(batch)] = min_hashes(keys, doc_of, len(batch), a, b)
    return out


def band_hashes(sig: U32Array, bands: int, rows: int) -> U64Array:
    """(bands, n_docs) 8-byte hashes of each band of ``rows`` signature values."""
    out = np.empty((bands, len(sig)), dtype=np.uint64)
    for band in range(bands):
        h = np.full(len(sig), (int(_GOLDEN) * (band + 1)) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
        for value in sig[:, band * rows : (band + 1) * rows].T:
            h ^= value.astype(np.uint64)
            h *= _M1
        out[band] = _fmix64(h)
    return out


def estimate_jaccard(sig_a: U32Array, sig_b: U32Array) -> NDArray[np.float64]:
    """Share of equal values: the MinHash estimate of Jaccard (rows of two arrays)."""
    result: NDArray[np.float64] = np.mean(sig_a == sig_b, axis=-1)
    return result


# -- candidates and clusters ---------------------------------------------------------------


def candidate_pairs(bands: Iterable[U64Array], valid: NDArray[np.bool_], window: int) -> I64Array:
    """Unique (i, j), i < j, of documents sharing a band hash, as an (n, 2) array;
    ``bands`` gives each band's hashes of every document (one band in memory at a time
    when it is a generator).

    In each bucket (documents in input order) a document is paired with the ``window``
    before it and with the bucket's first: every pair of a bucket of up to
    ``window + 1``, linear work in larger ones."""
    index = np.flatnonzero(valid).astype(np.int64)
    total = len(valid)
    codes: list[I64Array] = []
    if len(index) < 2:
        return np.empty((0, 2), dtype=np.int64)
    for band in bands:
        values = band[index]
        order = np.argsort(values, kind="stable")  # ties stay in input order
        values, members = values[order], index[order]
        same = values[1:] == values[:-1]
        in_bucket = np.concatenate(([False], same)) | np.concatenate((same, [False]))
        values, members = values[in_bucket], members[in_bucket]
        if not len(values):
            continue
        starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        sizes = np.diff(np.append(starts, len(values)))
        bucket = np.repeat(np.arange(len(starts)), sizes)
        end = (starts + sizes)[bucket]
        position = np.arange(len(values))
        for gap in range(1, min(window, int(sizes.max()) - 1) + 1):
            ok = np.flatnonzero(position + gap < end)
            codes.append(members[ok] * total + members[ok + gap])
        far = np.flatnonzero(position - starts[bucket] > window)
        if far.size:  # large buckets: also each against the first
            codes.append(members[starts[bucket[far]]] * total + members[far])
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    unique = np.unique(np.concatenate(codes))
    return np.stack((unique // total, unique % total), axis=1)


def components(pairs: I64Array) -> tuple[I64Array, I64Array]:
    """Connected components of the pairs' graph: (nodes, root of each), the root being
    the smallest node of its component. Union-find in bulk: each round hooks the larger
    root of every unjoined edge under the smaller, then compresses paths fully."""
    nodes = np.unique(pairs)
    left = np.searchsorted(nodes, pairs[:, 0])
    right = np.searchsorted(nodes, pairs[:, 1])
    label = np.arange(len(nodes))
    while True:
        lo, hi = label[left], label[right]
        apart = lo != hi
        if not apart.any():
            break
        lo, hi = lo[apart], hi[apart]
        np.minimum.at(label, np.maximum(lo, hi), np.minimum(lo, hi))
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        left, right = left[apart], right[apart]
    return nodes, nodes[label]


# -- the step ------------------------------------------------------------------------------


@dataclass
class TaskSketch:
    """What ``collect`` returns for one task: band hashes in memory, signatures and ids
    on disk (or in memory when the step runs without a scratch folder)."""

    rows: int
    bands: U64Array  # (bands, rows)
    empty: I64Array  # rows without words: never candidates
    signature_file: str | None = None  # .npy, (rows, num_perm) uint32
    id_file: str | None = None  # Arrow IPC file with the `id` column
    sig: U32Array | None = None
    ids: pa.Array | None = None

    def read_signatures(self, rows: I64Array) -> U32Array:
        if self.sig is not None:
            return self.sig[rows]
        assert self.signature_file is not None
        stored = np.load(self.signature_file, mmap_mode="r")
        return np.asarray(stored[rows])

    def read_ids(self, rows: I64Array) -> list[str]:
        if self.ids is not None:
            ids = self.ids
        else:
            assert self.id_file is not None
            with pa.memory_map(self.id_file) as source:
                ids = pa.ipc.open_file(source).read_all().column("id")
        taken: list[str] = ids.take(pa.array(rows)).to_pylist()
        return taken


@dataclass
class MinhashState:
    """What ``process`` needs: for each task, its rows in a cluster of two or more
    (sorted), their cluster and whether they are the one kept; per cluster, the kept
    record's id and the size. Documents not listed are alone and kept."""

    rows: dict[int, I64Array] = field(default_factory=dict)
    cluster: dict[int, I64Array] = field(default_factory=dict)
    kept: dict[int, NDArray[np.bool_]] = field(default_factory=dict)
    kept_id: list[str] = field(default_factory=list)
    size: I64Array = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    candidate_pairs: int = 0
    linked_pairs: int = 0


@register
class MinhashDedup(GlobalStep):
    name = "minhash_dedup"
    kinds = (Kind.DOCUMENT,)

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        ngram: int = 5,
        bands: int | None = None,
        rows: int | None = None,
        verify: bool = True,
        false_negative_weight: float | None = None,
        seed: int = 1,
        **rest: Any,
    ) -> None:
        if rest:
            raise TypeError(f"unknown parameters: {', '.join(rest)}")
        if not 0.0 < threshold < 1.0:
            raise TypeError("threshold must be between 0 and 1 (exclusive)")
        if num_perm < 2 or ngram < 1:
            raise TypeError("num_perm must be at least 2 and ngram at least 1")
        if (bands is None) != (rows is None):
            raise TypeError("give both bands and rows, or neither (derived from threshold)")
        if (
            bands is not None
            and rows is not None
            and not (min(bands, rows) >= 1 and bands * rows <= num_perm)
        ):
            raise TypeError(f"bands × rows must be between 1 and num_perm ({num_perm})")
        if false_negative_weight is not None and not 0.0 < false_negative_weight < 1.0:
            raise TypeError("false_negative_weight must be between 0 and 1 (exclusive)")
        super().__init__(
            threshold=threshold,
            num_perm=num_perm,
            ngram=ngram,
            bands=bands,
            rows=rows,
            verify=verify,
            false_negative_weight=false_negative_weight,
            seed=seed,
        )
        self.threshold = float(threshold)
        self.num_perm = int(num_perm)
        self.ngram = int(ngram)
        self.verify = bool(verify)
        # verified candidates cost a comparison, missed ones are lost: lean to recall
        fn_weight = false_negative_weight or (0.8 if self.verify else 0.5)
        self.bands, self.rows = (
            (int(bands), int(rows))
            if bands is not None and rows is not None
            else lsh_params(self.threshold, self.num_perm, 1.0 - fn_weight, fn_weight)
        )
        self.a, self.b = hash_coefficients(self.num_perm, int(seed))

    def signatures(self, texts: pa.Array | pa.ChunkedArray) -> U32Array:
        return _signatures(texts, self.ngram, self.a, self.b)

    def collect(self, table: pa.Table) -> TaskSketch:
        """Band hashes for the merge; signatures and ids to scratch files keyed by task
        (``merge`` only reads back those of candidate pairs)."""
        sig = self.signatures(table.column("text"))
        # a word-less document's signature is all-max; a real one is not (a shingle
        # would have to hash to 0xFFFFFFFF under every function)
        empty = np.flatnonzero((sig == np.iinfo(np.uint32).max).all(axis=1))
        sketch = TaskSketch(
            rows=table.num_rows,
            bands=band_hashes(sig, self.bands, self.rows),
            empty=empty.astype(np.int64),
        )
        ids = table.column("id").combine_chunks()
        if self.ctx.scratch is None:
            sketch.sig, sketch.ids = sig, ids
            return sketch
        folder = Path(self.ctx.scratch) / f"minhash-{self._digest()}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"task-{self.ctx.rank:05d}"
        sketch.id_file = str(stem.with_suffix(".ids.arrow"))
        if self.verify:  # only a verifying merge reads signatures back
            sketch.signature_file = str(stem.with_suffix(".sig.npy"))
            _atomic_save(Path(sketch.signature_file), lambda f: np.save(f, sig))
        _atomic_save(
            Path(sketch.id_file),
            lambda f: _write_ids(f, pa.table({"id": ids})),
        )
        return sketch

    def _digest(self) -> str:
        data = orjson.dumps(self.params(), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(data, digest_size=6).hexdigest()

    def merge(self, partials: list[Any]) -> MinhashState:
        """Candidates from shared band hashes (over every task, in input order), the
        verified ones joined into clusters; the first document of each is kept."""
        sketches: list[TaskSketch] = partials
        base = np.cumsum([0] + [s.rows for s in sketches]).astype(np.int64)
        total = int(base[-1])
        state = MinhashState()
        if total < 2:
            return state
        valid = np.ones(total, dtype=bool)
        for offset, sketch in zip(base, sketches, strict=False):
            valid[offset + sketch.empty] = False
        bands = (np.concatenate([s.bands[i] for s in sketches]) for i in range(self.bands))
        pairs = candidate_pairs(bands, valid, WINDOW if self.verify else 1)
        state.candidate_pairs = len(pairs)
        if self.verify and len(pairs):
            pairs = pairs[self._similar(pairs, sketches, base)]
        state.linked_pairs = len(pairs)
        if not len(pairs):
            return state
        nodes, roots = components(pairs)
        cluster_roots, cluster_of, sizes = np.unique(roots, return_inverse=True, return_counts=True)
        state.size = sizes.astype(np.int64)
        state.kept_id = _ids_at(cluster_roots, sketches, base)
        task_of = np.searchsorted(base, nodes, side="right") - 1
        for task in np.unique(task_of):
            mine = task_of == task
            state.rows[int(task)] = nodes[mine] - base[task]
            state.cluster[int(task)] = cluster_of[mine].astype(np.int64)
            state.kept[int(task)] = nodes[mine] == roots[mine]
        return state

    def _similar(
        self, pairs: I64Array, sketches: list[TaskSketch], base: I64Array
    ) -> NDArray[np.bool_]:
        """Which candidate pairs have an estimated Jaccard ≥ threshold."""
        docs = np.unique(pairs)
        sig = np.empty((len(docs), self.num_perm), dtype=np.uint32)
        task_of = np.searchsorted(base, docs, side="right") - 1
        for task in np.unique(task_of):
            where = np.flatnonzero(task_of == task)
            sig[where] = sketches[task].read_signatures(docs[where] - base[task])
        left = np.searchsorted(docs, pairs[:, 0])
        right = np.searchsorted(docs, pairs[:, 1])
        need = self.threshold * self.num_perm - 1e-9
        keep = np.empty(len(pairs), dtype=bool)
        step = max(1, CHUNK_VALUES // self.num_perm)
        for start in range(0, len(pairs), step):
            end = start + step
            equal = np.count_nonzero(sig[left[start:end]] == sig[right[start:end]], axis=1)
            keep[start:end] = equal >= need
        return keep

    def process(self, table: pa.Table) -> StepOutput:
        """Drop every clustered document but the first; the ``minhash`` attribute
        gives every document its cluster (the kept record's id), size and fate."""
        state: MinhashState = self.state or MinhashState()
        task, offset = self.ctx.rank, self.ctx.row_offset
        n = table.num_rows
        ids = table.column("id").to_pylist()
        cluster: list[str] = list(ids)
        size = np.ones(n, dtype=np.int64)
        kept = np.ones(n, dtype=bool)
        clusters = 0
        rows = state.rows.get(task)
        if rows is not None and n:
            lo, hi = np.searchsorted(rows, [offset, offset + n])
            local = rows[lo:hi] - offset
            which = state.cluster[task][lo:hi]
            kept[local] = state.kept[task][lo:hi]
            size[local] = state.size[which]
            for row, c in zip(local.tolist(), which.tolist(), strict=True):
                cluster[row] = state.kept_id[c]
            clusters = int(np.count_nonzero(state.kept[task][lo:hi]))
        reasons: list[str | None] = [None if k else DROP_REASON for k in kept.tolist()]
        attribute = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "cluster": pa.array(cluster, pa.string()),
                "cluster_size": pa.array(size, pa.int64()),
                "kept": pa.array(kept, pa.bool_()),
            },
            schema=ATTRIBUTE_SCHEMA,
        )
        return StepOutput(
            table,
            reasons,
            attributes={ATTRIBUTE: attribute},
            counters={"near-duplicate clusters": clusters} if clusters else {},
        )


def _ids_at(globals_: I64Array, sketches: list[TaskSketch], base: I64Array) -> list[str]:
    """The ids of documents at these (sorted) input positions."""
    task_of = np.searchsorted(base, globals_, side="right") - 1
    out: list[str] = []
    for task in np.unique(task_of):  # ascending, like the positions
        out.extend(sketches[task].read_ids(globals_[task_of == task] - base[task]))
    return out


def _write_ids(sink: Any, table: pa.Table) -> None:
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _atomic_save(path: Path, write: Any) -> None:
    """Write to a temporary name, then rename: a task redone after a crash never
    reads a half-written file."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
