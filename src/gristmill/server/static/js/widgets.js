// One widget per question kind. Each widget is a plain object:
//   el            the element placed in the question card
//   get()         the answer value as the API expects it (null = unanswered)
//   set(value)    show a value (a draft, a suggestion, or null to clear)
//   onKey(event)  handle a key while the question is active; true when handled
//   focus()       move the keyboard focus to the widget's natural start
//   surface       (spans only) the annotatable text element, shown in the record pane
// Widgets call ctx.onChange() whenever the user changes the value.

import { clone, h, letter } from "./dom.js";
import { fieldText } from "./record.js";

/** Digit pressed (from the physical key, so Shift+1 still reads 1), or null. */
export function digitOf(e) {
  const m = /^(?:Digit|Numpad)(\d)$/.exec(e.code || "");
  if (m) return Number(m[1]);
  return /^\d$/.test(e.key) ? Number(e.key) : null;
}

function keyHint(i) {
  return i < 9 ? String(i + 1) : null;
}

function optionButton(text, key, attrs) {
  const b = h(
    "button",
    { type: "button", class: "opt", tabindex: "-1", ...attrs },
    key ? h("span", { class: "key" }, key) : null,
    h("span", { class: "opt-text" }, text),
  );
  // Clicking an option must not move the focus onto it: the question (or the text
  // selection, for spans) keeps it, so number keys and Ctrl+Space keep working.
  b.addEventListener("mousedown", (e) => e.preventDefault());
  return b;
}

// ---------------------------------------------------------------- label, multi_label

function labelWidget(q, ctx, multi) {
  let value = multi ? [] : null;
  const buttons = q.labels.map((lab, i) =>
    optionButton(lab, keyHint(i), {
      role: multi ? "checkbox" : "radio",
      "aria-checked": "false",
      dataset: { value: lab },
      onclick: () => pick(lab),
    }),
  );
  const el = h("div", { class: "options", role: multi ? "group" : "radiogroup" }, buttons);
  function render() {
    buttons.forEach((b, i) => {
      const on = multi ? value.includes(q.labels[i]) : value === q.labels[i];
      b.setAttribute("aria-checked", String(on));
    });
  }
  function pick(lab) {
    if (multi) value = value.includes(lab) ? value.filter((x) => x !== lab) : [...value, lab];
    else value = value === lab ? null : lab;
    render();
    ctx.onChange();
  }
  return {
    el,
    get: () => (multi ? q.labels.filter((l) => value.includes(l)) : value),
    set(v) {
      value = multi ? (Array.isArray(v) ? [...v] : []) : v ?? null;
      render();
    },
    onKey(e) {
      const d = digitOf(e);
      if (d !== null && !e.ctrlKey && !e.metaKey && !e.altKey && d >= 1 && d <= q.labels.length) {
        pick(q.labels[d - 1]);
        return true;
      }
      return false;
    },
    focus() {},
  };
}

// ---------------------------------------------------------------- spans

const PALETTE = [
  ["#fff1b8", "#8a6500"],
  ["#d9ecff", "#1f5fa8"],
  ["#e3f4d9", "#2f7a1f"],
  ["#fde2e4", "#a3263a"],
  ["#efe3ff", "#6a37b3"],
  ["#ffe8d1", "#a55300"],
  ["#d8f3f0", "#11756b"],
  ["#eceff3", "#4a5566"],
];

/** Map code point index -> UTF-16 index for `text` (length = code points + 1). */
function codePointIndex(text) {
  const map = [0];
  let u = 0;
  for (const ch of text) {
    u += ch.length;
    map.push(u);
  }
  return map;
}

