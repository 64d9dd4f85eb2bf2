"""Quality report API on real sample data with planted problems: each metric finds
exactly what was planted, and nothing on the clean versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_quality_data import (
    N_C4,
    N_GSM8K,
    N_LIMA,
    N_SHAREGPT,
    NOW,
    SHAREGPT_SEVERAL_GROUPS,
    SHAREGPT_SEVERAL_RECORDS,
    c4_rows,
    clean_conversations,
    dpo_rows,
    gsm8k_rows,
    label_studio_media,
    planted_conversations,
    planted_documents,
    planted_eval_items,
    planted_preferences,
    planted_traces,
    tau_rows,
    write,
)

from gristmill.quality import (
    QualityReport,
    ReportOptions,
    build_report,
    compare_reports,
    load_report,
    render_html,
    save_report,
)
from gristmill.quality.checks import (
    ASSISTANT_FIRST,
    SAME_ROLE_TWICE,
    SYSTEM_NOT_FIRST,
    TOOL_WITHOUT_CALL,
    role_order_problems,
)
from gristmill.quality.model import Reason
from gristmill.quality.sketch import ValueSketch
from gristmill.records import Kind
from gristmill.store import Version, Workspace

OPTIONS = ReportOptions(now=NOW)
N_CLEAN = N_LIMA + N_SHAREGPT


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace.init(tmp_path_factory.mktemp("quality") / "ws")


@pytest.fixture(scope="module")
def chats(ws: Workspace) -> tuple[Version, Version]:
    return (
        write(ws, "chat", Kind.CONVERSATION, clean_conversations()),
        write(ws, "chat", Kind.CONVERSATION, planted_conversations()),
    )


@pytest.fixture(scope="module")
def chat_reports(chats: tuple[Version, Version]) -> tuple[QualityReport, QualityReport]:
    return build_report(chats[0], OPTIONS), build_report(chats[1], OPTIONS)


def _reasons(items: list[Reason]) -> dict[str, int]:
    return {r.reason: r.count for r in items}


def test_clean_conversations_have_no_problems(
    chat_reports: tuple[QualityReport, QualityReport],
) -> None:
    clean, _ = chat_reports
    assert clean.records == N_CLEAN
    assert clean.errors.records == 0 and clean.errors.reasons == []
    assert clean.coherence.records_with_problems == 0 and clean.coherence.index == 1.0
    assert clean.duplicates.duplicate_records == 0 and clean.duplicates.duplicate_ids == 0
    assert clean.freshness.stale_records == 0
    assert clean.freshness.median_age_days == 10
    assert clean.completeness.required_complete_rate == 1.0
    several = clean.coherence.prompts_with_several_answers
    assert (several.groups, several.records) == (SHAREGPT_SEVERAL_GROUPS, SHAREGPT_SEVERAL_RECORDS)
    assert clean.languages[0].value == "en" and clean.languages[0].count == N_CLEAN


def test_planted_conversation_problems_are_found_exactly(
    chat_reports: tuple[QualityReport, QualityReport],
) -> None:
    _, report = chat_reports
    n = N_CLEAN + 4
    assert report.records == n

    # error rate: only the empty assistant reply
    assert report.errors.records == 1
    assert report.errors.rate == pytest.approx(1 / n)
    assert _reasons(report.errors.reasons) == {"empty assistant reply": 1}
    assert report.errors.reasons[0].examples == ["planted-empty-reply"]

    # completeness: one conversation has a message with no content
    fields = {f.field: f for f in report.completeness.fields}
    assert fields["messages[].content"].present == n - 1
    assert fields["messages"].present == n
    assert (
        fields["task_category"].present == N_LIMA // 2 + N_SHAREGPT + 3
    )  # 3 planted from even LIMA rows
    assert report.completeness.required_complete_rate == pytest.approx((n - 1) / n)

    # coherence: assistant first and the French answer, one record each
    problems = _reasons(report.coherence.problems)
    assert problems == {
        ASSISTANT_FIRST: 1,
        "language mismatch between user and assistant turns": 1,
    }
    assert report.coherence.records_with_problems == 2
    assert report.coherence.index == pytest.approx(1 - 2 / n)
    assert [(s.value, s.count) for s in report.coherence.language_pairs] == [("en→fr", 1)]
    several = report.coherence.prompts_with_several_answers
    assert (several.groups, several.records) == (SHAREGPT_SEVERAL_GROUPS, SHAREGPT_SEVERAL_RECORDS)

    # freshness: one record from 2015
    assert report.freshness.stale_records == 1
    assert report.freshness.stale_rate == pytest.approx(1 / n)
    assert report.freshness.oldest is not None and report.freshness.oldest.year == 2015
    assert report.freshness.median_age_days == 10

    # duplicates: one copied record, one reused id
    dup = report.duplicates
    assert (dup.duplicate_records, dup.duplicate_groups) == (1, 1)
    assert dup.examples == [["lima-0", "planted-duplicate"]]
    assert (dup.duplicate_ids, dup.duplicate_id_groups, dup.id_examples) == (1, 1, ["lima-5"])
    assert "DuckDB" in dup.method


def test_lengths_and_mixes(chat_reports: tuple[QualityReport, QualityReport]) -> None:
    clean, _ = chat_reports
    parts = [s.part for s in clean.lengths]
    assert parts == ["record", "user", "assistant"]
    user, assistant = clean.length("user"), clean.length("assistant")
    assert user is not None and assistant is not None
    assert user.tokens.count == assistant.tokens.count  # one answer per question
    assert assistant.tokens.p50 > user.tokens.p50  # answers are longer than questions
    assert sum(user.tokens_histogram.counts) == user.tokens.count
    assert clean.structure["turns"].min == 2
    categories = {s.value: s.count for s in clean.task_categories}
    assert categories == {"open_qa": N_LIMA // 2, "unlabelled": N_LIMA // 2, "chat": N_SHAREGPT}
    assert {s.value: s.count for s in clean.origins} == {
        "import:lima": N_LIMA,
        "import:sharegpt": N_SHAREGPT,
    }
    assert clean.tokenizer.startswith("regex")


def test_regex_token_counts_are_words_and_punctuation(ws: Workspace) -> None:
    version = write(
        ws, "tiny", Kind.DOCUMENT, [dict(c4_rows(1)[0], text="Hello, world! It's 3pm.")]
    )
    report = build_report(version, OPTIONS)
    record = report.length("record")
    assert record is not None
    # Hello , world ! It ' s 3pm .
    assert record.tokens.p50 == 9 and record.chars.p50 == len("Hello, world! It's 3pm.")


def test_documents_errors_completeness_freshness(ws: Workspace) -> None:
    version = write(ws, "docs", Kind.DOCUMENT, planted_documents())
    report = build_report(version, ReportOptions())  # ages against the real clock
    n = N_C4 + 2
    assert report.records == n
    assert _reasons(report.errors.reasons) == {
        "invalid text: String should have at least 1 character": 1,
        "blank text": 1,
    }
    fields = {f.field: f for f in report.completeness.fields}
    assert fields["text"].present == n - 2
    assert fields["title"].present == 0 and fields["url"].present == 0
    assert fields["created_at"].present == n - 1
    assert report.freshness.undated == 1
    assert report.freshness.import_stamped == 1
    assert report.freshness.stale_records == 0
    # the two planted texts repeat no content; the c4 sample has no duplicates
    assert report.duplicates.duplicate_records == 0
    assert {s.value for s in report.domains} == {"web"}
    assert report.languages[0].value == "en"


def test_eval_items_conflicting_references(ws: Workspace) -> None:
    clean = build_report(write(ws, "gsm", Kind.EVAL_ITEM, gsm8k_rows()), OPTIONS)
    assert clean.errors.records == 0 and clean.coherence.records_with_problems == 0
    assert clean.coherence.conflicts.groups == 0

    report = build_report(write(ws, "gsm", Kind.EVAL_ITEM, planted_eval_items()), OPTIONS)
    assert report.records == N_GSM8K + 4
    conflicts = report.coherence.conflicts
    assert (conflicts.groups, conflicts.records) == (1, 2)
    assert conflicts.examples == [["gsm8k-0", "planted-conflict"]]
    assert _reasons(report.coherence.problems) == {"same input, different references": 2}
    assert report.coherence.records_with_problems == 2
    assert _reasons(report.errors.reasons) == {
        "answer_index out of range": 1,
        "choices but no answer": 1,
    }
    # the copy repeats gsm8k-1 exactly: a duplicate, not a conflict
    assert report.duplicates.duplicate_records == 1
    assert report.duplicates.examples == [["gsm8k-1", "planted-copy"]]


def test_report_json_is_stored_with_the_version(
    chats: tuple[Version, Version], chat_reports: tuple[QualityReport, QualityReport]
) -> None:
    version, report = chats[0], chat_reports[0]
    path = save_report(version, report)
    assert path == version.path / "report.json" == version.report_json
    again = load_report(version)
    assert again == report
    assert QualityReport.model_validate_json(path.read_text()).errors == report.errors


def test_compare_shows_the_planted_change(
    chat_reports: tuple[QualityReport, QualityReport],
) -> None:
    comparison = compare_reports(*chat_reports)
    assert (comparison.a, comparison.b) == ("chat@1", "chat@2")
    records = comparison.change("size", "records")
    assert records is not None and records.delta == 4
    dup = comparison.change("duplicates", "duplicate records")
    assert dup is not None and (dup.a, dup.b, dup.delta, dup.improved) == (0, 1, 1, False)
    reason = comparison.change("error reasons", "empty assistant reply")
    assert reason is not None and (reason.a, reason.b) == (0, 1)
    first = comparison.change("coherence problems", ASSISTANT_FIRST)
    assert first is not None and first.delta == 1
    index = comparison.change("coherence", "coherence index")
    assert (
        index is not None
        and index.delta is not None
        and index.delta < 0
        and index.improved is False
    )
    assert not comparison.options_differ


def test_html_is_self_contained_with_plots(
    chat_reports: tuple[QualityReport, QualityReport], tmp_path: Path
) -> None:
    comparison = compare_reports(*chat_reports)
    page = render_html(chat_reports[1], comparison)
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    for alt in (
        "token length histograms",
        "languages bar chart",
        "task categories bar chart",
        "age histogram",
        "comparison of headline rates",
    ):
        assert f'alt="{alt}" src="data:image/png;base64,' in page
    assert "planted-duplicate" in page and "Comparison: chat@1 → chat@2" in page


def test_role_order_rules() -> None:
    def msgs(*roles: str) -> list[dict[str, Any]]:
        return [{"role": r, "content": "x"} for r in roles]

    assert role_order_problems(msgs("system", "user", "assistant")) == []
    assert role_order_problems(msgs("assistant", "user", "assistant")) == [ASSISTANT_FIRST]
    assert role_order_problems(msgs("user", "user", "assistant")) == [SAME_ROLE_TWICE]
    assert role_order_problems(msgs("user", "system", "assistant")) == [SYSTEM_NOT_FIRST]
    assert role_order_problems(msgs("user", "tool", "assistant")) == [TOOL_WITHOUT_CALL]
    called: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "w", "arguments": "{}"}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "tool", "content": "rain", "tool_call_id": "c9"},
    ]
    assert role_order_problems(called[:3]) == []
    assert role_order_problems(called) == [TOOL_WITHOUT_CALL]


def test_value_sketch_percentiles() -> None:
    sketch = ValueSketch()
    for v in range(1, 101):
        sketch.add(v)
    assert (sketch.percentile(50), sketch.percentile(95), sketch.percentile(100)) == (50, 95, 100)
    summary = sketch.summary()
    assert summary.mean == pytest.approx(50.5) and summary.min == 1
    big = ValueSketch()
    for v in (10_000, 20_000, 30_000):
        big.add(v)
    assert big.percentile(50) == pytest.approx(20_000, rel=0.005)


def test_hf_tokenizer_from_a_local_file(ws: Workspace, tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    rows = c4_rows(20)
    model = tokenizers.models.WordLevel(unk_token="[UNK]")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]"])
    tok.train_from_iterator([r["text"] for r in rows], trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    version = write(ws, "hf", Kind.DOCUMENT, rows)
    report = build_report(version, ReportOptions(now=NOW, tokenizer=str(tmp_path)))
    record = report.length("record")
    assert report.tokenizer == f"hf {path}"
    assert record is not None and record.tokens.min > 0
    # Whitespace pre-tokenizer splits like \w+|[^\w\s] except runs of punctuation
    regex = build_report(version, OPTIONS).length("record")
    assert regex is not None and record.tokens.max <= regex.tokens.max


def test_preferences_identical_candidates_and_swapped_ranks(ws: Workspace) -> None:
    clean = build_report(write(ws, "dpo", Kind.PREFERENCE, dpo_rows()), OPTIONS)
    assert clean.errors.records == 0 and clean.coherence.records_with_problems == 0
    report = build_report(write(ws, "dpo", Kind.PREFERENCE, planted_preferences()), OPTIONS)
    assert _reasons(report.errors.reasons) == {"candidates all identical": 1}
    assert _reasons(report.coherence.problems) == {
        "same prompt and candidates, different rankings": 2
    }
    assert report.coherence.conflicts.examples == [["dpo-0", "planted-swapped"]]
    assert {s.part for s in report.lengths} == {"record", "prompt", "candidate"}


def test_agent_traces_no_steps_and_orphan_tool_results(ws: Workspace) -> None:
    clean = build_report(write(ws, "tau", Kind.AGENT_TRACE, tau_rows()), OPTIONS)
    assert clean.errors.records == 0 and clean.coherence.records_with_problems == 0
    report = build_report(write(ws, "tau", Kind.AGENT_TRACE, planted_traces()), OPTIONS)
    assert _reasons(report.errors.reasons) == {"no steps": 1}
    assert _reasons(report.coherence.problems) == {TOOL_WITHOUT_CALL: 1}
    assert report.coherence.problems[0].examples == ["planted-orphan-result"]
    steps = {f.field: f.present for f in report.completeness.fields}["steps"]
    assert steps == report.records - 1
    assert {s.value for s in report.origins} == {"model:gpt-4o"}


def test_media_conflicting_labels_and_bad_box(ws: Workspace) -> None:
    report = build_report(write(ws, "media", Kind.MEDIA, label_studio_media()), OPTIONS)
    assert _reasons(report.errors.reasons) == {"box with non-positive size": 1}
    assert _reasons(report.coherence.problems) == {"same uri, different labels": 2}
    assert report.freshness.oldest is not None and report.freshness.oldest.year == 2024
