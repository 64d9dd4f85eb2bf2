// The review page: lists records where annotators disagree, with every answer and the
// aggregate; the reviewer adjudicates by choosing one or entering a value (POST /resolve).

import { api, errorMessages } from "./api.js";
import { clone, h, isTyping } from "./dom.js";
import { setupHelp } from "./help.js";
import { renderRecord } from "./record.js";
import { createWidget, formatValue } from "./widgets.js";

const root = document.getElementById("review-app");
const pid = root.dataset.projectId;
const list = document.getElementById("review-list");
const onlyBox = document.getElementById("only-disagreements");
const summary = document.getElementById("review-summary");
const items = [];

const help = setupHelp([
  ["J / K", "Next / previous item"],
  ["1 – 9", "Resolve with that annotator's answer"],
  ["G", "Resolve with the aggregate"],
  ["E", "Enter a value yourself"],
  ["Ctrl + Enter", "Resolve with the value you entered"],
  ["Esc", "Leave a text box; close this help"],
  ["?", "Show this help"],
]);

function pct(x) {
  return typeof x === "number" ? x.toFixed(2) : "—";
}

function buildItem(it, index) {
  const q = it.question;
  const rid = it.record.id;
  const status = h("div", { class: "resolved" });
  const error = h("div", { class: "q-error", role: "alert" });
  const card = h("article", { class: "card review-item", tabindex: "0", dataset: { recordId: rid, question: q.name } });
  const entry = { card, it, resolve: null, choose: [], edit: null };

  async function resolve(value, how) {
    error.textContent = "";
    try {
      await api("POST", `/api/projects/${pid}/records/${encodeURIComponent(rid)}/resolve`, { question: q.name, value });
      it.resolved = value;
      showResolved(how);
    } catch (err) {
      if (err.status === 422) {
        const { byQuestion, general } = errorMessages(err.detail);
        error.textContent = [...Object.values(byQuestion).flat(), ...general].join(" ");
      } else error.textContent = `Not saved: ${err.message}`;
    }
  }
  entry.resolve = resolve;

  function showResolved(how) {
    card.classList.add("done");
    card.dataset.resolved = "true";
    status.replaceChildren(
      h("div", { class: "alert ok", style: "margin:0" }, h("b", null, "Resolved"), how ? ` (${how})` : "", ": ", h("span", { class: "value resolved-value" }, formatValue(q, it.resolved))),
    );
  }

  const rows = (it.answers || []).map((a, i) => {
    const btn = h("button", { type: "button", class: "btn small", onclick: () => resolve(clone(a.value), `answer of ${a.annotator}`) }, h("kbd", null, String(i + 1)), " Use");
    entry.choose.push(btn);
    return h("tr", { dataset: { annotator: a.annotator } }, h("td", null, a.annotator), h("td", null, h("div", { class: "value" }, formatValue(q, a.value))), h("td", { class: "num" }, btn));
  });
  const agg = it.aggregate;
  let aggBtn = null;
  if (agg && agg.value !== undefined && agg.value !== null) {
    aggBtn = h("button", { type: "button", class: "btn small", onclick: () => resolve(clone(agg.value), "aggregate") }, h("kbd", null, "G"), " Use");
    rows.push(
      h(
        "tr",
        { class: "aggregate" },
        h("td", null, h("b", null, "Aggregate"), h("div", { class: "muted small" }, `${agg.method || ""}${typeof agg.confidence === "number" ? ` · conf ${pct(agg.confidence)}` : ""}`)),
        h("td", null, h("div", { class: "value" }, formatValue(q, agg.value))),
        h("td", { class: "num" }, aggBtn),
      ),
    );
  }
  entry.aggregate = aggBtn;

  const editorBox = h("div", { class: "editor hidden" });
  let widget = null;
  function openEditor() {
    if (!widget) {
      widget = createWidget(q, { record: it.record, suggestion: null, onChange: () => (error.textContent = ""), activate: () => {}, flash: (m) => (error.textContent = m) });
      widget.set(clone(it.resolved ?? agg?.value ?? null));
      const apply = h("button", { type: "button", class: "btn primary small", onclick: () => resolve(widget.get(), "entered") }, "Resolve with this value ", h("kbd", null, "Ctrl+Enter"));
      editorBox.append(h("div", { class: "section-label" }, "Your value"));
      if (widget.surface) editorBox.append(h("div", { class: "card", style: "margin-bottom:0.5rem" }, widget.surface));
      editorBox.append(widget.el, h("div", { style: "margin-top:0.5rem" }, apply));
      editorBox.addEventListener("keydown", (e) => {
        if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
          e.preventDefault();
          e.stopPropagation();
          resolve(widget.get(), "entered");
        } else if (!isTyping(e.target) && widget.onKey(e)) {
          e.preventDefault();
          e.stopPropagation();
        }
      });
    }
    editorBox.classList.remove("hidden");
    editorBox.tabIndex = -1;
    if (widget.textArea) widget.textArea.focus();
    else editorBox.focus();
  }
  entry.edit = openEditor;
  const editBtn = h("button", { type: "button", class: "btn small", onclick: openEditor }, h("kbd", null, "E"), " Enter a value");

  card.append(
    h(
      "div",
      { class: "ri-head" },
      h("h3", null, q.title || q.name),
      h("span", { class: "pill" }, q.kind),
      h("span", { class: "muted small" }, "record ", h("code", null, rid)),
      h("span", { class: "muted small" }, `agreement ${pct(it.agreement)}`),
    ),
    h(
      "div",
      { class: "ri-grid" },
      h("div", { class: "ri-record" }, renderRecord(it.record, { showMeta: false })),
      h(
        "div",
        null,
        h("table", { class: "data answers" }, h("thead", null, h("tr", null, h("th", null, "Annotator"), h("th", null, "Answer"), h("th", null, ""))), h("tbody", null, rows)),
        h("div", { style: "margin-top:0.5rem" }, editBtn),
        editorBox,
        error,
        status,
      ),
    ),
  );
  if (it.resolved !== null && it.resolved !== undefined) showResolved("earlier");
  card.addEventListener("keydown", (e) => {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (editorBox.contains(e.target) && e.target !== editorBox) return;
    const d = /^\d$/.test(e.key) ? Number(e.key) : null;
    if (d !== null && d >= 1 && d <= entry.choose.length) {
      e.preventDefault();
      entry.choose[d - 1].click();
    } else if (e.key === "g" && aggBtn) {
      e.preventDefault();
      aggBtn.click();
    } else if (e.key === "e") {
      e.preventDefault();
      openEditor();
    }
  });
  card.dataset.index = String(index);
  return entry;
}