function spansWidget(q, ctx) {
  const text = fieldText(ctx.record, q.field) ?? "";
  const cp = codePointIndex(text);
  const colour = (lab) => PALETTE[Math.max(0, q.labels.indexOf(lab)) % PALETTE.length];
  let spans = [];
  let pending = null; // {start, end} in code points

  const surface = h("div", { class: "span-text", dataset: { question: q.name, field: q.field || "text" } });
  const list = h("ul", { class: "span-list" });
  const hint = h("div", { class: "span-hint" }, "Select text with the mouse, then press a label's number or click the label.");
  const buttons = q.labels.map((lab, i) => {
    const [bg, fg] = colour(lab);
    const b = optionButton(lab, keyHint(i), { dataset: { value: lab }, onclick: () => tag(lab) });
    b.style.setProperty("--span-bg", bg);
    b.style.setProperty("--span-fg", fg);
    return b;
  });
  if (!text) hint.textContent = "This record has no text to mark.";
  const el = h("div", null, h("div", { class: "options" }, buttons), hint, list);

  /** Code point offset of a DOM boundary inside the surface. */
  function offsetOf(node, offset) {
    const r = document.createRange();
    r.setStart(surface, 0);
    r.setEnd(node, offset);
    const u16 = r.toString().length;
    let lo = 0;
    while (lo < cp.length - 1 && cp[lo + 1] <= u16) lo++;
    return lo;
  }

  function readSelection() {
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    const r = sel.getRangeAt(0);
    if (!surface.contains(r.startContainer) || !surface.contains(r.endContainer)) return null;
    let start = offsetOf(r.startContainer, r.startOffset);
    let end = offsetOf(r.endContainer, r.endOffset);
    const chars = Array.from(text);
    while (start < end && /\s/.test(chars[start])) start++;
    while (end > start && /\s/.test(chars[end - 1])) end--;
    return end > start ? { start, end } : null;
  }

  document.addEventListener(
    "selectionchange",
    () => {
      const s = readSelection();
      if (s) pending = s;
      else {
        const sel = window.getSelection();
        if (sel && sel.rangeCount && surface.contains(sel.anchorNode)) pending = null;
      }
    },
    ctx.signal ? { signal: ctx.signal } : undefined,
  );
  surface.addEventListener("mouseup", () => {
    const s = readSelection();
    if (s) {
      pending = s;
      ctx.activate();
    }
  });

  function tag(lab) {
    const s = readSelection() || pending;
    if (!s) {
      ctx.flash("Select some text first, then choose a label.");
      return;
    }
    const t = Array.from(text).slice(s.start, s.end).join("");
    if (!spans.some((x) => x.start === s.start && x.end === s.end && x.label === lab)) {
      spans.push({ start: s.start, end: s.end, label: lab, text: t });
      spans.sort((a, b) => a.start - b.start || a.end - b.end);
    }
    pending = null;
    window.getSelection()?.removeAllRanges();
    render();
    ctx.onChange();
  }

  function remove(idx) {
    spans.splice(idx, 1);
    render();
    ctx.onChange();
  }

  function render() {
    // Text nodes only carry the record's characters; labels come from CSS (::after), so
    // the DOM text equals the source text and offsets stay exact.
    surface.replaceChildren();
    const cuts = new Set([0, text.length]);
    for (const s of spans) {
      cuts.add(cp[Math.min(s.start, cp.length - 1)]);
      cuts.add(cp[Math.min(s.end, cp.length - 1)]);
    }
    const bounds = [...cuts].sort((a, b) => a - b);
    const u16ToCp = (u) => cp.indexOf(u);
    for (let k = 0; k < bounds.length - 1; k++) {
      const [a, b] = [bounds[k], bounds[k + 1]];
      if (a === b) continue;
      const piece = text.slice(a, b);
      const ca = u16ToCp(a);
      const cb = u16ToCp(b);
      const covering = spans.filter((s) => s.start <= ca && s.end >= cb);
      if (!covering.length) {
        surface.append(document.createTextNode(piece));
        continue;
      }
      const inner = covering.reduce((x, y) => (y.end - y.start < x.end - x.start ? y : x));
      const [bg, fg] = colour(inner.label);
      const mark = h("mark", { dataset: { start: String(inner.start), end: String(inner.end) } }, piece);
      if (cb === inner.end) mark.dataset.label = inner.label;
      mark.style.setProperty("--span-bg", bg);
      mark.style.setProperty("--span-fg", fg);
      surface.append(mark);
    }
    list.replaceChildren(
      ...spans.map((s, idx) => {
        const [bg, fg] = colour(s.label);
        const chip = h("span", { class: "chip" }, s.label);
        chip.style.setProperty("--span-bg", bg);
        chip.style.setProperty("--span-fg", fg);
        return h(
          "li",
          { dataset: { start: String(s.start), end: String(s.end), label: s.label } },
          chip,
          h("span", { class: "span-str" }, `“${s.text}”`),
          h("span", { class: "muted small" }, `${s.start}–${s.end}`),
          h("button", { type: "button", class: "remove", title: "Remove this span", "aria-label": `Remove ${s.label} ${s.text}`, onclick: () => remove(idx) }, "×"),
        );
      }),
    );
  }
  render();

  return {
    el,
    surface,
    get: () => spans.map((s) => ({ ...s })),
    set(v) {
      spans = Array.isArray(v)
        ? v.map((s) => ({ start: s.start, end: s.end, label: s.label, text: s.text ?? Array.from(text).slice(s.start, s.end).join("") }))
        : [];
      render();
    },
    onKey(e) {
      const d = digitOf(e);
      if (d !== null && !e.ctrlKey && !e.metaKey && !e.altKey && d >= 1 && d <= q.labels.length) {
        tag(q.labels[d - 1]);
        return true;
      }
      if ((e.key === "Backspace" || e.key === "Delete") && spans.length) {
        remove(spans.length - 1);
        return true;
      }
      return false;
    },
    focus() {},
  };
}

