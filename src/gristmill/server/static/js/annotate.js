// The annotate page: loads the next record, renders its questions, routes keys, and posts
// answers (submitted / draft / skipped). Server validation errors (422) show per question.

import { api, errorMessages } from "./api.js";
import { clone, deepEqual, h, isTyping } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { renderRecord } from "./record.js";
import { createWidget } from "./widgets.js";
import { setupHelp } from "./help.js";

const root = document.getElementById("annotate-app");
const pid = root.dataset.projectId;
const showSuggestions = root.dataset.showSuggestions !== "false";
const recordPane = document.getElementById("record-pane");
const questionList = document.getElementById("questions");
const statusLine = document.getElementById("status-line");
const actions = document.getElementById("actions");
const buttons = {
  submit: document.getElementById("btn-submit"),
  draft: document.getElementById("btn-draft"),
  skip: document.getElementById("btn-skip"),
};

const state = {
  payload: null,
  cards: [], // {q, card, widget, suggestion, badge, error}
  active: -1,
  busy: false,
  abort: null,
};

export const SHORTCUTS = [
  ["Ctrl + Enter", "Submit and go to the next record"],
  ["Ctrl + S", "Save a draft (stay on this record)"],
  ["Ctrl + Space", "Skip this record"],
  ["Alt + ↓ / Alt + ↑, or J / K", "Next / previous question"],
  ["Tab / Shift + Tab", "Move between questions and their parts"],
  ["1 – 9", "Pick a label; toggle a multi-label; tag the selected text (spans); set a rating or a rank"],
  ["← / →", "Rating: lower / raise the focused dimension"],
  ["↑ / ↓", "Rating: previous / next dimension; ranking: previous / next response"],
  ["Shift + ↑ / ↓", "Ranking: move the focused response up / down"],
  ["Enter", "Ranking: accept the shown order"],
  ["A / B / T", "Preference: A better, B better, tie; 1–3 sets the strength; R writes the reason"],
  ["Backspace", "Spans: remove the last span"],
  ["Esc", "Leave a text box (so number keys work again); close this help"],
  ["?", "Show this help"],
];

const help = setupHelp(SHORTCUTS);

function setStatus(text, kind = "") {
  statusLine.textContent = text;
  statusLine.className = `status-line ${kind}`;
}

function setProgress(p) {
  if (!p) return;
  const el = document.getElementById("progress");
  if (!el) return;
  const pct = p.total ? Math.round((100 * p.done) / p.total) : 0;
  el.querySelector(".count").textContent = `${p.done} / ${p.total}`;
  el.querySelector(".bar > span").style.width = `${pct}%`;
  el.setAttribute("title", `${pct}% done`);
  el.dataset.done = String(p.done);
  el.dataset.total = String(p.total);
}

function setBusy(b) {
  state.busy = b;
  for (const btn of Object.values(buttons)) btn.disabled = b;
}

function activate(i, { focus = false } = {}) {
  if (i < 0 || i >= state.cards.length) return;
  state.active = i;
  state.cards.forEach((c, k) => c.card.classList.toggle("active", k === i));
  if (focus) {
    const c = state.cards[i];
    if (c.q.kind === "text") c.widget.focus();
    else c.card.focus();
    c.card.scrollIntoView({ block: "nearest" });
  }
}

function updateBadge(c) {
  if (!c.badge || !c.suggestion) return;
  const same = deepEqual(c.widget.get(), c.suggestion.value);
  c.badge.classList.toggle("edited", !same);
  c.badge.querySelector(".state").textContent = same ? "Suggestion" : "Edited suggestion";
  c.card.dataset.suggestionState = same ? "accepted" : "edited";
}

function clearErrors() {
  for (const c of state.cards) {
    c.error.textContent = "";
    c.card.classList.remove("invalid");
  }
}

function showErrors(detail) {
  const { byQuestion, general } = errorMessages(detail);
  let first = null;
  for (const c of state.cards) {
    const msgs = byQuestion[c.q.name];
    if (msgs) {
      c.error.textContent = msgs.join(" ");
      c.card.classList.add("invalid");
      first ??= state.cards.indexOf(c);
    }
  }
  const unknown = Object.entries(byQuestion)
    .filter(([name]) => !state.cards.some((c) => c.q.name === name))
    .map(([name, m]) => `${name}: ${m.join(" ")}`);
  const rest = [...unknown, ...general];
  setStatus(rest.length ? rest.join(" · ") : "Please fix the highlighted questions.", "error");
  if (first !== null) activate(first, { focus: true });
}