async function load() {
  list.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const only = onlyBox.checked ? "true" : "false";
    const { data } = await api("GET", `/api/projects/${pid}/review?only_disagreements=${only}`);
    const its = (data && data.items) || [];
    items.length = 0;
    its.forEach((it, i) => items.push(buildItem(it, i)));
    const open = its.filter((it) => it.resolved === null || it.resolved === undefined).length;
    summary.textContent = `${its.length} item${its.length === 1 ? "" : "s"}, ${open} unresolved`;
    list.replaceChildren(...(items.length ? items.map((e) => e.card) : [h("div", { class: "empty-state", id: "nothing-to-review" }, h("h2", null, "Nothing to review"), h("p", { class: "muted" }, onlyBox.checked ? "No disagreements among submitted answers." : "No answers yet."))]));
    items[0]?.card.focus();
  } catch (err) {
    list.replaceChildren(h("div", { class: "alert error" }, `Could not load the review list: ${err.message}`));
  }
}

document.addEventListener("keydown", (e) => {
  if (help.isOpen()) {
    if (e.key === "Escape" || e.key === "?") {
      e.preventDefault();
      help.close();
    }
    return;
  }
  if (isTyping(e.target)) {
    if (e.key === "Escape") e.target.closest(".review-item")?.focus();
    return;
  }
  if (e.key === "?") {
    e.preventDefault();
    help.open();
  } else if ((e.key === "j" || e.key === "k") && !e.ctrlKey && !e.metaKey) {
    const cur = items.findIndex((x) => x.card.contains(document.activeElement));
    const next = Math.max(0, Math.min(items.length - 1, cur + (e.key === "j" ? 1 : -1)));
    items[next]?.card.focus();
    items[next]?.card.scrollIntoView({ block: "nearest" });
    e.preventDefault();
  }
});
onlyBox.addEventListener("change", load);
document.getElementById("btn-help")?.addEventListener("click", () => help.open());
load();