// ---------------------------------------------------------------- text

function textWidget(q, ctx) {
  const area = h("textarea", { rows: q.mode === "correct" ? "7" : "5", "aria-label": q.title || q.name, dataset: { question: q.name } });
  area.addEventListener("input", () => ctx.onChange());
  const original = h("div", { class: "original", "aria-label": "Model draft (read-only)" });
  const wrap =
    q.mode === "correct"
      ? h("div", { class: "text-correct" }, h("div", null, h("div", { class: "section-label" }, "Model draft"), original), h("div", null, h("div", { class: "section-label" }, "Your correction"), area))
      : h("div", null, area);
  if (q.mode === "correct") {
    const s = ctx.suggestion;
    original.textContent = s && typeof s.value === "string" ? s.value : "(no draft for this record)";
  }
  return {
    el: wrap,
    get: () => (area.value.trim() === "" ? null : area.value),
    set(v) {
      area.value = typeof v === "string" ? v : "";
    },
    onKey: () => false,
    focus: () => area.focus(),
    textArea: area,
  };
}

// ---------------------------------------------------------------- rating

function ratingWidget(q, ctx) {
  const nResp = (ctx.record.responses || []).length;
  const perResponse = q.target === "each_response";
  const groups = perResponse ? Array.from({ length: nResp }, (_, i) => i) : [null];
  let values = groups.map(() => ({}));
  const rows = [];
  let typed = "";
  let typedTimer = null;

  const el = h("div", { class: "rating" });
  groups.forEach((g, gi) => {
    const box = h("div", { class: "rating-group" });
    if (g !== null) box.append(h("div", { class: "section-label" }, `Response ${letter(g)}`));
    const dims = h("div", { class: "dims" });
    for (const dim of q.dimensions) {
      const scale = h("div", { class: "scale" });
      for (let v = dim.min; v <= dim.max; v++) {
        scale.append(
          optionButton(String(v), null, {
            role: "radio",
            "aria-checked": "false",
            dataset: { value: String(v) },
            onclick: () => {
              setDim(gi, dim, v);
              row.focus();
            },
          }),
        );
      }
      const row = h(
        "div",
        { class: "dim", tabindex: "0", role: "radiogroup", "aria-label": `${dim.name}${g !== null ? ` for response ${letter(g)}` : ""} (${dim.min}–${dim.max})`, dataset: { dimension: dim.name, group: String(gi) } },
        h("div", { class: "dname" }, dim.name, h("small", null, `${dim.description ? dim.description + " · " : ""}${dim.min}–${dim.max}`)),
        scale,
      );
      if (dim.max - dim.min + 1 > 7) row.classList.add("wide-scale");
      row._dim = dim;
      row._group = gi;
      rows.push(row);
      dims.append(row);
    }
    box.append(dims);
    el.append(box);
  });

  function render() {
    for (const row of rows) {
      const cur = values[row._group][row._dim.name];
      row.querySelectorAll(".opt").forEach((b) => b.setAttribute("aria-checked", String(Number(b.dataset.value) === cur)));
    }
  }
  function setDim(gi, dim, v) {
    if (v < dim.min || v > dim.max) return false;
    values[gi][dim.name] = v;
    render();
    ctx.onChange();
    return true;
  }
  function currentRow() {
    return rows.find((r) => r === document.activeElement || r.contains(document.activeElement)) || null;
  }

  return {
    el,
    get() {
      if (perResponse) return values.some((v) => Object.keys(v).length) ? values.map((v) => ({ ...v })) : null;
      return Object.keys(values[0]).length ? { ...values[0] } : null;
    },
    set(v) {
      if (perResponse) values = groups.map((_, i) => (Array.isArray(v) && v[i] ? { ...v[i] } : {}));
      else values = [v && typeof v === "object" && !Array.isArray(v) ? { ...v } : {}];
      render();
    },
    onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      let row = currentRow();
      const idx = row ? rows.indexOf(row) : -1;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        const next = rows[Math.max(0, Math.min(rows.length - 1, idx + (e.key === "ArrowDown" ? 1 : -1)))];
        next?.focus();
        return true;
      }
      const d = digitOf(e);
      if (d === null && e.key !== "ArrowRight" && e.key !== "ArrowLeft") return false;
      if (!row) {
        row = rows[0];
        row?.focus();
      }
      if (!row) return false;
      const dim = row._dim;
      const cur = values[row._group][dim.name];
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        const base = cur ?? (e.key === "ArrowRight" ? dim.min - 1 : dim.max + 1);
        setDim(row._group, dim, Math.max(dim.min, Math.min(dim.max, base + (e.key === "ArrowRight" ? 1 : -1))));
        return true;
      }
      if (d !== null) {
        clearTimeout(typedTimer);
        typed += String(d);
        let n = Number(typed);
        if (n > dim.max) {
          typed = String(d);
          n = d;
        }
        if (setDim(row._group, dim, n)) {
          // A two-digit scale (e.g. 1-10) waits briefly for a second digit.
          if (dim.max >= 10 && n * 10 <= dim.max) typedTimer = setTimeout(() => (typed = ""), 700);
          else typed = "";
        } else typed = "";
        return true;
      }
      return false;
    },
    focus() {
      rows[0]?.focus();
    },
  };
}

