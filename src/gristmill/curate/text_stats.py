"""Text statistics the heuristic filters share: one word split per document.

The Gopher, C4 and FineWeb rules all look at the same words and lines. Splitting a
document into words is the costly part, so it is done once: :func:`doc_stats` keeps
the per-document result (packed per-word codes) in a small two-generation cache keyed
by the text itself, and every filter that sees the same text in the same worker
reuses it. A step that rewrites the text (``c4``) simply produces a new key.

Words come from :data:`WORD_RE`, a regular expression that approximates the spaCy
blank-English tokenizer datatrove uses for English (older datatrove versions used
NLTK's punkt data, which cannot be downloaded here): punctuation marks are tokens of
their own, ``...`` and ``--`` stay whole, URLs, e-mail addresses, dotted acronyms
(``U.S.``, ``e.g.``), common abbreviations (``Mr.``) and numbers with separators
(``3.5``, ``1,000``) stay one token. It does not split contractions (spaCy makes
``do`` + ``n't`` of ``don't``) nor units glued to numbers (``5km``). docs/curate.md
gives the measured agreement of the filter decisions with datatrove's.

The punctuation tables are datatrove's (``datatrove/utils/text.py``, Apache-2.0), so
"symbol-only word" and "ends in terminal punctuation" mean exactly what they mean
there.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# --- datatrove's punctuation tables --------------------------------------------------------

PUNCTUATION = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(chr(x) for a, b in ((0, 9), (11, 13), (13, 32), (127, 160)) for x in range(a, b))
)
TERMINAL_PUNCTUATION = frozenset(
    "᪩？⁈𑩂．꩞𑅃﹗𑂾\u1b7d፧𑅂꡶꘎⁉࠾᪨𑊩𑱂᱿𖩮᥅\U00011f43\U00011f44﹒𑈹𑈸።܂؞꛳\U00010f88𑗍𐩖𑙂\u061d꩟᠉\u1b7e"
    "𑗗᰼𑻸؟𑪜꧉𑗉𐽙𖫵𖬷܀꓿᜵𑗏𑁇𑗓𑥄៖𑥆𑗑𑗒꯫۔𐩗\U00010f86꡷\u2e54｡៕߹⸮.𑇅࠹𛲟꫰꤯𐽗᭞𑜼፨𑃁꣏𑇟𖬸𑪛𑜾࠷𝪈?𑃀𑗃！"
    "։꣎॥𑗖᭛᠃!၊𖺘⁇𑗌𑑋𖭄᭟𑅁𑙁⸼꩝𑗋。꧈꫱𑜽𐽖𑂿᙮។꛷\U00010f89៚᥄𑗕𑗎᪪᭚࠽𑇞𑗊𐽘\u2e53𑗔𖩯𑇍𑻷𐽕𑩃।𑗂𑇆𑁈။᱾𑱁꘏܁᜶‼"
    "𑈻‽᪫﹖𑑌𑈼\U00010f87𑗐៙᰻"
)
PUNCTUATION_SET = frozenset(PUNCTUATION) | TERMINAL_PUNCTUATION

# Gopher's stop words (Rae et al. 2021, as in datatrove's GopherQualityFilter).
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

# --- the word splitter -----------------------------------------------------------------------

_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|Gen|Gov|Sen|Rep|Rev|Adm|Messrs|Inc|Ltd|Corp|Co|Bros|vs"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_UNITS = (  # spaCy splits these off a number: 5km -> 5 km, 9pm -> 9 pm
    "km|m|dm|cm|mm|nm|ha|yd|in|ft|mi|kg|g|mg|t|lb|lbs|oz|kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB"
    "|tb|TB|T|G|M|K|am|pm|AM|PM"
)
_GLUE = (  # marks inside a word that do not split it (spaCy splits only at its "infixes")
    r"(?:\.(?![A-Z.])"  # foo.bar 3.5 (end.Next and .. split)
    r"|[,:<>=/](?![^\W\d_])"  # 1,000 10:30 11/02/2006 (a,b and a/b split)
    r"|(?<![0-9])[-–—~+*^](?![^\W\d_])"  # Covid-19 (e-mail and 2020-01 split)
    r"|['’](?!(?i:s|re|ve|ll|d|m|t)(?![^\W_]))"  # O'Neill, not it's
    r"|[!\"#$%&()*;?@\[\\\]_`{|}])+"  # f(x) a_b user@host AT&T
)
WORD_RE = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]'}]"  # URLs (trailing punctuation split off)
    rf"|(?:{_ABBREVIATIONS})\.(?![^\W_])"  # Mr. Dr. Jan. (spaCy keeps these whole)
    r"|[^\W\d_]\.(?:[^\W\d_]\.)*(?![^\W_])"  # U.S. e.g. p.m. J.
    rf"|\d+(?=(?:{_UNITS})(?![^\W_]))"  # the number of 5km
    rf"|[^\W_]+(?:{_GLUE}[^\W_]+)*"  # words and numbers
    r"|['’](?i:s|re|ve|ll|d|m|t)(?![^\W_])"  # it|'s, do|n't (spaCy: do|n't, same length)
    r"|\.{2,}|-{2,}"  # ... and -- stay whole
    r"|[^\w\s]|_"  # any other mark is a token of its own
)


_findall = WORD_RE.findall
_ABBREVIATION_SET = frozenset(_ABBREVIATIONS.split("|"))
_TRAILING = frozenset(",;:!?)\"'.")


def split_words(text: str) -> list[str]:
    """The words of ``text`` as the filters count them (punctuation marks included).

    Same result as ``WORD_RE.findall(text)`` (no token spans whitespace), about twice
    as fast: most whitespace-separated chunks are a plain word, or a word and one
    trailing mark, and skip the regular expression."""
    out: list[str] = []
    append = out.append
    extend = out.extend
    for chunk in text.split():
        if chunk.isalpha():
            append(chunk)
            continue
        last = chunk[-1]
        core = chunk[:-1]
        if (
            last in _TRAILING
            and core.isalpha()
            and (last != "." or (len(core) > 1 and core not in _ABBREVIATION_SET))
        ):
            append(core)
            append(last)
        else:
            extend(_findall(chunk))
    return out


# --- per-word codes ---------------------------------------------------------------------------
# Each distinct word gets one int64: its length (20 bits), "not only punctuation" (1 bit),
# "has a letter" (1 bit), its index in GOPHER_STOP_WORDS + 1 (4 bits), and a small id
# (the rest) that identifies it within the process, for n-gram hashing.

_LEN_BITS = 20
_LEN_MASK = (1 << _LEN_BITS) - 1
_WORD_BIT = 1 << 20
_ALPHA_BIT = 1 << 21
_STOP_SHIFT = 22
_ID_SHIFT = 26
_MAX_CODES = 1_000_000  # distinct words remembered before the table is cleared
_STOP_INDEX = {w: i + 1 for i, w in enumerate(GOPHER_STOP_WORDS)}


class _Codes(dict[str, int]):
    """Word → code, filled on first sight (``__missing__`` keeps ``map`` in C)."""

    def __missing__(self, word: str) -> int:
        code = (len(self) + 1) << _ID_SHIFT | min(len(word), _LEN_MASK)
        if any(ch not in PUNCTUATION_SET for ch in word):
            code |= _WORD_BIT
        if any(ch.isalpha() for ch in word):
            code |= _ALPHA_BIT
        code |= _STOP_INDEX.get(word, 0) << _STOP_SHIFT
        self[word] = code
        return code


_codes = _Codes()


def word_codes(text: str) -> npt.NDArray[np.int64]:
    """One code per word of ``text`` (see the layout above)."""
    global _codes
    if len(_codes) > _MAX_CODES:  # ids only need to be stable within one document
        _codes = _Codes()
    words = split_words(text)
    return np.fromiter(map(_codes.__getitem__, words), dtype=np.int64, count=len(words))


# --- one document's statistics ----------------------------------------------------------------


@dataclass(slots=True)
class DocStats:
    """Word statistics of one text; the n-gram helpers work on the word ids."""

    codes: npt.NDArray[np.int64]

    @property
    def n_tokens(self) -> int:
        """Every word, punctuation marks included (datatrove's ``len(words)``)."""
        return int(self.codes.size)

    def word_counts(self) -> tuple[int, int, int, int]:
        """(words that are not only punctuation, their total length, words with a
        letter, distinct Gopher stop words present)."""
        c = self.codes
        is_word = (c & _WORD_BIT) != 0
        n_words = int(np.count_nonzero(is_word))
        word_chars = int((c[is_word] & _LEN_MASK).sum()) if n_words else 0
        n_alpha = int(np.count_nonzero(c & _ALPHA_BIT))
        stops = (c >> _STOP_SHIFT) & 0xF
        n_stop = int(np.count_nonzero(np.bincount(stops, minlength=16)[1:]))
        return n_words, word_chars, n_alpha, n_stop

    def ids(self) -> npt.NDArray[np.uint64]:
        return (self.codes >> _ID_SHIFT).astype(np.uint64)

    def lengths(self) -> npt.NDArray[np.int64]:
        return self.codes & _LEN_MASK


_GENERATION = 4200  # a little over one batch (4096 rows): the cache spans two batches
_young: dict[str, DocStats] = {}
_old: dict[str, DocStats] = {}


def doc_stats(text: str, store: bool = True) -> DocStats:
    """The statistics of ``text``, computed once per worker while it is recent.

    ``store=False`` looks in the cache but does not add to it (for a step that needs
    the statistics of a text no other filter will see, such as a rewritten one)."""
    global _young, _old
    found = _young.get(text)
    if found is None:
        found = _old.get(text)
    if found is not None:
        return found
    stats = DocStats(word_codes(text))
    if store:
        if len(_young) >= _GENERATION:
            _old, _young = _young, {}
        _young[text] = stats
    return stats


def clear_cache() -> None:
    """Forget every cached document (tests; memory)."""
    global _young, _old
    _young, _old = {}, {}


# --- n-gram repetition -----------------------------------------------------------------------

_MIX = np.uint64(0x9E3779B97F4A7C15)
_STEP = np.uint64(0xBF58476D1CE4E5B9)


def ngram_hashes(
    ids: npt.NDArray[np.uint64], previous: npt.NDArray[np.uint64] | None, n: int
) -> npt.NDArray[np.uint64]:
    """64-bit hashes of every n-gram, built from the (n-1)-gram hashes ``previous``."""
    if previous is None:  # n == 1
        return ids * _MIX + np.uint64(1)
    return previous[: ids.size - n + 1] * _STEP + (ids[n - 1 :] * _MIX + np.uint64(1))


def top_ngram_chars(hashes: npt.NDArray[np.uint64], cumlen: npt.NDArray[np.int64], n: int) -> int:
    """Characters covered by the most frequent n-gram (counted once per occurrence,
    words joined by one space), as datatrove's ``find_top_duplicate``: on a tie, the
    n-gram seen first."""
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    top = int(counts.max())
    start = int(first[counts == top].min())
    chars = int(cumlen[start + n] - cumlen[start]) + n - 1
    return chars * top


def duplicate_ngram_chars(
    hashes: npt.NDArray[np.uint64], cumlen: npt.NDArray[np.int64], n: int
) -> int:
    """Characters in n-grams that repeat an earlier one, scanning left to right and
    jumping over a repeated n-gram (datatrove's ``find_all_duplicate``). Only the
    n-grams that occur more than once can change the scan, so only they are walked."""
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    repeated = counts[inverse] > 1
    if not repeated.any():
        return 0
    positions = np.flatnonzero(repeated).tolist()
    keys = inverse[repeated].tolist()
    ends = cumlen.tolist()
    seen: set[int] = set()
    nxt = 0
    chars = 0
    for pos, key in zip(positions, keys, strict=True):
        if pos < nxt:
            continue
        if key in seen:
            chars += ends[pos + n] - ends[pos]
            nxt = pos + n
        else:
            seen.add(key)
            nxt = pos + 1
    return chars


def duplicates(items: list[str]) -> tuple[int, int]:
    """(items that repeat an earlier one, their characters)."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


# --- sentences (C4's minimum sentence count) --------------------------------------------------

_SENTENCE_END_RE = re.compile(r"(\S*?)([.!?]+)[\"'”’)\]]*(?:(\s+)[\"'“‘(\[]*(?=[^\W_])|(?=[A-Z]))")
_NO_BREAK_AFTER = frozenset(_ABBREVIATIONS.split("|"))
_OPENERS = "([{\"'“‘"


def sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence end inside ``text`` (not at its end), where
    spaCy's sentencizer would start a new sentence: a ``.``, ``!`` or ``?`` followed
    by a word, unless the period belongs to an abbreviation, an initial (``J.``), an
    acronym (``U.S.``, ``e.g.``) or an ellipsis."""
    out = []
    for m in _SENTENCE_END_RE.finditer(text):
        before, marks, space = m.group(1), m.group(2), m.group(3)
        if space is None and not (before and before[-1].islower()):
            continue  # ".NET", or "x.Y" where x is not a lower-case letter
        if len(marks) > 1 and set(marks) == {"."}:
            continue  # an ellipsis
        if marks == ".":
            word = before.lstrip(_OPENERS)
            if word in _NO_BREAK_AFTER or (
                word and all(len(p) == 1 and p.isalpha() for p in word.split("."))
            ):
                continue  # Mr. J. U.S. e.g.
        out.append(m.end())
    return out


def count_sentences(text: str) -> int:
    """Sentences in a non-blank ``text``: one, plus one per inner sentence end."""
    return 1 + len(sentence_ends(text))


def split_sentences(text: str) -> list[str]:
    """``text`` cut into sentences (blank pieces dropped)."""
    cuts = [0, *sentence_ends(text), len(text)]
    parts = (text[a:b].strip() for a, b in itertools.pairwise(cuts))
    return [p for p in parts if p]
