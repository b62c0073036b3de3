// Links page: share links (list, receipts, edit, revoke) and upload links (create, list,
// received files, edit, revoke).
// Owns: these two tables and their dialogs. Must not: show a secret other than once, right after
// creating an upload link (the server keeps only hashes).

import { enc, getJson, publicBase, send } from "../api.js";
import { clear, confirmAction, fail, field, fmtBytes, fmtS, h, localInputToS, modal, notify, sToLocalInput, table } from "../dom.js";
import { linkResult } from "../share.js";

export async function mount(root) {
  root.appendChild(h("h1", { text: "Links" }));
  const shares = h("section", { class: "card", id: "share-links" });
  const uploads = h("section", { class: "card", id: "upload-links" });
  root.append(shares, uploads);
  await Promise.all([renderShares(shares), renderUploads(uploads)]);
}

function stateCell(state) {
  return h("td", { class: "state-" + state, text: state });
}

async function renderShares(box) {
  const { links } = await getJson("links");
  clear(box);
  box.appendChild(h("h2", { text: `Share links (${links.length})` }));
  if (!links.length) {
    box.appendChild(h("p", { class: "muted", text: "No share links yet: share a record from the Records page." }));
    return;
  }
  const rows = links.slice().reverse().map((l) => h("tr", { dataset: { id: l.id } },
    h("td", { text: l.file_name }),
    h("td", { text: `${l.bucket}/${l.record_entry || l.entry}` }),
    stateCell(l.state),
    h("td", { class: "num", text: `${l.downloads}${l.max_downloads ? " / " + l.max_downloads : ""}` }),
    h("td", { text: l.has_password ? "yes" : "no" }),
    h("td", { text: fmtS(l.expire_at) }),
    h("td", {},
      h("button", { type: "button", class: "act", text: "Receipts", name: "receipts", "aria-label": `Receipts of ${l.file_name}`, onclick: () => receipts(l.id).catch(fail) }),
      l.revoked ? null : h("button", { type: "button", class: "act", text: "Edit", name: "edit", "aria-label": `Edit link to ${l.file_name}`, onclick: () => editShare(l, box).catch(fail) }),
      l.revoked ? null : h("button", { type: "button", class: "act danger", text: "Revoke", name: "revoke", "aria-label": `Revoke link to ${l.file_name}`, onclick: () => revokeShare(l, box).catch(fail) }))));
  box.appendChild(table([{ text: "file", class: "primary" }, "record", "state", { text: "downloads", class: "num" }, "password",
    { text: "expires", class: "time" }, { text: "", class: "actions" }], rows));
}

async function receipts(id) {
  const link = await getJson("links/" + enc(id));
  await modal(`Receipts of ${link.file_name}`, () => {
    const rows = (link.receipts || []).map((r) => h("tr", {},
      h("td", { text: fmtS(r.time) }), h("td", { text: r.client }), h("td", { class: "num", text: fmtBytes(r.bytes) }),
      h("td", { text: r.range || "full" }), h("td", { text: r.counted ? "yes" : "no" })));
    return h("div", { class: "stack" },
      h("p", { text: `${link.downloads} counted download(s); receipt address: ${link.receipt_to || "none"}` }),
      rows.length ? table([{ text: "time", class: "time" }, "client", { text: "bytes", class: "num" }, "range", "counted"], rows) : h("p", { class: "muted", text: "No downloads yet." }));
  });
}