// ---------------------------------------------------------------- ranking

/** Dense ranks (1..k) keeping ties and order: [3, 1, 1] -> [2, 1, 1]. */
export function denseRanks(ranks) {
  const distinct = [...new Set(ranks)].sort((a, b) => a - b);
  return ranks.map((r) => distinct.indexOf(r) + 1);
}

function rankingWidget(q, ctx) {
  const responses = ctx.record.responses || [];
  const n = responses.length;
  const ties = Boolean(q.allow_ties);
  let ranks = responses.map((_, i) => i + 1);
  let touched = false;
  let dragFrom = null;

  const list = h("ol", { class: "rank-list", "aria-label": "Ranking, best first" });
  const note = h("div", { class: "span-hint" }, ties ? "Focus a response, press its rank number (equal numbers tie). Shift+↑/↓ moves it; or drag." : "Focus a response and press its rank number, or Shift+↑/↓ to move it; or drag. Enter confirms the order.");
  if (!n) note.textContent = "This record has no responses to rank.";
  const el = h("div", null, list, note);

  const items = responses.map((r, i) => {
    const snippet = (r.content || (r.messages || []).map((m) => m.content).join(" ") || "").replace(/\s+/g, " ").slice(0, 90);
    const rankEl = h("span", { class: "rank" });
    const btns = h("span", { class: "rank-btns" });
    for (let k = 1; k <= n; k++) {
      btns.append(h("button", { type: "button", tabindex: "-1", title: `Rank ${k}`, dataset: { rank: String(k) }, onmousedown: (e) => e.preventDefault(), onclick: () => { setRank(i, k); items[i].focus(); } }, String(k)));
    }
    const li = h(
      "li",
      { class: "rank-item", tabindex: "0", draggable: "true", dataset: { index: String(i) }, "aria-label": `Response ${letter(i)}` },
      h("span", { class: "grip", "aria-hidden": "true" }, "⋮⋮"),
      rankEl,
      h("span", { class: "resp" }, h("b", null, letter(i)), snippet),
      btns,
    );
    li._rank = rankEl;
    li.addEventListener("dragstart", (e) => {
      dragFrom = i;
      li.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", String(i));
    });
    li.addEventListener("dragend", () => {
      dragFrom = null;
      li.classList.remove("dragging");
      items.forEach((x) => x.classList.remove("drop-target"));
    });
    li.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      li.classList.add("drop-target");
    });
    li.addEventListener("dragleave", () => li.classList.remove("drop-target"));
    li.addEventListener("drop", (e) => {
      e.preventDefault();
      li.classList.remove("drop-target");
      const from = dragFrom ?? Number(e.dataTransfer.getData("text/plain"));
      if (Number.isInteger(from) && from !== i) moveTo(from, orderOf().indexOf(i));
      li.focus();
    });
    li.addEventListener("focus", () => ctx.activate());
    return li;
  });

  /** Response indices, best first (stable by display order within ties). */
  function orderOf() {
    return ranks.map((r, i) => [r, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[1]);
  }
  function fromOrder(order) {
    order.forEach((idx, pos) => (ranks[idx] = pos + 1));
  }
  function changed() {
    touched = true;
    render();
    ctx.onChange();
  }
  function moveTo(i, pos) {
    const order = orderOf().filter((x) => x !== i);
    order.splice(Math.max(0, Math.min(order.length, pos)), 0, i);
    fromOrder(order);
    changed();
  }
  function setRank(i, k) {
    if (k < 1 || k > n) return;
    if (ties) {
      ranks[i] = k;
      ranks = denseRanks(ranks);
      changed();
    } else {
      moveTo(i, k - 1);
    }
  }
  function render() {
    const order = orderOf();
    const had = document.activeElement;
    list.replaceChildren(...order.map((i) => items[i]));
    if (had && items.includes(had)) had.focus();
    items.forEach((li, i) => {
      li._rank.textContent = touched ? String(ranks[i]) : "–";
      li._rank.classList.toggle("unset", !touched);
      li.querySelectorAll(".rank-btns button").forEach((b) => b.setAttribute("aria-pressed", String(touched && Number(b.dataset.rank) === ranks[i])));
      li.setAttribute("aria-label", `Response ${letter(i)}${touched ? `, rank ${ranks[i]}` : ", not ranked yet"}`);
    });
  }
  render();

  function focusedIndex() {
    const idx = items.indexOf(document.activeElement);
    return idx >= 0 ? idx : null;
  }

  return {
    el,
    get: () => (touched ? [...ranks] : null),
    set(v) {
      if (Array.isArray(v) && v.length === n) {
        ranks = [...v];
        touched = true;
      } else {
        ranks = responses.map((_, i) => i + 1);
        touched = false;
      }
      render();
    },
    onKey(e) {
      if (e.ctrlKey || e.metaKey) return false;
      let i = focusedIndex();
      const order = orderOf();
      if (i === null) {
        if (["ArrowDown", "ArrowUp"].includes(e.key) || digitOf(e) !== null) {
          items[order[0]]?.focus();
          i = order[0];
          if (digitOf(e) === null) return true;
        } else return false;
      }
      const pos = order.indexOf(i);
      if (e.shiftKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
        if (ties) setRank(i, Math.max(1, ranks[i] + (e.key === "ArrowUp" ? -1 : 1)));
        else moveTo(i, pos + (e.key === "ArrowUp" ? -1 : 1));
        items[i].focus();
        return true;
      }
      if (e.altKey) return false;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        const next = order[Math.max(0, Math.min(order.length - 1, pos + (e.key === "ArrowDown" ? 1 : -1)))];
        items[next].focus();
        return true;
      }
      if (e.key === "Enter" && !touched) {
        changed();
        return true;
      }
      const d = digitOf(e);
      if (d !== null && d >= 1 && d <= n) {
        setRank(i, d);
        items[i].focus();
        return true;
      }
      return false;
    },
    focus() {
      items[orderOf()[0]]?.focus();
    },
  };
}

