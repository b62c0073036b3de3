// The page a share link opens in a browser (ui/download.html#<link path and query>): what the
// file is, a password form when the link has one, and a Download button.
// Owns: reading the link from the fragment (only this server's own link URLs are accepted),
// asking the server about it with HEAD (which never counts as a download), and the download.
// Must not: keep the password anywhere but this page's memory, or show the file's content (a
// preview would use up a limited link's downloads).
//
// Without a password the Download button is an ordinary link (dl=1): the browser's download
// manager streams the file to disk, however large. A link the server does not serve as it is
// may need a password or a sign-in, or may be dead: the server answers all of these alike (a
// caller must not learn which), so the page offers a password and a token field; with them it
// fetches the file (HTTP Basic: token as user, password) and hands the bytes over as one file.

import { basePath, waitText } from "./api.js";
import { fail, fmtBytes, h, notify, setMessageBar } from "./dom.js";
import { icon } from "./icons.js";

const LINK_PREFIX = basePath + "api/v1/links/";

function linkFromFragment() {
  const raw = window.location.hash.replace(/^#/, "");
  if (!raw.startsWith(LINK_PREFIX) || !raw.includes("?")) return null;
  return raw;
}

function withDl(link) {
  return link + (link.includes("?") ? "&" : "?") + "dl=1";
}

// RFC 6266 filename* (UTF-8) or filename
export function dispositionName(header) {
  if (!header) return null;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch (e) {
      /* fall through */
    }
  }
  const plain = /filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)/.exec(header);
  if (plain) return (plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2].trim());
  return null;
}

function credentials(password, token) {
  if (token && !password) return "Bearer " + token;
  const bytes = new TextEncoder().encode((token || "guest") + ":" + (password || ""));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "Basic " + btoa(bin);
}

async function probe(link, password, token) {
  const headers = password || token ? { Authorization: credentials(password, token) } : {};
  return fetch(withDl(link), { method: "HEAD", headers, cache: "no-store", credentials: "omit" });
}

function refusal(resp) {
  if (resp.status === 429) {
    const after = Number(resp.headers.get("retry-after"));
    return `Too many wrong passwords from this network. Try again in ${waitText(after > 0 ? after : 60)}.`;
  }
  if (resp.status === 422 && resp.headers.get("x-reduct-error") === "Query link has expired") return "This link has expired.";
  return "Not accepted: a wrong password or token, or the link does not work any more (revoked, expired or used up).";
}

function describe(box, resp, link) {
  const name = dispositionName(resp.headers.get("content-disposition")) || decodeURIComponent(link.slice(LINK_PREFIX.length).split("?")[0]);
  const size = Number(resp.headers.get("content-length"));
  const type = (resp.headers.get("content-type") || "").split(";")[0];
  box.appendChild(h("div", { class: "file-box" }, icon("file"),
    h("div", {}, h("div", { class: "name", id: "download-name", text: name }),
      h("div", { class: "muted", id: "download-size", text: [Number.isFinite(size) ? fmtBytes(size) : null, type || null].filter(Boolean).join(" · ") }))));
  return name;
}

async function saveWith(link, password, token, name, progress) {
  const resp = await fetch(withDl(link), { headers: { Authorization: credentials(password, token) }, cache: "no-store", credentials: "omit" });
  if (!resp.ok) throw new Error(refusal(resp));
  const total = Number(resp.headers.get("content-length")) || 0;
  const reader = resp.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    if (total) progress.value = Math.floor((got / total) * 100);
  }
  const url = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 30000);
}

async function start() {
  setMessageBar(document.getElementById("msg"));
  const info = document.getElementById("download-info");
  const box = document.getElementById("download-box");
  const link = linkFromFragment();
  if (!link) {
    info.textContent = "This page needs a complete share link.";
    return;
  }
  const first = await probe(link);
  if (first.ok) {
    const name = describe(box, first, link);
    document.title = `Download ${name}`;
    info.textContent = "Someone shared this file with you.";
    box.appendChild(h("a", { class: "pick", href: withDl(link), download: name, id: "download-link", text: "Download" }));
    return;
  }
  if (first.status === 422) {
    info.textContent = refusal(first);
    return;
  }
  info.textContent = "This link needs a password or a sign-in, or it does not work any more (revoked, expired or used up).";
  const pw = h("input", { type: "password", name: "password", id: "download-password", autocomplete: "current-password" });
  const tok = h("input", { type: "password", name: "token", id: "download-token", autocomplete: "off" });
  const submit = h("button", { type: "submit", text: "Download", name: "download" });
  const progress = h("progress", { max: 100, value: 0, hidden: true, "aria-label": "Download progress" });
  const form = h("form", { class: "stack", id: "password-form" },
    h("label", {}, h("span", { text: "Password" }), pw),
    h("details", { class: "more" }, h("summary", { text: "Sign in with an API token instead" }),
      h("label", {}, h("span", { text: "API token (read access to the shared data)" }), tok)),
    submit, progress);
  box.appendChild(form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!pw.value && !tok.value) {
      notify("Enter the password (or an API token).", "error");
      pw.focus();
      return;
    }
    submit.disabled = true;
    try {
      const check = await probe(link, pw.value, tok.value);
      if (!check.ok) {
        notify(refusal(check), "error");
        pw.select();
        return;
      }
      const name = dispositionName(check.headers.get("content-disposition")) || "download";
      if (!document.getElementById("download-name")) describe(box, check, link);
      box.prepend(box.querySelector(".file-box"));
      progress.hidden = false;
      await saveWith(link, pw.value, tok.value, name, progress);
      notify(`Downloaded ${name}`, "ok");
    } catch (err) {
      fail(err);
    } finally {
      submit.disabled = false;
    }
  });
  pw.focus();
}

start().catch(fail).finally(() => { document.body.dataset.ready = "1"; });