async function editShare(link, box) {
  await modal(`Edit ${link.file_name}`, (close) => {
    const expires = h("input", { type: "datetime-local", name: "expire_at", value: sToLocalInput(link.expire_at) });
    const maxDl = h("input", { type: "number", name: "max_downloads", min: "1", value: link.max_downloads ? String(link.max_downloads) : "", placeholder: "unlimited" });
    const pw = h("input", { type: "password", name: "password", autocomplete: "new-password", placeholder: link.has_password ? "unchanged" : "none" });
    const clearPw = h("input", { type: "checkbox", name: "clear_password" });
    const form = h("form", { class: "stack" }, field("Expires", expires), field("Max downloads", maxDl), field("New password", pw),
      link.has_password ? h("label", { class: "inline" }, clearPw, "remove the password") : null,
      h("button", { type: "submit", text: "Save" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { expire_at: localInputToS(expires.value), max_downloads: maxDl.value ? Number(maxDl.value) : null };
      if (pw.value) body.password = pw.value;
      else if (clearPw.checked) body.password = null;
      try {
        await send("PATCH", "links/" + enc(link.id), body);
        notify("Link updated", "ok");
        close(true);
        await renderShares(box);
      } catch (err) {
        fail(err);
      }
    });
    return form;
  });
}

async function revokeShare(link, box) {
  if (!(await confirmAction("Revoke link", `Nobody will be able to download '${link.file_name}' with this link any more.`))) return;
  await send("DELETE", "links/" + enc(link.id));
  notify("Link revoked", "ok");
  await renderShares(box);
}

// --- upload links ---------------------------------------------------------------------------

async function renderUploads(box) {
  const [{ upload_links: links }, { buckets }] = await Promise.all([getJson("upload-links"), getJson("list")]);
  clear(box);
  box.appendChild(h("h2", { text: `Upload links (${links.length})` }));
  box.appendChild(h("p", { class: "muted", text: "An upload link lets someone without a token drop files into one entry until it expires." }));
  // `$` buckets ($system) are written by the server only: never an upload target.
  const bucketSel = h("select", { name: "ul-bucket" }, buckets.filter((b) => !b.name.startsWith("$")).map((b) => h("option", { value: b.name, text: b.name })));
  const entry = h("input", { name: "ul-entry", required: true, value: "inbox", pattern: "[A-Za-z0-9_\\-\\/]+" });
  const expires = h("input", { type: "datetime-local", name: "ul-expire_at", required: true, value: sToLocalInput(Math.floor(Date.now() / 1000) + 7 * 86400) });
  const maxFiles = h("input", { type: "number", name: "ul-max_files", min: "1", placeholder: "unlimited" });
  const maxMb = h("input", { type: "number", name: "ul-max_mb", min: "1", placeholder: "unlimited" });
  const note = h("input", { name: "ul-note", placeholder: "shown on the upload page" });
  const form = h("form", { class: "stack", id: "upload-link-form" },
    h("div", { class: "row" }, field("Bucket", bucketSel), field("Entry", entry), field("Expires", expires)),
    h("div", { class: "row" }, field("Max files", maxFiles), field("Max size (MB)", maxMb), field("Note", note)),
    h("div", { class: "row" }, h("button", { type: "submit", text: "Create upload link", name: "create-upload-link", disabled: !buckets.length })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { bucket: bucketSel.value, entry: entry.value.trim(), expire_at: localInputToS(expires.value), base_url: publicBase, note: note.value };
    if (maxFiles.value) body.max_files = Number(maxFiles.value);
    if (maxMb.value) body.max_bytes = Number(maxMb.value) * 1000 * 1000;
    try {
      const res = await send("POST", "upload-links", body);
      await modal("Upload link created", (close) => h("div", { class: "stack" },
        h("p", { class: "secret", text: "Copy the link now: it is shown only once." }), linkResult(res.url, close)));
      await renderUploads(box);
    } catch (err) {
      fail(err);
    }
  });
  box.appendChild(form);
  if (!links.length) return;
  const rows = links.slice().reverse().map((l) => h("tr", { dataset: { id: l.id } },
    h("td", { text: `${l.bucket}/${l.entry}` }),
    stateCell(l.state),
    h("td", { class: "num", text: `${l.files}${l.max_files ? " / " + l.max_files : ""}` }),
    h("td", { class: "num", text: `${fmtBytes(l.bytes)}${l.max_bytes ? " / " + fmtBytes(l.max_bytes) : ""}` }),
    h("td", { text: fmtS(l.expire_at) }),
    h("td", { text: l.note }),
    h("td", {},
      h("button", { type: "button", class: "act", text: "Received", name: "received", "aria-label": `Files received through ${l.bucket}/${l.entry}`, onclick: () => received(l.id).catch(fail) }),
      l.revoked ? null : h("button", { type: "button", class: "act", text: "Edit", name: "edit-upload", "aria-label": `Edit upload link to ${l.bucket}/${l.entry}`, onclick: () => editUpload(l, box).catch(fail) }),
      l.revoked ? null : h("button", { type: "button", class: "act danger", text: "Revoke", name: "revoke-upload", "aria-label": `Revoke upload link to ${l.bucket}/${l.entry}`, onclick: () => revokeUpload(l, box).catch(fail) }))));
  box.appendChild(table([{ text: "destination", class: "primary" }, "state", { text: "files", class: "num" }, { text: "bytes", class: "num" },
    { text: "expires", class: "time" }, "note", { text: "", class: "actions" }], rows));
}

async function received(id) {
  const link = await getJson("upload-links/" + enc(id));
  await modal(`Received through ${link.bucket}/${link.entry}`, () => {
    const rows = (link.received || []).map((r) => h("tr", {},
      h("td", { text: fmtS(r.time) }), h("td", { text: r.filename || "—" }), h("td", { class: "num", text: fmtBytes(r.bytes) }), h("td", { text: r.client })));
    return h("div", {}, rows.length ? table([{ text: "time", class: "time" }, "file", { text: "size", class: "num" }, "client"], rows) : h("p", { class: "muted", text: "Nothing received yet." }));
  });
}

async function editUpload(link, box) {
  await modal("Edit upload link", (close) => {
    const expires = h("input", { type: "datetime-local", name: "expire_at", value: sToLocalInput(link.expire_at) });
    const maxFiles = h("input", { type: "number", name: "max_files", min: "1", value: link.max_files ? String(link.max_files) : "", placeholder: "unlimited" });
    const maxBytes = h("input", { type: "number", name: "max_bytes", min: "1", value: link.max_bytes ? String(link.max_bytes) : "", placeholder: "unlimited" });
    const note = h("input", { name: "note", value: link.note || "" });
    const form = h("form", { class: "stack" }, field("Expires", expires), field("Max files", maxFiles), field("Max bytes", maxBytes), field("Note", note),
      h("button", { type: "submit", text: "Save" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { expire_at: localInputToS(expires.value), max_files: maxFiles.value ? Number(maxFiles.value) : null,
        max_bytes: maxBytes.value ? Number(maxBytes.value) : null, note: note.value };
      try {
        await send("PATCH", "upload-links/" + enc(link.id), body);
        notify("Upload link updated", "ok");
        close(true);
        await renderUploads(box);
      } catch (err) {
        fail(err);
      }
    });
    return form;
  });
}

async function revokeUpload(link, box) {
  if (!(await confirmAction("Revoke upload link", `Nobody will be able to upload into ${link.bucket}/${link.entry} with this link any more.`))) return;
  await send("DELETE", "upload-links/" + enc(link.id));
  notify("Upload link revoked", "ok");
  await renderUploads(box);
}