// ---------------------------------------------------------------- preference

const STRENGTH_NAMES = { 1: "slight", 2: "clear", 3: "strong" };

function preferenceWidget(q, ctx) {
  const strengths = q.strengths && q.strengths.length ? q.strengths : [1, 2, 3];
  let choice = null;
  let strength = null;
  const choiceBtns = [
    ["a", "A is better", "A"],
    ["b", "B is better", "B"],
    ["tie", "Tie", "T"],
  ].map(([v, text, key]) => optionButton(text, key, { role: "radio", "aria-checked": "false", dataset: { value: v }, onclick: () => pick(v) }));
  const strengthBtns = strengths.map((s) =>
    optionButton(STRENGTH_NAMES[s] || String(s), String(s), { role: "radio", "aria-checked": "false", dataset: { value: String(s) }, onclick: () => setStrength(s) }),
  );
  const reason = h("textarea", { rows: "2", placeholder: q.require_reason ? "Why? (required)" : "Why? (optional)", "aria-label": "Reason", dataset: { question: q.name } });
  reason.addEventListener("input", () => ctx.onChange());
  const el = h(
    "div",
    null,
    h("div", { class: "pref-row" }, h("span", { class: "lbl" }, "Choice"), ...choiceBtns),
    h("div", { class: "pref-row" }, h("span", { class: "lbl" }, "Strength"), ...strengthBtns),
    h("div", { class: "pref-row" }, h("span", { class: "lbl" }, "Reason", q.require_reason ? h("span", { class: "req" }, "*") : null), h("div", { style: "flex:1" }, reason)),
  );
  function render() {
    choiceBtns.forEach((b) => b.setAttribute("aria-checked", String(b.dataset.value === choice)));
    strengthBtns.forEach((b) => b.setAttribute("aria-checked", String(Number(b.dataset.value) === strength)));
  }
  function pick(v) {
    choice = choice === v ? null : v;
    render();
    ctx.onChange();
  }
  function setStrength(s) {
    strength = strength === s ? null : s;
    render();
    ctx.onChange();
  }
  return {
    el,
    get() {
      if (choice === null) return null;
      return { choice, strength: choice === "tie" ? strength ?? null : strength, reason: reason.value };
    },
    set(v) {
      choice = v && typeof v === "object" ? v.choice ?? null : null;
      strength = v && typeof v === "object" ? v.strength ?? null : null;
      reason.value = v && typeof v === "object" && typeof v.reason === "string" ? v.reason : "";
      render();
    },
    onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const k = e.key.toLowerCase();
      if (k === "a" || k === "b") return pick(k), true;
      if (k === "t") return pick("tie"), true;
      if (k === "r") {
        reason.focus();
        return true;
      }
      const d = digitOf(e);
      if (d !== null && strengths.includes(d)) return setStrength(d), true;
      return false;
    },
    focus() {},
    textArea: reason,
  };
}

