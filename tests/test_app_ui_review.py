"""Reviewer pages in a real browser: the project overview (progress per annotator,
agreement, suggestion agreement) and adjudicating disagreements on the review page."""

from __future__ import annotations

from typing import Any

import pytest
from app_browser import AppServer, app_server, browser, login, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]
__all__ = ["app_server", "browser"]

QUESTIONS = [
    {
        "name": "sentiment",
        "title": "Sentiment",
        "kind": "label",
        "labels": ["positive", "negative", "neutral"],
    },
    {"name": "why", "title": "Why?", "kind": "text"},
]


@pytest.fixture(scope="module")
def disputed(app_server: AppServer) -> tuple[int, list[str]]:
    """alice and bob answer the same three records: they disagree on the first (label and
    text) and the second (text only); the third is a gold task that bob gets wrong."""
    pid = app_server.create_project(
        "Disputed", QUESTIONS, dataset_ref="amazon@1", limit=3, settings={"overlap": 2}
    )
    ids = app_server.record_ids("amazon@1", 3)
    alice = [("negative", "no plug"), ("positive", "good value"), ("positive", "great")]
    bob = [("neutral", "a fact"), ("positive", "cheap and good"), ("neutral", "great")]
    app_server.suggest(pid, "sentiment", dict.fromkeys(ids, "positive"), 0.7)
    # The third record is a gold task: alice gets it right, bob does not.
    r = app_server.api().post(
        f"/api/projects/{pid}/gold", json={"gold": {ids[2]: {"sentiment": "positive"}}}
    )
    assert r.status_code == 200, r.text
    for user, answers in (("alice", alice), ("bob", bob)):
        for rid, (label, why) in zip(ids, answers, strict=True):
            app_server.answer(pid, user, rid, {"sentiment": label, "why": why})
    return pid, ids


def test_project_page_shows_progress_agreement_and_links(
    app_server: AppServer, browser: Any, disputed: tuple[int, list[str]]
) -> None:
    pid, _ = disputed
    page = login(browser, app_server, "rita", f"/projects/{pid}")
    assert page.inner_text("#stat-completed") == "2 / 2"  # gold tasks are not counted
    rows = page.eval_on_selector_all(
        "#annotator-table tbody tr",
        "trs => trs.map(tr => Array.from(tr.cells).map(c => c.textContent.trim()))",
    )
    # name, submitted, skipped, drafts, (bar), gold accuracy: bob missed the gold task.
    assert [r[:4] + r[5:] for r in rows] == [
        ["alice", "3", "0", "0", "100%"],
        ["bob", "3", "0", "0", "0%"],
    ]
    cells = page.eval_on_selector_all(
        "#agreement-table tr[data-question=sentiment] td",
        "tds => tds.map(td => td.textContent.trim())",
    )
    assert cells[0:2] == ["sentiment", "label"] and cells[4] == "2"  # two regular records
    assert -1.0 <= float(cells[2]) < 1.0  # they disagree on one of the two
    # Both kept the suggestion on half of their answers.
    suggestion = "#suggestion-table tr[data-question=sentiment] td.num >> nth=0"
    assert page.inner_text(suggestion) == "50%"
    assert page.get_attribute("#link-review", "href") == f"/projects/{pid}/review"
    assert page.get_attribute("#link-annotate", "href") == f"/projects/{pid}/annotate"
    page.context.close()
    # An annotator gets no review link.
    page = login(browser, app_server, "alice", f"/projects/{pid}")
    assert page.locator("#link-review").count() == 0
    page.context.close()


def test_reviewer_adjudicates_by_choosing_an_answer_and_by_entering_a_value(
    app_server: AppServer, browser: Any, disputed: tuple[int, list[str]]
) -> None:
    pid, ids = disputed
    page = login(browser, app_server, "rita", f"/projects/{pid}/review")
    page.wait_for_selector(".review-item")
    shown = page.eval_on_selector_all(
        ".review-item", "els => els.map(e => [e.dataset.recordId, e.dataset.question])"
    )
    # The third record has full agreement, so only the first two appear, both questions each.
    assert sorted(map(tuple, shown)) == sorted(
        [(ids[0], "sentiment"), (ids[0], "why"), (ids[1], "why")]
    )
    item = f".review-item[data-record-id='{ids[0]}'][data-question=sentiment]"
    answers = page.eval_on_selector_all(f"{item} tbody tr", "trs => trs.map(tr => tr.textContent)")
    assert any("alice" in a and "negative" in a for a in answers)
    assert any("bob" in a and "neutral" in a for a in answers)
    assert any("Aggregate" in a for a in answers)
    # Keyboard: focus the item and press 2 to take bob's answer.
    page.focus(item)
    page.keyboard.press("2")
    page.wait_for_selector(f"{item}[data-resolved=true]")
    assert "neutral" in page.inner_text(f"{item} .resolved-value")
    # Enter a value yourself for the text question.
    why = f".review-item[data-record-id='{ids[1]}'][data-question=why]"
    page.click(f"{why} button:has-text('Enter a value')")
    page.fill(f"{why} .editor textarea", "cheap and good value")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"{why}[data-resolved=true]")
    r = app_server.api("rita").get(
        f"/api/projects/{pid}/review", params={"only_disagreements": "false"}
    )
    resolved = {
        (i["record"]["id"], i["question"]["name"]): i["resolved"] for i in r.json()["items"]
    }
    assert resolved[(ids[0], "sentiment")] == "neutral"
    assert resolved[(ids[1], "why")] == "cheap and good value"
    assert resolved[(ids[0], "why")] is None
    # After a reload the resolution is still shown.
    page.reload()
    page.wait_for_selector(f"{item}[data-resolved=true]")
    assert page.js_errors == []
    page.context.close()


def test_annotators_cannot_open_the_review_page(
    app_server: AppServer, browser: Any, disputed: tuple[int, list[str]]
) -> None:
    pid, _ = disputed
    page = login(browser, app_server, "alice", "/")
    response = page.goto(f"{app_server.url}/projects/{pid}/review")
    assert response is not None and response.status == 403
    assert page.inner_text("#error-page h1") == "Not allowed"
    assert "reviewer" in page.inner_text("#error-message")
    assert page.locator("#review-app").count() == 0
    page.context.close()
