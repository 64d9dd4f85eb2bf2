"""The annotation app in a real browser: headless Chromium drives the pages served by the
real app (uvicorn, SQLite), one test per question kind plus login, suggestions, drafts,
skips and validation errors; every test checks what the server stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from app_browser import (
    AppServer,
    app_server,
    browser,
    login,
    mouse_select,
    needs_chromium,
)
from test_app_support import import_sample

pytestmark = [pytest.mark.slow, needs_chromium]
__all__ = ["app_server", "browser"]  # module-scoped fixtures used by the tests below

SPAN_TEXT = (
    "Zoë Müller met 😀 Ålesund's mayor at Ørsted HQ.\nThen she flew to São Paulo — with ACME Corp."
)


def stored(srv: AppServer, pid: int, question: str | None = None) -> list[dict[str, Any]]:
    rows = srv.answers(pid)
    return [r for r in rows if question is None or r["question"] == question]


def wait_record(page: Any, previous: str | None = None) -> str:
    """Wait until a record (other than ``previous``) is shown; returns its id."""
    if previous is None:
        page.wait_for_selector("#annotate-app[data-record-id]")
    else:
        page.wait_for_function(
            "prev => { const r = document.getElementById('annotate-app').dataset.recordId;"
            " return r && r !== prev; }",
            arg=previous,
        )
    return str(page.get_attribute("#annotate-app", "data-record-id"))


def card(name: str) -> str:
    return f".q[data-question={name}]"


def test_login_rejects_a_wrong_password_then_lists_projects(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Login check",
        [{"name": "sentiment", "kind": "label", "labels": ["pos", "neg"]}],
        dataset_ref="amazon@1",
        limit=3,
    )
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(f"{app_server.url}/")
    assert "/login" in page.url  # pages need a session
    page.fill("#username", "alice")
    page.fill("#password", "not-her-password")
    page.click("#login-form button[type=submit]")
    assert page.inner_text("#login-error") == "Wrong username or password."
    page.fill("#username", "alice")
    page.fill("#password", "correct-horse-9")
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    cardsel = f".project-card[data-project-id='{pid}']"
    assert "Login check" in page.inner_text(cardsel)
    assert "0 / 3" in page.inner_text(f"{cardsel} .progress-text")
    assert page.inner_text("#whoami").startswith("alice")
    ctx.close()


def test_label_and_multi_label_by_number_keys_with_suggestions(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Sentiment",
        [
            {
                "name": "sentiment",
                "title": "Sentiment",
                "kind": "label",
                "labels": ["positive", "negative", "neutral"],
            },
            {
                "name": "topics",
                "kind": "multi_label",
                "labels": ["price", "quality", "service"],
                "required": False,
            },
        ],
        dataset_ref="amazon@1",
        limit=3,
    )
    ids = app_server.record_ids("amazon@1", 3)
    app_server.suggest(pid, "sentiment", dict.fromkeys(ids, "positive"), 0.91)
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    first = wait_record(page)
    assert first == ids[0]
    assert page.inner_text("#progress .count") == "0 / 3"
    badge = f"{card('sentiment')} .suggestion-badge"
    assert page.inner_text(badge).replace("\n", " ") == "Suggestion · model:smollm2 · 0.91"
    assert (
        page.get_attribute(f"{card('sentiment')} .opt[data-value=positive]", "aria-checked")
        == "true"
    )
    # Keep the suggestion; tick two topics with the number keys, untick one again.
    page.keyboard.press("Alt+ArrowDown")
    for key in ("1", "3", "1", "2"):
        page.keyboard.press(key)
    page.keyboard.press("Control+Enter")
    second = wait_record(page, first)
    assert page.inner_text("#progress .count") == "1 / 3"
    # Change the suggested label: the badge says it was edited.
    page.keyboard.press("2")
    assert "Edited suggestion" in page.inner_text(badge)
    page.keyboard.press("Control+Enter")
    wait_record(page, second)
    rows = {(r["record_id"], r["question"]): r for r in stored(app_server, pid)}
    assert rows[(first, "sentiment")]["value"] == "positive"
    assert rows[(first, "sentiment")]["accepted_suggestion"] is True
    assert rows[(first, "topics")]["value"] == ["quality", "service"]
    assert rows[(second, "sentiment")]["value"] == "negative"
    assert rows[(second, "sentiment")]["accepted_suggestion"] is False
    assert rows[(second, "topics")]["value"] == []
    assert page.js_errors == []
    page.context.close()


def test_spans_selected_with_the_mouse_keep_exact_offsets_in_non_ascii_text(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Entities",
        [{"name": "entities", "kind": "spans", "labels": ["PER", "ORG", "LOC"], "field": "text"}],
        records=[{"kind": "document", "id": "doc-ner", "text": SPAN_TEXT}],
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    wait_record(page)
    surface = ".span-text[data-question=entities]"
    assert page.inner_text(surface) == SPAN_TEXT  # the record pane shows the exact text
    want = [("Zoë Müller", "PER"), ("Ålesund", "LOC"), ("São Paulo", "LOC"), ("ACME Corp", "ORG")]
    for word, label in want[:3]:
        start = SPAN_TEXT.index(word)
        mouse_select(page, surface, start, start + len(word))
        page.keyboard.press(str(["PER", "ORG", "LOC"].index(label) + 1))
    # The last one with a click on the label instead of its key.
    start = SPAN_TEXT.index("ACME Corp")
    mouse_select(page, surface, start, start + len("ACME Corp"))
    page.click(f"{card('entities')} .opt[data-value=ORG]")
    assert page.locator(f"{surface} mark").count() == 4
    assert page.get_attribute(f"{surface} mark >> nth=0", "data-label") == "PER"
    # A wrong one, removed again with its × button.
    start = SPAN_TEXT.index("mayor")
    mouse_select(page, surface, start, start + len("mayor"))
    page.keyboard.press("1")
    assert page.locator(f"{card('entities')} .span-list li").count() == 5
    page.click(f"{card('entities')} .span-list li[data-label=PER][data-start='{start}'] .remove")
    assert page.locator(f"{card('entities')} .span-list li").count() == 4
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#all-done")
    (row,) = stored(app_server, pid, "entities")
    expected = sorted(
        (
            {
                "start": SPAN_TEXT.index(w),
                "end": SPAN_TEXT.index(w) + len(w),
                "label": lab,
                "text": w,
            }
            for w, lab in want
        ),
        key=lambda s: (s["start"], s["end"]),
    )
    assert row["value"] == expected
    for s in row["value"]:
        assert SPAN_TEXT[s["start"] : s["end"]] == s["text"]
    assert page.js_errors == []
    page.context.close()


def test_text_correction_shows_the_draft_and_stores_the_edit(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Rewrite",
        [{"name": "rewrite", "title": "Rewrite politely", "kind": "text", "mode": "correct"}],
        dataset_ref="amazon@1",
        limit=2,
    )
    ids = app_server.record_ids("amazon@1", 2)
    drafts = ["A converter is needed to use it in the US.", "Good case and excellent value."]
    app_server.suggest(pid, "rewrite", dict(zip(ids, drafts, strict=True)), None)
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    first = wait_record(page)
    area = f"{card('rewrite')} textarea"
    assert page.inner_text(f"{card('rewrite')} .original") == drafts[0]
    assert page.input_value(area) == drafts[0]
    # The textarea has the focus: typing edits the draft (number keys type digits here).
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    page.keyboard.press("End")
    page.keyboard.type(" It has 2 prongs.")
    page.keyboard.press("Control+Enter")
    wait_record(page, first)
    page.keyboard.press("Control+Enter")  # accept the second draft as it is
    page.wait_for_selector("#all-done")
    rows = {r["record_id"]: r for r in stored(app_server, pid, "rewrite")}
    assert rows[ids[0]]["value"] == drafts[0] + " It has 2 prongs."
    assert rows[ids[0]]["accepted_suggestion"] is False
    assert rows[ids[1]]["value"] == drafts[1]
    assert rows[ids[1]]["accepted_suggestion"] is True
    page.context.close()


def test_rating_dimensions_by_keyboard_and_mouse(app_server: AppServer, browser: Any) -> None:
    pid = app_server.create_project(
        "Ratings",
        [
            {
                "name": "overall",
                "kind": "rating",
                "target": "record",
                "dimensions": [
                    {"name": "helpfulness", "min": 1, "max": 7},
                    {"name": "harmlessness", "min": 1, "max": 7},
                ],
            },
            {
                "name": "each",
                "kind": "rating",
                "target": "each_response",
                "dimensions": [{"name": "correct", "min": 1, "max": 5}],
            },
        ],
        dataset_ref="hh@1",
        limit=1,
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    wait_record(page)
    assert page.locator(".response").count() == 2  # side by side
    page.keyboard.press("Tab")  # from the question to its first dimension
    assert page.evaluate("document.activeElement.dataset.dimension") == "helpfulness"
    page.keyboard.press("6")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("3")
    page.keyboard.press("ArrowRight")  # 3 -> 4
    page.keyboard.press("Alt+ArrowDown")  # next question
    page.keyboard.press("5")  # first dimension of response A
    page.click(f"{card('each')} .dim[data-group='1'] .opt[data-value='2']")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#all-done")
    rows = {r["question"]: r["value"] for r in stored(app_server, pid)}
    assert rows["overall"] == {"helpfulness": 6, "harmlessness": 4}
    assert rows["each"] == [{"correct": 5}, {"correct": 2}]
    page.context.close()


def _three_way(rid: str) -> dict[str, Any]:
    prompt = [{"role": "user", "content": f"Name a prime number ({rid})."}]
    return {
        "kind": "preference",
        "id": rid,
        "prompt": prompt,
        "candidates": [
            {"messages": [{"role": "assistant", "content": text}], "model": m}
            for text, m in (
                ("Nine.", "m1"),
                ("Seven is prime.", "m2"),
                ("Two, the only even prime.", "m3"),
            )
        ],
    }


def test_ranking_with_the_keyboard_and_by_drag_and_drop(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Ranking",
        [{"name": "rank", "kind": "ranking"}],
        records=[_three_way("r1"), _three_way("r2")],
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    first = wait_record(page)
    assert page.locator(".response").count() == 3
    item = f"{card('rank')} .rank-item"
    # Keyboard: focus C and give it rank 1, then move A down below B with Shift+↓.
    page.keyboard.press("ArrowDown")  # into the list
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.index") == "2"
    page.keyboard.press("1")
    page.focus(f"{item}[data-index='0']")
    page.keyboard.press("Shift+ArrowDown")
    order = page.eval_on_selector_all(item, "els => els.map(e => e.dataset.index)")
    assert order == ["2", "1", "0"]
    page.keyboard.press("Control+Enter")
    wait_record(page, first)
    # Mouse: drag C onto the top, then B onto the middle.
    page.drag_and_drop(f"{item}[data-index='2']", f"{item}[data-index='0']")
    order = page.eval_on_selector_all(item, "els => els.map(e => e.dataset.index)")
    assert order == ["2", "0", "1"]
    page.drag_and_drop(f"{item}[data-index='1']", f"{item}[data-index='0']")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#all-done")
    rows = {r["record_id"]: r["value"] for r in stored(app_server, pid, "rank")}
    assert rows["r1"] == [3, 2, 1]
    assert rows["r2"] == [3, 2, 1]
    page.context.close()


def test_ranking_ties_by_number_keys_and_rank_buttons(app_server: AppServer, browser: Any) -> None:
    pid = app_server.create_project(
        "Ranking ties",
        [{"name": "rank", "kind": "ranking", "allow_ties": True}],
        records=[_three_way("t1")],
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    wait_record(page)
    item = f"{card('rank')} .rank-item"
    page.focus(f"{item}[data-index='0']")
    page.keyboard.press("3")
    page.focus(f"{item}[data-index='1']")
    page.keyboard.press("1")
    # With the mouse: C's rank button 1. B and C tie for first; A's 3 becomes a dense 2.
    page.click(f"{item}[data-index='2'] .rank-btns button[data-rank='1']")
    assert page.inner_text(f"{item}[data-index='0'] .rank") == "2"
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#all-done")
    (row,) = stored(app_server, pid, "rank")
    assert row["value"] == [2, 1, 1]
    page.context.close()


def test_preference_needs_a_reason_and_shows_the_server_error(
    app_server: AppServer, browser: Any
) -> None:
    pid = app_server.create_project(
        "Preference",
        [
            {
                "name": "pref",
                "title": "Which answer is better?",
                "kind": "preference",
                "require_reason": True,
            }
        ],
        dataset_ref="hh@1",
        limit=1,
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    rid = wait_record(page)
    page.keyboard.press("b")
    page.keyboard.press("3")
    page.keyboard.press("Control+Enter")
    err = f"{card('pref')} .q-error"
    page.wait_for_function(f"document.querySelector('{err}').textContent.length > 0")
    assert page.inner_text(err) == "a reason is required"  # the server's 422 detail
    assert "invalid" in (page.get_attribute(card("pref"), "class") or "")
    assert page.get_attribute("#annotate-app", "data-record-id") == rid  # still here
    assert stored(app_server, pid) == []
    page.keyboard.press("r")  # into the reason box
    page.keyboard.type("B refuses the harmful request.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#all-done")
    (row,) = stored(app_server, pid, "pref")
    assert row["value"] == {
        "choice": "b",
        "strength": 3,
        "reason": "B refuses the harmful request.",
    }
    page.context.close()


def test_draft_is_restored_and_skip_is_stored(app_server: AppServer, browser: Any) -> None:
    pid = app_server.create_project(
        "Drafts",
        [
            {"name": "sentiment", "kind": "label", "labels": ["positive", "negative"]},
            {"name": "note", "kind": "text", "required": False},
        ],
        dataset_ref="amazon@1",
        limit=2,
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    first = wait_record(page)
    page.keyboard.press("2")
    page.keyboard.press("Alt+ArrowDown")
    page.keyboard.type("half done")
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "document.getElementById('status-line').textContent.startsWith('Draft saved')"
    )
    assert [(r["status"], r["question"], r["value"]) for r in stored(app_server, pid)] == [
        ("draft", "sentiment", "negative"),
        ("draft", "note", "half done"),
    ]
    page.reload()
    assert wait_record(page) == first
    assert (
        page.get_attribute(f"{card('sentiment')} .opt[data-value=negative]", "aria-checked")
        == "true"
    )
    assert page.input_value(f"{card('note')} textarea") == "half done"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Space")  # skip
    second = wait_record(page, first)
    assert second != first
    statuses = {r["record_id"]: r["status"] for r in stored(app_server, pid)}
    assert statuses[first] == "skipped"
    page.click("#btn-skip")
    page.wait_for_selector("#all-done")
    assert {r["record_id"]: r["status"] for r in stored(app_server, pid)} == {
        first: "skipped",
        second: "skipped",
    }
    page.context.close()


def test_help_overlay_lists_the_shortcuts(app_server: AppServer, browser: Any) -> None:
    pid = app_server.create_project(
        "Help",
        [{"name": "sentiment", "kind": "label", "labels": ["a", "b"]}],
        dataset_ref="amazon@1",
        limit=1,
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    wait_record(page)
    page.keyboard.press("?")
    text = page.inner_text("#help-overlay")
    for words in ("Submit", "Save a draft", "Skip", "Next / previous question"):
        assert words in text
    page.keyboard.press("1")  # keys do not leak to the question while help is open
    assert page.get_attribute(f"{card('sentiment')} .opt[data-value=a]", "aria-checked") == "false"
    page.keyboard.press("Escape")
    assert page.locator("#help-overlay").count() == 0
    page.context.close()


def test_records_render_chat_tool_calls_and_never_run_html(
    app_server: AppServer, browser: Any
) -> None:
    import_sample(app_server.workspace, "llamafactory_demos/glaive_toolcall_en_demo.json", "tools")
    calls = None
    for rec in app_server.workspace.version("tools@1").iter_records():
        calls = [c for m in rec.messages for c in (m.tool_calls or [])]
        if calls:
            break
    assert calls
    hostile = "# Title\n\n<img src=x onerror=\"document.title='pwned'\">\n\n- **bold** item\n- `code` item"
    pid = app_server.create_project(
        "Display",
        [{"name": "ok", "kind": "label", "labels": ["yes", "no"]}],
        records=[
            rec.model_dump(mode="json") | {"kind": "conversation"},
            {"kind": "document", "id": "md", "text": hostile},
        ],
        settings={"show_suggestions": False},
    )
    page = login(browser, app_server, "alice", f"/projects/{pid}/annotate")
    first = wait_record(page)
    roles = page.eval_on_selector_all("#record-pane .msg", "els => els.map(e => e.dataset.role)")
    assert roles[0] == rec.messages[0].role and "tool" in roles
    call = page.locator("#record-pane .tool-call").first
    assert call.locator(".name").inner_text() == f"→ {calls[0].name}()"
    assert json.loads(call.locator("pre").inner_text()) == json.loads(calls[0].arguments)
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    wait_record(page, first)
    assert page.inner_text("#record-pane .md h1") == "Title"
    assert page.eval_on_selector_all("#record-pane .md li", "els => els.map(e => e.innerHTML)") == [
        "<strong>bold</strong> item",
        "<code>code</code> item",
    ]
    assert page.locator("#record-pane img").count() == 0
    assert "<img src=x" in page.inner_text("#record-pane .md")  # shown as text
    assert page.title() != "pwned"
    page.context.close()
