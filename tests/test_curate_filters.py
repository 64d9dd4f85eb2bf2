"""The heuristic filters on real web text: what each keeps and drops, and why.

Every document here is a real one from data/samples (Dolma Common Crawl pages, C4,
Wikipedia, LIMA answers, a CS336 boilerplate page); the snippets quoted in the tests
are from those documents.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.curate.filters import C4, FineWeb, GopherQuality, GopherRepetition
from gristmill.curate.text_stats import count_sentences, split_sentences, split_words
from gristmill.io.ingest import import_path
from gristmill.pipeline import RunOptions, load_pipeline, parse_pipeline, run_pipeline
from gristmill.pipeline.step import Step, StepContext, StepOutput
from gristmill.records.kinds import Kind
from gristmill.store import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


# --- the documents ----------------------------------------------------------------------------


@cache
def dolma() -> dict[str, str]:
    """Dolma CC documents by URL (id)."""
    out = {}
    folder = SAMPLES / "dolma_cc_samples"
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out[row["id"]] = row["text"]
    with gzip.open(folder / "provided_documents_000.json.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            out[row["id"]] = row["text"]
    return out


def dolma_doc(url_part: str) -> str:
    (text,) = [t for url, t in dolma().items() if url_part in url]
    return text


@cache
def c4_docs() -> list[str]:
    path = SAMPLES / "llamafactory_demos" / "c4_demo.jsonl"
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def c4_doc(start: str) -> str:
    (text,) = [t for t in c4_docs() if t.startswith(start)]
    return text


@cache
def wiki_article(title_start: str) -> str:
    path = SAMPLES / "llamafactory_demos" / "wiki_demo.txt"
    (text,) = [line for line in path.read_text().splitlines() if line.startswith(title_start)]
    return text


@cache
def lima_answer(snippet: str) -> str:
    rows = json.loads((SAMPLES / "lima" / "lima.json").read_text())
    (text,) = [r["output"] for r in rows if snippet in r["output"]]
    return str(text)


def run(step: Step, *texts: str) -> StepOutput:
    """One batch of documents through a step, as an executor would pass it."""
    table = pa.table(
        {
            "id": [f"doc-{i}" for i in range(len(texts))],
            "text": list(texts),
            "language": pa.array([None] * len(texts), type=pa.string()),
        }
    )
    step.bind(StepContext(kind=Kind.DOCUMENT))
    (out,) = list(step.run([table]))
    return out


def verdict(step: Step, text: str) -> tuple[str | None, dict[str, Any]]:
    """(drop reason or None, the step's attribute row) for one document."""
    out = run(step, text)
    assert out.drop is not None
    (row,) = out.attributes[step.name].to_pylist()
    return out.drop[0], row


ALL_FILTERS = (GopherQuality, GopherRepetition, C4, FineWeb)


# --- kept ---------------------------------------------------------------------------------------


def test_a_wikipedia_article_is_kept_by_every_filter() -> None:
    """The demo's articles are one line each, with the category links glued after the
    last sentence ("... anarchism. Anti-capitalismAnti-fascismEconomic ideologies...").
    Without that tail the article is kept by all four filters."""
    line = wiki_article("Anarchism is a political philosophy")
    article = line[: line.rindex(". ") + 1]
    assert article.endswith("the history and theory of anarchism.")
    for cls in ALL_FILTERS:
        reason, _ = verdict(cls(), article)
        assert reason is None, f"{cls.name} dropped the Anarchism article: {reason}"
    _, quality = verdict(GopherQuality(), article)
    assert quality["words"] > 5000
    assert 4 < quality["mean_word_length"] < 6
    assert quality["stop_words"] == 8  # all of Gopher's: the, be, to, of, and, that, have, with


def test_a_flattened_article_ending_in_category_links_fails_the_line_rules() -> None:
    line = wiki_article("Anarchism is a political philosophy")
    assert line.endswith("SocialismFar-left politics")
    assert verdict(GopherQuality(), line)[0] is None
    assert verdict(GopherRepetition(), line)[0] is None
    assert verdict(C4(), line)[0] == "c4: no line passed the line rules"
    assert verdict(FineWeb(), line)[0] == "fineweb: under 12% of lines end in punctuation"


def test_clean_web_pages_are_kept() -> None:
    """A travel blog post and a history page from Common Crawl pass all four."""
    for url in ("akindleinhongkong.blogspot.com", "ajitucapoeira.com/history.php"):
        text = dolma_doc(url)
        for cls in ALL_FILTERS:
            assert verdict(cls(), text)[0] is None, (url, cls.name)


# --- gopher_quality -----------------------------------------------------------------------------


def test_a_blog_sidebar_of_cut_headlines_is_too_short() -> None:
    # "Aborigines in Australia longer than previously tho...\nSurf's up! N. Korea touris..."
    sidebar = dolma_doc("cempaka-tourist.blogspot.com/2017/07")
    assert sidebar.startswith("Aborigines in Australia longer than previously tho...")
    reason, row = verdict(GopherQuality(), sidebar)
    assert reason == "gopher_quality: fewer than 50 words"
    assert row["words"] < 50
    # the next rule it breaks: every line is a headline cut off with "..."
    reason, row = verdict(GopherQuality(min_doc_words=None), sidebar)
    assert reason == "gopher_quality: more than 0.1 ellipses per word"
    assert row["ellipsis_lines_ratio"] == 1.0  # the rule after it would fail too


def test_a_truncated_teaser_ends_with_an_ellipsis() -> None:
    # "... announced the addition of new leaders to the execu..."
    teaser = dolma_doc("blogs.boardprospects.com")
    assert teaser.endswith("...")
    reason, row = verdict(GopherQuality(), teaser)
    assert reason == "gopher_quality: over 30% of lines end with an ellipsis"
    assert row["words"] >= 50 and row["ellipsis_lines_ratio"] == 1.0


def test_a_calendar_widget_has_too_few_words_with_letters() -> None:
    # "Meeting Room Booking System\n1 2 3 4 5 6 7 8 9 10 11 12 ... Jan Feb Mar ..."
    page = dolma_doc("eeme.ucd.ie/mrbs")
    assert "Meeting Room Booking System\n1 2 3 4 5 6 7 8 9 10" in page
    reason, row = verdict(GopherQuality(), page)
    assert reason == "gopher_quality: under 80% of words have a letter"
    assert row["alpha_words_ratio"] < 0.8


def test_a_navigation_menu_page_fails_the_letter_and_punctuation_rules() -> None:
    # "Skip to:[Main Navigation | Page Content]\nBritish Universities Film & Video Council ..."
    menu = dolma_doc("bufvc.ac.uk")
    assert menu.startswith("Skip to:[Main Navigation | Page Content]")
    assert verdict(GopherQuality(), menu)[0] == "gopher_quality: under 80% of words have a letter"
    reason, row = verdict(FineWeb(), menu)
    assert reason == "fineweb: under 12% of lines end in punctuation"
    assert row["line_punct_ratio"] < 0.12


def test_thresholds_are_parameters() -> None:
    page = dolma_doc("eeme.ucd.ie/mrbs")
    lenient = GopherQuality(min_alpha_words_ratio=0.3, min_doc_words=10)
    assert verdict(lenient, page)[0] is None


# --- gopher_repetition --------------------------------------------------------------------------


def test_a_placeholder_page_repeats_one_phrase() -> None:
    # "Looking for Jo Ann Cedotal?\nAre you Jo Ann Cedotal?\nThis is a placeholder page for Jo Ann ..."
    page = c4_doc("Looking for Jo Ann Cedotal?")
    reason, row = verdict(GopherRepetition(), page)
    assert reason == "gopher_repetition: the most frequent 3-gram covers over 18% of characters"
    assert row["top_3_gram_char_frac"] > 0.18
    assert row["top_2_gram_char_frac"] <= 0.2  # checked first, passed
    assert row["dup_5_gram_char_frac"] is None  # not reached


def test_a_text_that_repeats_its_sentences_with_one_word_changed() -> None:
    # "We carve this oath down in the Bitcoin’s Blockchain ...\nWe engrave this oath down in the Bi..."
    oath = c4_doc("We carve this oath down in the Bitcoin’s Blockchain")
    reason, row = verdict(GopherRepetition(), oath)
    assert reason == "gopher_repetition: repeated 6-grams cover over 14% of characters"
    assert row["dup_5_gram_char_frac"] <= 0.15  # passed
    assert row["dup_6_gram_char_frac"] > 0.14


def test_a_phone_number_spam_page_repeats_lines_of_the_same_words() -> None:
    spam = c4_doc("Access All Records Of 213-484-0480 Now!")
    reason, _ = verdict(GopherRepetition(), spam)
    assert reason == "gopher_repetition: the most frequent 2-gram covers over 20% of characters"
    no_ngrams = GopherRepetition(top_n_grams=[], dup_n_grams=[])
    assert verdict(no_ngrams, spam)[0] is None  # its lines differ: only the n-grams catch it


def test_repeated_lines_are_caught_by_the_line_rules() -> None:
    article = wiki_article("An American in Paris is a jazz-influenced")
    doubled = article + "\n" + article + "\n" + article
    reason, row = verdict(GopherRepetition(), doubled)
    assert reason == "gopher_repetition: over 30% of lines are duplicates"
    assert row["dup_line_frac"] == pytest.approx(2 / 3)


# --- c4 -----------------------------------------------------------------------------------------


def test_c4_keeps_the_sentences_of_a_forum_page_and_removes_its_menus() -> None:
    page = (SAMPLES / "cs336_filter_fixtures" / "low_quality_cc.txt").read_text()
    out = run(C4(), page)
    assert out.drop == [None]
    kept = out.table.column("text")[0].as_py()
    assert kept.splitlines()[0] == "Speak Korean Now!"
    assert "This page is maintained by the one and only Dave Sperling." in kept
    assert "FAQFAQ" not in kept  # " FAQFAQ   SearchSearch   MemberlistMemberlist ..."
    assert "Powered by phpBB" not in kept
    assert len(kept.splitlines()) == 5
    assert out.counters["lines checked"] == 12
    assert out.counters["lines removed: no terminal punctuation"] == 7
    assert out.counters["documents rewritten"] == 1
    assert out.attributes["c4"].to_pylist()[0]["kept_lines"] == 5
    untouched = run(C4(rewrite=False), page)
    assert untouched.drop == [None] and untouched.table.column("text")[0].as_py() == page


def test_c4_drops_pages_with_too_few_sentences_left() -> None:
    sidebar = dolma_doc("cempaka-tourist.blogspot.com/2017/07")
    assert verdict(C4(), sidebar)[0] == "c4: no line passed the line rules"
    # "We will be starting to hold weekly teleconferences ..." : 2 lines, 4 sentences
    short = dolma_doc("100kinvesting.com")
    reason, row = verdict(C4(), short)
    assert reason == "c4: fewer than 5 sentences left"
    assert (row["kept_lines"], row["sentences"]) == (2, 4)
    assert verdict(C4(min_num_sentences=4), short)[0] is None


def test_c4_removes_lines_about_javascript() -> None:
    answer = lima_answer("there are no classes in JavaScript")
    out = run(C4(), answer)
    assert out.drop == ["c4: no line passed the line rules"]
    assert out.counters["lines removed: javascript"] == 4
    assert run(C4(filter_javascript=False), answer).drop == [None]


def test_c4_drops_a_page_with_a_curly_bracket() -> None:
    # "... $F_n = F_{n-1} + F_{n-2}$, with seed values: $F_0 = 0$ and $F_1 = 1$."
    answer = lima_answer("F_n = F_{n-1} + F_{n-2}")
    assert verdict(C4(), answer)[0] == "c4: contains a curly bracket"
    assert verdict(C4(filter_curly_bracket=False), answer)[0] == "c4: fewer than 5 sentences left"


# --- fineweb ------------------------------------------------------------------------------------


def test_fineweb_drops_a_page_of_short_lines() -> None:
    page = dolma_doc("eeme.ucd.ie/mrbs")  # "Help Rooms Report\nUnknown user\nPlease log in"
    reason, row = verdict(FineWeb(), page)
    assert reason == "fineweb: over 67% of lines are 30 characters or shorter"
    assert row["short_line_ratio"] > 0.67


def test_fineweb_drops_a_page_with_duplicate_lines() -> None:
    page = c4_doc("Access All Records Of 213-484-0480 Now!")
    lines = page.splitlines()
    repeated = "\n".join(lines + lines[:3])
    reason, row = verdict(FineWeb(), repeated)
    assert reason == "fineweb: duplicate lines hold over 1% of characters"
    assert row["char_dup_ratio"] > 0.01


def test_fineweb_drops_a_list() -> None:
    article = split_words(wiki_article("Anarchism is a political philosophy"))
    words = list(dict.fromkeys(w for w in article if len(w) > 5))  # distinct: no duplicate line
    pairs = "\n".join(f"{a} {b}." for a, b in zip(words[:200:2], words[1:200:2], strict=True))
    assert verdict(FineWeb(), pairs)[0] == "fineweb: over 67% of lines are 30 characters or shorter"
    reason, row = verdict(FineWeb(short_line_length=10), pairs)
    assert reason == "fineweb: more than 0.3 newlines per word (a list)"
    assert row["newlines_per_word"] == pytest.approx(99 / 300)


# --- reasons, parameters, the word splitter -------------------------------------------------------


def test_drop_reasons_are_few_and_stable() -> None:
    """Reasons name the rule and its threshold, never a document's own numbers, so the
    curate summary groups them: over 400 real documents give at most one reason per rule."""
    texts = [*c4_docs(), *dolma().values()]
    rules: list[tuple[type[Step], int]] = [
        (GopherQuality, 10),
        (GopherRepetition, 14),
        (C4, 4),
        (FineWeb, 5),
    ]
    for cls, n_rules in rules:
        out = run(cls(), *texts)
        assert out.drop is not None
        reasons = {r for r in out.drop if r is not None}
        assert 1 <= len(reasons) <= n_rules
        assert all(r.startswith(cls.name + ": ") for r in reasons)


def test_parameters_come_from_yaml_and_bad_ones_are_refused() -> None:
    spec = parse_pipeline(
        {
            "steps": [
                {"gopher_quality": {"min_doc_words": 20, "stop_words": ["the", "a"]}},
                {"gopher_repetition": {"top_n_grams": [[2, 0.3]], "dup_n_grams": []}},
                "c4",
                {"fineweb": {"short_line_length": 40}},
            ]
        }
    )
    quality, repetition, c4, fineweb = spec.build()
    assert quality.params()["min_doc_words"] == 20
    assert repetition.params()["top_n_grams"] == [[2, 0.3]]
    assert c4.params()["min_num_sentences"] == 5
    assert fineweb.params()["short_line_length"] == 40
    with pytest.raises(ValueError, match="min_words"):
        parse_pipeline({"steps": [{"gopher_quality": {"min_words": 3}}]}).build()
    with pytest.raises(ValueError, match="pairs"):
        parse_pipeline({"steps": [{"gopher_repetition": {"top_n_grams": [2]}}]}).build()


def test_custom_stop_words() -> None:
    article = wiki_article("Anarchism is a political philosophy")
    _, row = verdict(GopherQuality(stop_words=["anarchism", "zyzzyva"]), article)
    assert row["stop_words"] == 1


def test_the_word_splitter_keeps_what_spacy_keeps_whole() -> None:
    """Punctuation marks are words of their own (as in datatrove's spaCy tokenizer),
    abbreviations, acronyms, numbers and URLs stay whole."""
    assert split_words("Mr. Smith paid $3.50 in the U.S. on 11/02/2006, didn't he?") == [
        "Mr.", "Smith", "paid", "$", "3.50", "in", "the", "U.S.", "on", "11/02/2006", ",",
        "didn", "'t", "he", "?",
    ]  # fmt: skip
    assert split_words("see https://example.com/a-b?c=d).") == [
        "see", "https://example.com/a-b?c=d", ")", ".",
    ]  # fmt: skip


def test_sentences_are_counted_as_spacy_would() -> None:
    line = "Mr. Smith went to Washington, D.C. on Monday. He met J. Doe (e.g. at 5 p.m.). Then he left!"
    assert count_sentences(line) == 3
    assert split_sentences("Wait... what? No!! Fine.") == ["Wait... what?", "No!!", "Fine."]


# --- end to end: import, YAML pipeline, executor ------------------------------------------------


def test_a_yaml_pipeline_over_imported_common_crawl_pages(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "ws")
    report = import_path(workspace, SAMPLES / "dolma_cc_samples", "web")
    assert report.version is not None
    source = report.version
    assert source.row_count == 31
    pipeline = tmp_path / "web.yaml"
    pipeline.write_text(
        "steps:\n"
        "  - language: {languages: [en]}\n"
        "  - gopher_quality: {}\n"
        "  - gopher_repetition: {}\n"
        "  - c4: {}\n"
        "  - fineweb: {}\n"
    )
    result = run_pipeline(
        workspace,
        load_pipeline(pipeline),
        "web",
        "web-clean",
        RunOptions(workers=2, rows_per_task=10),
    )
    assert result.tasks >= 3  # several tasks, two workers
    names = [s.name for s in result.stats]
    assert names == ["language", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
    assert result.stats[0].rows_in == 31
    for before, after in zip(result.stats, result.stats[1:], strict=False):
        assert after.rows_in == before.rows_out
    for s in result.stats:
        assert s.rows_in - s.rows_out == sum(s.dropped.values())
    dropped = sum(sum(s.dropped.values()) for s in result.stats)
    kept = result.output.row_count
    assert kept == result.stats[-1].rows_out and 0 < kept < 31
    assert result.excluded is not None and result.excluded.row_count == dropped
    assert kept + dropped == 31

    quality = result.stats[1].dropped
    assert quality["gopher_quality: under 80% of words have a letter"] >= 5
    assert result.stats[3].counters["lines removed: no terminal punctuation"] > 0

    exclusion = result.excluded.read_attribute("exclusion").to_pylist()
    by_id = {row["id"]: (row["step"], row["reason"]) for row in exclusion}
    booking = [r["id"] for r in result.excluded.table().to_pylist() if "eeme.ucd.ie" in r["id"]]
    assert by_id[booking[0]] == (
        "gopher_quality",
        "gopher_quality: under 80% of words have a letter",
    )

    rows = result.output.table().to_pylist()
    assert {r["language"] for r in rows} == {"en"}
    assert set(result.attributes) == {
        "language", "gopher_quality", "gopher_repetition", "c4", "fineweb",
    }  # fmt: skip
    languages = result.output.read_attribute("language")
    assert languages.num_rows == 31 and set(languages.column_names) == {"id", "language", "score"}
    # c4 rewrote pages: the kept text has no line without terminal punctuation
    for row in rows:
        assert all(line.endswith((".", "!", "?", '"', "'")) for line in row["text"].splitlines())
