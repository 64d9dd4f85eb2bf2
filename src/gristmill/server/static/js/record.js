// Renders a RecordView (see docs/annotate.md): plain or markdown text, multi-turn chat with
// system prompt and tool calls, and side-by-side responses.

import { h, letter } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

function prettyJson(text) {
  if (text === null || text === undefined) return "";
  try {
    return JSON.stringify(typeof text === "string" ? JSON.parse(text) : text, null, 2);
  } catch {
    return String(text);
  }
}

export function renderMessage(msg) {
  const role = msg.role || "user";
  const box = h("div", { class: `msg ${role}`, dataset: { role } });
  const label = msg.name ? `${role} · ${msg.name}` : role;
  box.append(h("div", { class: "role" }, label, msg.tool_call_id ? ` (${msg.tool_call_id})` : ""));
  if (msg.content) {
    box.append(role === "tool" ? h("pre", { class: "doc-text" }, msg.content) : renderMarkdown(msg.content));
  }
  for (const call of msg.tool_calls || []) {
    box.append(
      h(
        "div",
        { class: "tool-call" },
        h("span", { class: "name" }, `→ ${call.name}()`),
        call.id ? h("span", { class: "muted small" }, `  ${call.id}`) : null,
        h("pre", null, prettyJson(call.arguments)),
      ),
    );
  }
  return box;
}

export function renderChat(messages, system) {
  const chat = h("div", { class: "chat" });
  if (system) chat.append(renderMessage({ role: "system", content: system }));
  for (const m of messages || []) chat.append(renderMessage(m));
  return chat;
}

export function renderText(text, format) {
  return format === "markdown" ? renderMarkdown(text) : h("div", { class: "doc-text" }, text);
}

export function responseColumns(n) {
  return `repeat(${Math.max(1, Math.min(n, 3))}, minmax(0, 1fr))`;
}

export function renderResponses(responses) {
  const grid = h("div", { class: "responses" });
  grid.style.gridTemplateColumns = responseColumns(responses.length);
  responses.forEach((r, i) => {
    const col = h(
      "div",
      { class: "response", dataset: { index: String(i) } },
      h("div", { class: "head" }, h("span", { class: "tag" }, `Response ${letter(i)}`), r.origin ? h("span", { class: "origin" }, r.origin) : null),
    );
    const msgs = r.messages || [];
    const simple = msgs.length <= 1 && !msgs.some((m) => m.tool_calls && m.tool_calls.length);
    if (!simple) col.append(renderChat(msgs));
    else col.append(renderMarkdown(r.content || ""));
    grid.append(col);
  });
  return grid;
}

/**
 * Build the record pane. `replaceText` (an element) stands in for the record's text, so a
 * spans question can annotate exactly the characters shown.
 */
export function renderRecord(view, { replaceText = null, showMeta = true } = {}) {
  const root = h("div", { class: "record", dataset: { kind: view.kind || "" } });
  const hasChat = view.messages && view.messages.length;
  if (view.system && !hasChat) root.append(renderChat([], view.system));
  if (view.text !== null && view.text !== undefined) {
    root.append(replaceText || renderText(view.text, view.format));
  }
  if (hasChat) root.append(renderChat(view.messages, view.system));
  if (view.prompt && view.prompt.length) {
    root.append(h("div", { class: "section-label" }, "Prompt"));
    root.append(renderChat(view.prompt));
  }
  if (view.responses && view.responses.length) {
    root.append(h("div", { class: "section-label" }, `Responses (${view.responses.length})`));
    root.append(renderResponses(view.responses));
  }
  if (showMeta && view.meta && Object.keys(view.meta).length) {
    const rows = Object.entries(view.meta)
      .slice(0, 20)
      .map(([k, v]) => h("div", null, h("b", null, k), ": ", typeof v === "string" ? v : JSON.stringify(v)));
    root.append(h("details", { class: "meta-list" }, h("summary", null, "Metadata"), ...rows));
  }
  return root;
}

/**
 * The text a spans question marks up (same rule as the server's `annotated_text`): the
 * record's text, another string field of the view, or else the last message's content.
 */
export function fieldText(view, field = "text") {
  if ((field || "text") === "text" && view.text) return String(view.text);
  const value = view[field || "text"];
  if (typeof value === "string") return value;
  const msgs = view.messages || [];
  return msgs.length ? String(msgs[msgs.length - 1].content ?? "") : "";
}
