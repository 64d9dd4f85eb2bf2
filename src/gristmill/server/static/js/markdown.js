// A tiny, safe markdown renderer: builds DOM nodes (never innerHTML), so raw HTML in the
// source shows as text. Covers headings, paragraphs, lists, block quotes, fenced code,
// inline code, bold, italics and http(s) links: what guidelines and chat answers use.

import { h } from "./dom.js";

const INLINE = /(`+)([\s\S]*?)\1|\*\*([^*]+?)\*\*|__([^_]+?)__|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)/g;

function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    if (m[1] !== undefined) out.push(h("code", null, m[2]));
    else if (m[3] !== undefined || m[4] !== undefined) out.push(h("strong", null, inline(m[3] ?? m[4])));
    else if (m[5] !== undefined || m[6] !== undefined) out.push(h("em", null, inline(m[5] ?? m[6])));
    else if (m[7] !== undefined) {
      const href = m[8];
      if (/^https?:\/\//i.test(href)) {
        out.push(h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, inline(m[7])));
      } else {
        out.push(document.createTextNode(m[0]));
      }
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

const LIST_ITEM = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;

/** Render markdown source into a <div class="md">. */
export function renderMarkdown(src) {
  const root = h("div", { class: "md" });
  const lines = String(src ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }
    const fence = line.match(/^\s*(```+|~~~+)\s*([\w+-]*)\s*$/);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      const code = h("code", fence[2] ? { class: `language-${fence[2]}` } : null, body.join("\n"));
      root.append(h("pre", null, code));
      continue;
    }
    const head = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (head) {
      root.append(h(`h${Math.min(head[1].length, 4)}`, null, inline(head[2])));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      const q = renderMarkdown(body.join("\n"));
      root.append(h("blockquote", null, ...q.childNodes));
      continue;
    }
    if (LIST_ITEM.test(line)) {
      const first = line.match(LIST_ITEM)[2];
      const ordered = /\d/.test(first);
      const list = h(ordered ? "ol" : "ul");
      if (ordered && parseInt(first, 10) !== 1) list.setAttribute("start", String(parseInt(first, 10)));
      const sameKind = (l) => LIST_ITEM.test(l) && /\d/.test(l.match(LIST_ITEM)[2]) === ordered;
      while (i < lines.length && sameKind(lines[i])) {
        const m = lines[i].match(LIST_ITEM);
        const parts = [m[3]];
        i++;
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !LIST_ITEM.test(lines[i])) {
          parts.push(lines[i++].trim());
        }
        list.append(h("li", null, inline(parts.join(" "))));
        // A "loose" list: blank lines between items of the same list.
        let j = i;
        while (j < lines.length && /^\s*$/.test(lines[j])) j++;
        if (j > i && j < lines.length && sameKind(lines[j])) i = j;
      }
      root.append(list);
      continue;
    }
    const para = [];
    while (
      i < lines.length &&
      !/^\s*$/.test(lines[i]) &&
      !/^(#{1,6})\s/.test(lines[i]) &&
      !/^\s*(```|~~~)/.test(lines[i]) &&
      !(para.length && LIST_ITEM.test(lines[i]))
    ) {
      para.push(lines[i++]);
    }
    const p = h("p");
    para.forEach((l, k) => {
      if (k) p.append(h("br"));
      p.append(...inline(l));
    });
    root.append(p);
  }
  return root;
}