// ---------------------------------------------------------------- factory

export function createWidget(q, ctx) {
  switch (q.kind) {
    case "label":
      return labelWidget(q, ctx, false);
    case "multi_label":
      return labelWidget(q, ctx, true);
    case "spans":
      return spansWidget(q, ctx);
    case "text":
      return textWidget(q, ctx);
    case "rating":
      return ratingWidget(q, ctx);
    case "ranking":
      return rankingWidget(q, ctx);
    case "preference":
      return preferenceWidget(q, ctx);
    default: {
      const el = h("div", { class: "muted small" }, `Unsupported question kind: ${q.kind}`);
      return { el, get: () => null, set() {}, onKey: () => false, focus() {} };
    }
  }
}

/** Human-readable one-line form of an answer value (review page, summaries). */
export function formatValue(q, v) {
  if (v === null || v === undefined) return "—";
  switch (q && q.kind) {
    case "label":
      return String(v);
    case "multi_label":
      return Array.isArray(v) ? (v.length ? v.join(", ") : "(none)") : JSON.stringify(v);
    case "spans":
      return Array.isArray(v) ? (v.length ? v.map((s) => `${s.text ?? ""} [${s.label}] ${s.start}–${s.end}`).join("\n") : "(no spans)") : JSON.stringify(v);
    case "text":
      return String(v);
    case "rating":
      if (Array.isArray(v)) return v.map((d, i) => `${letter(i)}: ${Object.entries(d || {}).map(([k, x]) => `${k} ${x}`).join(", ")}`).join("\n");
      return Object.entries(v).map(([k, x]) => `${k} ${typeof x === "number" ? Math.round(x * 100) / 100 : x}`).join(", ");
    case "ranking":
      return Array.isArray(v) ? v.map((r, i) => `${letter(i)}=${r}`).join("  ") : JSON.stringify(v);
    case "preference": {
      if (typeof v !== "object") return String(v);
      const c = v.choice === "tie" ? "Tie" : `${String(v.choice).toUpperCase()} better`;
      const s = v.strength ? ` (${STRENGTH_NAMES[v.strength] || v.strength})` : "";
      return `${c}${s}${v.reason ? ` — ${v.reason}` : ""}`;
    }
    default:
      return typeof v === "string" ? v : JSON.stringify(v);
  }
}

export { clone };