function buildCard(q, i, payload) {
  const suggestion = showSuggestions || (q.kind === "text" && q.mode === "correct") ? (payload.suggestions || []).find((s) => s.question === q.name) || null : null;
  const c = { q, suggestion };
  const ctx = {
    record: payload.record,
    suggestion,
    signal: state.abort.signal,
    onChange: () => {
      c.error.textContent = "";
      c.card.classList.remove("invalid");
      updateBadge(c);
    },
    activate: () => activate(i),
    flash: (msg) => {
      c.error.textContent = msg;
    },
  };
  c.widget = createWidget(q, ctx);
  let badge = null;
  if (suggestion) {
    const score = typeof suggestion.score === "number" ? ` · ${suggestion.score.toFixed(2)}` : "";
    badge = h(
      "span",
      { class: "suggestion-badge", title: "Pre-filled from a suggestion; accept it as is or edit it" },
      h("span", { class: "state" }, "Suggestion"),
      h("span", { class: "agent" }, `· ${suggestion.agent || "model"}${score}`),
    );
  }
  c.badge = badge;
  c.error = h("div", { class: "q-error", role: "alert", "aria-live": "polite" });
  const head = h(
    "div",
    { class: "q-head" },
    h("span", { class: "q-title" }, q.title || q.name, q.required ? h("span", { class: "req", title: "required" }, "*") : null),
    h("span", { class: "q-kind" }, q.kind.replace("_", " ")),
  );
  let suggRow = null;
  if (badge) {
    const reset = h("button", { type: "button", class: "linklike reset-suggestion", title: "Put the suggestion back", onclick: () => { c.widget.set(clone(suggestion.value)); updateBadge(c); } }, "use suggestion");
    suggRow = h("div", { class: "q-sugg" }, badge, reset);
  }
  c.card = h(
    "section",
    { class: "q", tabindex: "0", dataset: { question: q.name, kind: q.kind }, "aria-label": q.title || q.name },
    head,
    suggRow,
    q.description ? h("div", { class: "q-desc" }, renderMarkdown(q.description)) : null,
    c.widget.el,
    c.error,
  );
  c.card.addEventListener("focusin", () => activate(i));
  c.card.addEventListener("mousedown", (e) => {
    activate(i);
    const sel = window.getSelection();
    // An option button kept the focus off itself: give it to the question instead.
    if (e.defaultPrevented && !(sel && !sel.isCollapsed)) c.card.focus({ preventScroll: true });
  });
  return c;
}

function render(payload) {
  if (state.abort) state.abort.abort();
  state.abort = new AbortController();
  state.payload = payload;
  const draft = payload.draft && payload.draft.values ? payload.draft.values : null;
  state.cards = payload.questions.map((q, i) => buildCard(q, i, payload));
  // The first spans question on the record's text annotates the text in place.
  let surfaceUsed = false;
  let replaceText = null;
  for (const c of state.cards) {
    if (c.q.kind !== "spans" || !c.widget.surface) continue;
    if (!surfaceUsed && (c.q.field || "text") === "text" && payload.record.text) {
      replaceText = c.widget.surface;
      surfaceUsed = true;
    } else {
      c.widget.el.prepend(h("div", { class: "card", style: "margin-top:0.4rem" }, c.widget.surface));
    }
  }
  const rec = payload.record;
  recordPane.replaceChildren(
    h("div", { class: "record-head" }, h("span", { class: "pill" }, rec.kind || "record"), h("span", { class: "rid" }, rec.id)),
    renderRecord(rec, { replaceText }),
  );
  recordPane.scrollTop = 0;
  questionList.replaceChildren(...state.cards.map((c) => c.card));
  for (const c of state.cards) {
    let v = null;
    if (draft && Object.prototype.hasOwnProperty.call(draft, c.q.name)) v = draft[c.q.name];
    else if (c.suggestion) v = clone(c.suggestion.value);
    c.widget.set(v);
    updateBadge(c);
  }
  root.dataset.recordId = rec.id;
  setProgress(payload.progress);
  actions.classList.remove("hidden");
  setStatus(draft ? "Draft restored." : "");
  activate(0, { focus: true });
}

