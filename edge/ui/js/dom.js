// DOM helpers. Owns: building elements (text goes in with textContent, never as markup),
// formatting bytes and times, the message bar, confirmation and modal dialogs.
// Must not: call the API.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}

export function fmtUs(us) {
  if (!us) return "—";
  const d = new Date(Number(us) / 1000);
  return d.toISOString().replace("T", " ").replace("Z", " UTC");
}

export function fmtS(s) {
  if (!s) return "—";
  return new Date(Number(s) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

// "2026-05-01T10:00" (datetime-local, local time) <-> unix seconds
export function localInputToS(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? Math.floor(t / 1000) : null;
}

export function sToLocalInput(s) {
  const d = new Date(s * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

let bar = null;
export function setMessageBar(el) {
  bar = el;
}

export function notify(text, kind = "info") {
  if (!bar) return;
  clear(bar);
  bar.className = "msg " + kind;
  bar.appendChild(h("span", { text }));
  bar.appendChild(h("button", { class: "link", type: "button", text: "×", "aria-label": "Dismiss message", onclick: () => clear(bar) }));
}

export function fail(err) {
  notify(err && err.message ? err.message : String(err), "error");
}

// A modal <dialog>; `build(close)` returns its content. Resolves with what close() was given.
// Every open dialog belongs to the page it was opened on: closeModals() (called by the router on
// every navigation, back/forward included) closes them all. Focus returns to where it was.
const openModals = new Set();
let modalSeq = 0;

export function closeModals() {
  for (const close of Array.from(openModals)) close(null);
}

export function modal(title, build) {
  return new Promise((resolve) => {
    const titleId = `modal-title-${++modalSeq}`;
    const dlg = h("dialog", { class: "modal", "aria-labelledby": titleId });
    const opener = document.activeElement;
    const close = (value) => {
      if (!openModals.delete(close)) return;
      if (dlg.open) dlg.close();
      dlg.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(value);
    };
    openModals.add(close);
    dlg.appendChild(h("header", {}, h("h2", { text: title, id: titleId }),
      h("button", { type: "button", class: "link icon close", "aria-label": "Close", text: "×", onclick: () => close(null) })));
    dlg.appendChild(build(close));
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(null);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// Ask to confirm a destructive action; with `typed`, the user must type that word.
export function confirmAction(title, text, typed) {
  return modal(title, (close) => {
    const input = typed ? h("input", { type: "text", name: "confirm", autocomplete: "off", placeholder: typed }) : null;
    const ok = h("button", { type: "submit", class: "danger", text: "Confirm", name: "confirm-ok" });
    const form = h("form", { method: "dialog", class: "stack" },
      h("p", { text }),
      typed ? h("label", {}, `Type "${typed}" to confirm`, input) : null,
      h("div", { class: "row" }, ok, h("button", { type: "button", text: "Cancel", onclick: () => close(false) })));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (typed && input.value !== typed) {
        input.setCustomValidity("does not match");
        input.reportValidity();
        return;
      }
      close(true);
    });
    return form;
  });
}

export function field(label, input, hint) {
  return h("label", {}, h("span", { text: label }), input, hint ? h("small", { text: hint }) : null);
}

// A table that becomes stacked cards on narrow screens: every cell carries its column's name
// (data-label, shown before the value by app.css). A header is a string or {text, class}; the
// class ("num", "time", "primary", "actions") goes on the header and on that column's cells.
export function table(headers, rows, attrs = {}) {
  const cols = headers.map((c) => (typeof c === "string" ? { text: c } : c));
  for (const tr of rows) {
    Array.from(tr.children).forEach((td, i) => {
      const col = cols[i];
      if (!col) return;
      td.dataset.label = col.text || "";
      if (col.class) td.classList.add(...col.class.split(" "));
      if (!td.textContent.trim() && !td.querySelector("button, a, img, canvas, input")) td.classList.add("empty-cell");
    });
  }
  const th = (c) => h("th", { scope: "col", class: c.class || null }, c.text ? c.text : h("span", { class: "sr-only", text: c.sr || "actions" }));
  // (wide screens: a table wider than its card scrolls inside it, never the page)
  return h("div", { class: "table-wrap" }, h("table", { ...attrs, class: ["cards", attrs.class].filter(Boolean).join(" ") },
    h("thead", {}, h("tr", {}, cols.map(th))), h("tbody", {}, rows)));
}

export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    if (input) {
      input.select();
      try {
        return document.execCommand("copy");
      } catch (e2) {
        return false;
      }
    }
    return false;
  }
}
