"""Heuristic quality filters for web documents: Gopher quality and repetition, C4, FineWeb.

The rules and default thresholds are datatrove's (``GopherQualityFilter``,
``GopherRepetitionFilter``, ``C4QualityFilter``, ``FineWebQualityFilter``), checked in
the same order, so a document fails for the same first rule. Each step:

- drops a document with a stable, readable reason per rule (``"gopher_quality: fewer
  than 50 words"``), so the curate summary groups drops by rule;
- writes an attribute named after the step with the measured values (one column per
  rule, null for the rules after the first that failed), so a threshold can be
  judged or changed without guessing;
- splits words once per document for all of them (``text_stats.doc_stats``).

``c4`` is the only one that rewrites text: like datatrove it removes the lines that
fail its line rules and keeps the rest (``rewrite: false`` only decides).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.curate.text_stats import (
    GOPHER_STOP_WORDS,
    TERMINAL_PUNCTUATION,
    DocStats,
    count_sentences,
    doc_stats,
    duplicate_ngram_chars,
    duplicates,
    ngram_hashes,
    split_sentences,
    split_words,
    top_ngram_chars,
)
from gristmill.pipeline.spec import register
from gristmill.pipeline.step import Step, StepOutput
from gristmill.records.kinds import Kind

Value = float | int | None


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


class _DocumentFilter(Step):
    """Shared plumbing: read ids and texts, decide per text, emit the attribute."""

    kinds = (Kind.DOCUMENT,)
    columns: tuple[tuple[str, pa.DataType], ...] = ()

    def judge(self, text: str) -> tuple[str | None, list[Value]]:
        """(reason or None, one value per column of the attribute)."""
        raise NotImplementedError

    def process(self, table: pa.Table) -> StepOutput:
        texts: list[str] = table.column("text").to_pylist()
        reasons: list[str | None] = []
        values: list[list[Value]] = [[] for _ in self.columns]
        judge = self.judge
        for text in texts:
            reason, row = judge(text or "")
            reasons.append(reason)
            for column, value in zip(values, row, strict=True):
                column.append(value)
        return StepOutput(table, reasons, attributes={self.name: self._attribute(table, values)})

    def _attribute(self, table: pa.Table, values: list[list[Value]]) -> pa.Table:
        arrays = [table.column("id")]
        arrays += [pa.array(v, type=t) for v, (_, t) in zip(values, self.columns, strict=True)]
        return pa.table(arrays, names=["id", *(name for name, _ in self.columns)])


# --- Gopher quality -------------------------------------------------------------------------


@register
class GopherQuality(_DocumentFilter):
    """Gopher quality rules (Rae et al. 2021): length, word length, symbols, bullets, stop words."""

    name = "gopher_quality"
    columns = (
        ("words", pa.int64()),
        ("mean_word_length", pa.float64()),
        ("hash_ratio", pa.float64()),
        ("ellipsis_ratio", pa.float64()),
        ("bullet_lines_ratio", pa.float64()),
        ("ellipsis_lines_ratio", pa.float64()),
        ("alpha_words_ratio", pa.float64()),
        ("stop_words", pa.int64()),
    )

    def __init__(
        self,
        *,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            min_doc_words=min_doc_words,
            max_doc_words=max_doc_words,
            min_avg_word_length=min_avg_word_length,
            max_avg_word_length=max_avg_word_length,
            max_symbol_word_ratio=max_symbol_word_ratio,
            max_bullet_lines_ratio=max_bullet_lines_ratio,
            max_ellipsis_lines_ratio=max_ellipsis_lines_ratio,
            min_alpha_words_ratio=min_alpha_words_ratio,
            min_stop_words=min_stop_words,
            stop_words=list(stop_words) if stop_words is not None else None,
        )
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg = min_avg_word_length
        self.max_avg = max_avg_word_length
        self.max_symbol = max_symbol_word_ratio
        self.max_bullets = max_bullet_lines_ratio
        self.max_ellipsis_lines = max_ellipsis_lines_ratio
        self.min_alpha = min_alpha_words_ratio
        self.min_stop = min_stop_words
        custom = stop_words is not None and tuple(stop_words) != GOPHER_STOP_WORDS
        self.stop_words: frozenset[str] | None = frozenset(stop_words or ()) if custom else None
        n = "gopher_quality: "
        self.r_short = f"{n}fewer than {min_doc_words} words"
        self.r_long = f"{n}more than {max_doc_words} words"
        self.r_avg_low = f"{n}mean word length under {min_avg_word_length}"
        self.r_avg_high = f"{n}mean word length over {max_avg_word_length}"
        self.r_hash = f"{n}more than {max_symbol_word_ratio} '#' per word"
        self.r_ellipsis = f"{n}more than {max_symbol_word_ratio} ellipses per word"
        self.r_bullets = f"{n}over {_pct(max_bullet_lines_ratio or 0)} of lines start with a bullet"
        self.r_ellipsis_lines = (
            f"{n}over {_pct(max_ellipsis_lines_ratio or 0)} of lines end with an ellipsis"
        )
        self.r_alpha = f"{n}under {_pct(min_alpha_words_ratio or 0)} of words have a letter"
        self.r_stop = f"{n}fewer than {min_stop_words} stop words"
        self.r_empty = f"{n}no words"

    def judge(self, text: str) -> tuple[str | None, list[Value]]:
        stats = doc_stats(text)
        n_tokens = stats.n_tokens
        n_words, word_chars, n_alpha, n_stop = stats.word_counts()
        if self.stop_words is not None:
            n_stop = len(self.stop_words.intersection(split_words(text)))
        mean = word_chars / n_words if n_words else math.nan
        if n_tokens:
            hashes = text.count("#") / n_tokens
            ellipses = (text.count("...") + text.count("…")) / n_tokens
            alpha = n_alpha / n_tokens
        else:
            hashes = ellipses = alpha = 0.0
        lines = text.splitlines() or [""]
        bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-"))) / len(lines)
        ends = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / len(lines)
        row: list[Value] = [
            n_words,
            None if math.isnan(mean) else mean,
            hashes,
            ellipses,
            bullets,
            ends,
            alpha,
            n_stop,
        ]
        return self._reason(
            n_tokens, n_words, mean, hashes, ellipses, bullets, ends, alpha, n_stop
        ), row

    def _reason(
        self,
        n_tokens: int,
        n_words: int,
        mean: float,
        hashes: float,
        ellipses: float,
        bullets: float,
        ends: float,
        alpha: float,
        n_stop: int,
    ) -> str | None:
        if self.min_doc_words is not None and n_words < self.min_doc_words:
            return self.r_short
        if self.max_doc_words is not None and n_words > self.max_doc_words:
            return self.r_long
        if n_tokens == 0:
            return self.r_empty
        if self.min_avg is not None and mean < self.min_avg:
            return self.r_avg_low
        if self.max_avg is not None and mean > self.max_avg:
            return self.r_avg_high
        if self.max_symbol is not None:
            if hashes > self.max_symbol:
                return self.r_hash
            if ellipses > self.max_symbol:
                return self.r_ellipsis
        if self.max_bullets is not None and bullets > self.max_bullets:
            return self.r_bullets
        if self.max_ellipsis_lines is not None and ends > self.max_ellipsis_lines:
            return self.r_ellipsis_lines
        if self.min_alpha is not None and alpha < self.min_alpha:
            return self.r_alpha
        if self.min_stop is not None and n_stop < self.min_stop:
            return self.r_stop
        return None


# --- Gopher repetition ----------------------------------------------------------------------

_PARAGRAPH_RE = re.compile(r"\n{2,}")
_LINE_RE = re.compile(r"\n+")
DEFAULT_TOP_N_GRAMS = ((2, 0.2), (3, 0.18), (4, 0.16))
DEFAULT_DUP_N_GRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


def _pairs(value: Sequence[Sequence[float]], what: str) -> tuple[tuple[int, float], ...]:
    out = []
    for item in value:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or int(item[0]) != item[0]
            or int(item[0]) < 1
        ):
            raise TypeError(f"{what}: expected [n, fraction] pairs with n >= 1, got {item!r}")
        out.append((int(item[0]), float(item[1])))
    return tuple(out)


@register
class GopherRepetition(_DocumentFilter):
    """Gopher repetition rules: duplicate lines and paragraphs, top and repeated n-grams."""

    name = "gopher_repetition"

    def __init__(
        self,
        *,
        dup_line_frac: float | None = 0.3,
        dup_para_frac: float | None = 0.3,
        dup_line_char_frac: float | None = 0.2,
        dup_para_char_frac: float | None = 0.2,
        top_n_grams: Sequence[Sequence[float]] = DEFAULT_TOP_N_GRAMS,
        dup_n_grams: Sequence[Sequence[float]] = DEFAULT_DUP_N_GRAMS,
    ) -> None:
        top = _pairs(top_n_grams, "top_n_grams")
        dup = _pairs(dup_n_grams, "dup_n_grams")
        super().__init__(
            dup_line_frac=dup_line_frac,
            dup_para_frac=dup_para_frac,
            dup_line_char_frac=dup_line_char_frac,
            dup_para_char_frac=dup_para_char_frac,
            top_n_grams=[list(p) for p in top],
            dup_n_grams=[list(p) for p in dup],
        )
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top = top
        self.dup = dup
        self.columns = (
            ("dup_para_frac", pa.float64()),
            ("dup_para_char_frac", pa.float64()),
            ("dup_line_frac", pa.float64()),
            ("dup_line_char_frac", pa.float64()),
            *((f"top_{n}_gram_char_frac", pa.float64()) for n, _ in top),
            *((f"dup_{n}_gram_char_frac", pa.float64()) for n, _ in dup),
        )
        p = "gopher_repetition: "
        self.r_empty = f"{p}empty text"
        self.r_para = f"{p}over {_pct(dup_para_frac or 0)} of paragraphs are duplicates"
        self.r_para_chars = (
            f"{p}duplicate paragraphs hold over {_pct(dup_para_char_frac or 0)} of characters"
        )
        self.r_line = f"{p}over {_pct(dup_line_frac or 0)} of lines are duplicates"
        self.r_line_chars = (
            f"{p}duplicate lines hold over {_pct(dup_line_char_frac or 0)} of characters"
        )
        self.r_top = {
            n: f"{p}the most frequent {n}-gram covers over {_pct(f)} of characters" for n, f in top
        }
        self.r_dup = {
            n: f"{p}repeated {n}-grams cover over {_pct(f)} of characters" for n, f in dup
        }

    def judge(self, text: str) -> tuple[str | None, list[Value]]:
        row: list[Value] = [None] * len(self.columns)
        if not text:
            return self.r_empty, row
        size = len(text)
        paragraphs = _PARAGRAPH_RE.split(text.strip())
        lines = _LINE_RE.split(text)
        para_dups, para_chars = duplicates(paragraphs)
        line_dups, line_chars = duplicates(lines)
        checks = (
            (para_dups / len(paragraphs), self.dup_para_frac, self.r_para),
            (para_chars / size, self.dup_para_char_frac, self.r_para_chars),
            (line_dups / len(lines), self.dup_line_frac, self.r_line),
            (line_chars / size, self.dup_line_char_frac, self.r_line_chars),
        )
        for col, (value, limit, reason) in enumerate(checks):
            row[col] = value
            if limit is not None and value > limit:
                return reason, row
        return self._ngrams(doc_stats(text), size, row), row

    def _ngrams(self, stats: DocStats, size: int, row: list[Value]) -> str | None:
        ids = stats.ids()
        cumlen = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(stats.lengths(), out=cumlen[1:])
        cache: dict[int, np.ndarray[Any, np.dtype[np.uint64]]] = {}

        def hashes(n: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
            if n not in cache:
                cache[n] = ngram_hashes(ids, hashes(n - 1) if n > 1 else None, n)
            return cache[n]

        col = 4
        for n, frac in self.top:
            if ids.size >= n:
                value = top_ngram_chars(hashes(n), cumlen, n) / size
                row[col] = value
                if value > frac:
                    return self.r_top[n]
            else:
                row[col] = 0.0
            col += 1
        no_repeats_from: int | None = None  # an n with no repeated n-gram: none for larger n
        for n, frac in self.dup:
            if ids.size < n or (no_repeats_from is not None and n >= no_repeats_from):
                row[col] = 0.0
                col += 1
                continue
            chars = duplicate_ngram_chars(hashes(n), cumlen, n)
            if chars == 0:
                no_repeats_from = n if no_repeats_from is None else min(no_repeats_from, n)
            value = chars / size
            row[col] = value
            col += 1
            if value > frac:
                return self.r_dup[n]
        return None


# --- C4 ---------------------------------------------------------------------------------------

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_POLICY_RE = re.compile("|".join(re.escape(p) for p in POLICY_SUBSTRINGS))


@register
class C4(_DocumentFilter):
    """C4 rules (Raffel et al. 2020): removes bad lines, drops pages with too few sentences."""

    name = "c4"
    columns = (
        ("lines", pa.int64()),
        ("kept_lines", pa.int64()),
        ("sentences", pa.int64()),
    )

    def __init__(
        self,
        *,
        split_paragraph: bool = True,
        remove_citations: bool = True,
        filter_no_terminal_punct: bool = True,
        min_num_sentences: int = 5,
        min_words_per_line: int = 3,
        max_word_length: int = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        rewrite: bool = True,
    ) -> None:
        super().__init__(
            split_paragraph=split_paragraph,
            remove_citations=remove_citations,
            filter_no_terminal_punct=filter_no_terminal_punct,
            min_num_sentences=min_num_sentences,
            min_words_per_line=min_words_per_line,
            max_word_length=max_word_length,
            filter_lorem_ipsum=filter_lorem_ipsum,
            filter_javascript=filter_javascript,
            filter_curly_bracket=filter_curly_bracket,
            filter_policy=filter_policy,
            rewrite=rewrite,
        )
        self.split_paragraph = split_paragraph
        self.remove_citations = remove_citations
        self.terminal = filter_no_terminal_punct
        self.min_sentences = min_num_sentences
        self.min_words = min_words_per_line
        self.max_word = max_word_length
        self.lorem = filter_lorem_ipsum
        self.javascript = filter_javascript
        self.curly = filter_curly_bracket
        self.policy = filter_policy
        self.rewrite = rewrite
        unit = "lines" if split_paragraph else "sentences"
        self.c_total = f"{unit} checked"
        self.c_long = f"{unit} removed: a word over {max_word_length} characters"
        self.c_punct = f"{unit} removed: no terminal punctuation"
        self.c_few = f"{unit} removed: fewer than {min_words_per_line} words"
        self.c_js = f"{unit} removed: javascript"
        self.c_policy = f"{unit} removed: terms, privacy or cookie notice"
        self.c_rewritten = "documents rewritten"
        self.r_lorem = 'c4: contains "lorem ipsum"'
        self.r_curly = "c4: contains a curly bracket"
        self.r_none = f"c4: no {unit[:-1]} passed the {unit[:-1]} rules"
        self.r_sentences = f"c4: fewer than {min_num_sentences} sentences left"
        self._counts = self._zero_counts()
        self._new_text: str | None = None  # the kept lines of the text last judged

    def _zero_counts(self) -> dict[str, int]:
        names = (self.c_total, self.c_long, self.c_punct, self.c_few, self.c_js, self.c_policy)
        return dict.fromkeys(names, 0)

    def process(self, table: pa.Table) -> StepOutput:
        self._counts = self._zero_counts()
        texts: list[str] = table.column("text").to_pylist()
        reasons: list[str | None] = []
        values: list[list[Value]] = [[] for _ in self.columns]
        new_texts: list[str] = []
        rewritten = 0
        for text in texts:
            reason, row = self.judge(text or "")
            reasons.append(reason)
            for column, value in zip(values, row, strict=True):
                column.append(value)
            if reason is None and self._new_text is not None and self._new_text != text:
                new_texts.append(self._new_text)
                rewritten += 1
            else:
                new_texts.append(text)
        if self.rewrite and rewritten:
            index = table.schema.get_field_index("text")
            field = table.schema.field(index)
            table = table.set_column(index, field, pa.array(new_texts, type=field.type))
        counters = {k: v for k, v in self._counts.items() if v}
        if self.rewrite and rewritten:
            counters[self.c_rewritten] = rewritten
        return StepOutput(
            table,
            reasons,
            attributes={self.name: self._attribute(table, values)},
            counters=counters,
        )

    def judge(self, text: str) -> tuple[str | None, list[Value]]:
        self._new_text = None
        counts = self._counts
        units = text.splitlines() if self.split_paragraph else split_sentences(text)
        counts[self.c_total] += len(units)
        kept: list[str] = []
        max_word, min_words = self.max_word, self.min_words
        for unit in units:
            line = unit.strip()
            words = line.split()
            if max_word != -1 and len(line) > max_word and max(map(len, words)) > max_word:
                counts[self.c_long] += 1
                continue
            if self.remove_citations and "[" in line:
                line = CITATION_RE.sub("", line)
            if self.terminal and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
                counts[self.c_punct] += 1
                continue
            if len(words) < min_words:
                counts[self.c_few] += 1
                continue
            lower = line.lower()
            if self.lorem and "lorem ipsum" in lower:
                return self.r_lorem, [len(units), None, None]
            if self.javascript and "javascript" in lower:
                counts[self.c_js] += 1
                continue
            if self.curly and "{" in line:
                return self.r_curly, [len(units), None, None]
            if self.policy and _POLICY_RE.search(lower):
                counts[self.c_policy] += 1
                continue
            kept.append(line)
        sentences: int | None = None
        if self.min_sentences != -1 and len(kept) < self.min_sentences:
            # every kept line is at least one sentence: count only when that is not enough
            sentences = (
                sum(count_sentences(line) for line in kept) if self.split_paragraph else len(kept)
            )
            if sentences < self.min_sentences:
                reason = self.r_none if not kept else self.r_sentences
                return reason, [len(units), len(kept), sentences]
        if not kept:
            return self.r_none, [len(units), 0, 0]
        self._new_text = ("\n" if self.split_paragraph else " ").join(kept).strip()
        return None, [len(units), len(kept), sentences]


# --- FineWeb ----------------------------------------------------------------------------------


@register
class FineWeb(_DocumentFilter):
    """FineWeb rules (Penedo et al. 2024): line punctuation, short lines, duplicate lines, lists."""

    name = "fineweb"
    columns = (
        ("line_punct_ratio", pa.float64()),
        ("short_line_ratio", pa.float64()),
        ("char_dup_ratio", pa.float64()),
        ("newlines_per_word", pa.float64()),
    )

    def __init__(
        self,
        *,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: Sequence[str] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
    ) -> None:
        super().__init__(
            line_punct_thr=line_punct_thr,
            line_punct_exclude_zero=line_punct_exclude_zero,
            stop_chars=list(stop_chars) if stop_chars is not None else None,
            short_line_thr=short_line_thr,
            short_line_length=short_line_length,
            char_duplicates_ratio=char_duplicates_ratio,
            new_line_ratio=new_line_ratio,
        )
        self.line_punct_thr = line_punct_thr
        self.exclude_zero = line_punct_exclude_zero
        chars = tuple(stop_chars) if stop_chars is not None else tuple(TERMINAL_PUNCTUATION)
        self.ends_in_stop: Callable[[str], bool]
        if all(len(c) == 1 for c in chars):
            single = frozenset(chars)
            self.ends_in_stop = lambda line: line[-1] in single
        else:
            self.ends_in_stop = lambda line: line.endswith(chars)
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_dup = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        f = "fineweb: "
        self.r_empty = f"{f}empty text"
        self.r_punct = f"{f}under {_pct(line_punct_thr)} of lines end in punctuation"
        self.r_short = (
            f"{f}over {_pct(short_line_thr)} of lines are {short_line_length} characters or shorter"
        )
        self.r_dup = f"{f}duplicate lines hold over {_pct(char_duplicates_ratio)} of characters"
        self.r_list = f"{f}more than {new_line_ratio} newlines per word (a list)"

    def judge(self, text: str) -> tuple[str | None, list[Value]]:
        row: list[Value] = [None, None, None, None]
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return self.r_empty, row
        n = len(lines)
        ends = self.ends_in_stop
        ratio = sum(1 for line in lines if ends(line)) / n
        row[0] = ratio
        if ratio < self.line_punct_thr and not (ratio == 0 and self.exclude_zero):
            return self.r_punct, row
        short = self.short_line_length
        short_ratio = sum(1 for line in lines if len(line) <= short) / n
        row[1] = short_ratio
        if short_ratio > self.short_line_thr:
            return self.r_short, row
        newlines = text.count("\n")
        dup_ratio = duplicates(lines)[1] / (len(text) - newlines)
        row[2] = dup_ratio
        if dup_ratio > self.char_dup:
            return self.r_dup, row
        list_ratio = newlines / doc_stats(text, store=False).n_tokens if newlines else 0.0
        row[3] = list_ratio
        if list_ratio > self.new_line_ratio:
            return self.r_list, row
        return None, row