function renderDone() {
  state.cards = [];
  state.payload = null;
  delete root.dataset.recordId;
  recordPane.replaceChildren(
    h(
      "div",
      { class: "empty-state", id: "all-done" },
      h("h1", null, "All done"),
      h("p", { class: "muted" }, "There is nothing left for you in this project right now. Thank you!"),
      h("a", { class: "btn", href: `/projects/${pid}` }, "Back to the project"),
    ),
  );
  questionList.replaceChildren();
  actions.classList.add("hidden");
}

async function loadNext() {
  setBusy(true);
  setStatus("Loading…");
  try {
    const { status, data } = await api("GET", `/api/projects/${pid}/next`);
    if (status === 204 || !data) renderDone();
    else render(data);
  } catch (err) {
    setStatus(`Could not load the next record: ${err.message}`, "error");
  } finally {
    setBusy(false);
  }
}

function collect() {
  const values = {};
  for (const c of state.cards) {
    const v = c.widget.get();
    if (v !== null && v !== undefined) values[c.q.name] = v;
  }
  return values;
}

async function send(status) {
  if (state.busy || !state.payload) return;
  clearErrors();
  const rid = state.payload.record.id;
  const body = { values: status === "skipped" ? {} : collect(), status };
  setBusy(true);
  setStatus(status === "submitted" ? "Submitting…" : status === "draft" ? "Saving draft…" : "Skipping…");
  try {
    const { data } = await api("POST", `/api/projects/${pid}/records/${encodeURIComponent(rid)}/answers`, body);
    if (data && data.progress) setProgress(data.progress);
    if (status === "draft") {
      setStatus(`Draft saved at ${new Date().toLocaleTimeString()}.`, "ok");
      setBusy(false);
      return;
    }
    setBusy(false);
    await loadNext();
    setStatus(status === "submitted" ? "Submitted." : "Skipped.");
  } catch (err) {
    setBusy(false);
    if (err.status === 422) showErrors(err.detail);
    else setStatus(`Not saved: ${err.message}`, "error");
  }
}

function moveQuestion(delta) {
  if (!state.cards.length) return;
  const i = state.active < 0 ? 0 : Math.max(0, Math.min(state.cards.length - 1, state.active + delta));
  activate(i, { focus: true });
}

function onKey(e) {
  if (help.isOpen()) {
    if (e.key === "Escape" || e.key === "?") {
      help.close();
      e.preventDefault();
    }
    return;
  }
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key === "Enter") {
    e.preventDefault();
    send("submitted");
    return;
  }
  if (mod && (e.key === "s" || e.key === "S")) {
    e.preventDefault();
    send("draft");
    return;
  }
  if (mod && (e.key === " " || e.code === "Space")) {
    e.preventDefault();
    send("skipped");
    return;
  }
  if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
    e.preventDefault();
    moveQuestion(e.key === "ArrowDown" ? 1 : -1);
    return;
  }
  if (isTyping(e.target)) {
    if (e.key === "Escape") {
      e.preventDefault();
      const card = e.target.closest(".q");
      (card || document.body).focus();
    }
    return;
  }
  if (e.key === "?") {
    e.preventDefault();
    help.open();
    return;
  }
  if (!state.cards.length || mod) return;
  if (e.key === "j" || e.key === "k") {
    e.preventDefault();
    moveQuestion(e.key === "j" ? 1 : -1);
    return;
  }
  const card = e.target instanceof Element ? e.target.closest(".q") : null;
  let i = card ? state.cards.findIndex((c) => c.card === card) : state.active;
  if (i < 0) i = 0;
  const c = state.cards[i];
  if (c && c.widget.onKey(e)) {
    e.preventDefault();
    activate(i);
  }
}

document.addEventListener("keydown", onKey);
buttons.submit.addEventListener("click", () => send("submitted"));
buttons.draft.addEventListener("click", () => send("draft"));
buttons.skip.addEventListener("click", () => send("skipped"));
document.getElementById("btn-help")?.addEventListener("click", () => help.open());

loadNext();
