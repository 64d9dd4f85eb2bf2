// The keyboard help overlay ("?"): a modal list of shortcuts; Esc or "?" closes it.

import { h } from "./dom.js";

export function setupHelp(shortcuts) {
  let overlay = null;
  let lastFocus = null;
  function open() {
    if (overlay) return;
    lastFocus = document.activeElement;
    const closeBtn = h("button", { type: "button", class: "btn", onclick: close }, "Close ", h("kbd", null, "Esc"));
    overlay = h(
      "div",
      { class: "overlay", id: "help-overlay", role: "dialog", "aria-modal": "true", "aria-label": "Keyboard shortcuts" },
      h(
        "div",
        { class: "sheet" },
        h("h2", { style: "margin-top:0" }, "Keyboard shortcuts"),
        h("table", null, h("tbody", null, shortcuts.map(([k, d]) => h("tr", null, h("td", null, ...k.split(/( \+ | \/ |, or |, | – )/).map((p, i) => (i % 2 ? p : h("kbd", null, p)))), h("td", null, d))))),
        h("div", { style: "margin-top:1rem;text-align:right" }, closeBtn),
      ),
    );
    overlay.addEventListener("click", (e) => {
      if (e.target === overlay) close();
    });
    document.body.append(overlay);
    closeBtn.focus();
  }
  function close() {
    if (!overlay) return;
    overlay.remove();
    overlay = null;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  return { open, close, isOpen: () => overlay !== null };
}
