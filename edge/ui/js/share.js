// The share dialog: create a share link for one record (expiry, max downloads, password,
// receipt address, "downloaders must sign in"), then copy it, show its QR code, or send it by
// e-mail when mail is set up.
// Owns: the create body (ReductStore's link body + edge's max_downloads/password/receipt_to/
// require_authentication).
// Must not: keep the password anywhere after sending it.

import { enc, features, publicBase, send } from "./api.js";
import { copyText, fail, field, fmtBytes, fmtUs, h, localInputToS, modal, notify, sToLocalInput } from "./dom.js";
import { fileNameOf } from "./media.js";
import qrcode from "../vendor/qrcode.mjs";

export function qrImage(text, id) {
  const qr = qrcode(0, "L");   // "L": the densest links stay scannable from a screen
  qr.addData(text, "Byte");
  qr.make();
  return h("img", { class: "qr", src: qr.createDataURL(4, 2), alt: "QR code of the link", id });
}

export function linkResult(url, close, extra) {
  const out = h("input", { type: "text", readonly: true, value: url, class: "mono", name: "link-url", id: "link-url" });
  return h("div", { class: "stack", id: "link-result" },
    field("Link", out),
    h("div", { class: "row" },
      h("button", { type: "button", text: "Copy", name: "copy", onclick: async () => notify((await copyText(url, out)) ? "Link copied" : "Copy failed: select the text and copy it", "info") }),
      close ? h("button", { type: "button", class: "secondary", text: "Done", name: "done", onclick: () => close(url) }) : null),
    qrImage(url, "link-qr"),
    extra || null);
}

function mailForm(linkId) {
  const to = h("input", { type: "text", name: "recipients", placeholder: "a@example.com, b@example.com" });
  const msg = h("textarea", { name: "message", rows: 3 });
  const form = h("form", { class: "stack", id: "mail-form" }, h("h2", { text: "Send by e-mail" }),
    field("Recipients", to, "comma-separated"), field("Message", msg), h("button", { type: "submit", text: "Send" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const recipients = to.value.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const res = await send("POST", "share", { link_ids: [linkId], recipients, message: msg.value || undefined });
      notify((res && res.message) || "Sent", "ok");
    } catch (err) {
      fail(err);
    }
  });
  return form;
}

export async function shareDialog(bucket, rec) {
  let mail = false;
  try {
    mail = !!(await features()).mail;
  } catch (e) {
    mail = false;
  }
  return modal(`Share ${rec.entry} at ${fmtUs(rec.ts)}`, (close) => {
    const body = h("div", { class: "stack" });
    body.appendChild(h("p", { class: "muted", text: `${rec.contentType || "application/octet-stream"} · ${fmtBytes(rec.size)} · timestamp ${rec.ts} µs` }));
    const name = h("input", { name: "file_name", required: true, value: fileNameOf(rec) });
    const expires = h("input", { type: "datetime-local", name: "expire_at", required: true, value: sToLocalInput(Math.floor(Date.now() / 1000) + 7 * 86400) });
    const maxDl = h("input", { type: "number", name: "max_downloads", min: "1", step: "1", placeholder: "unlimited" });
    const password = h("input", { type: "password", name: "password", autocomplete: "new-password", placeholder: "none" });
    const receipt = h("input", { type: "email", name: "receipt_to", placeholder: "optional: mail a receipt per download" });
    const signIn = h("input", { type: "checkbox", name: "require_authentication" });
    const form = h("form", { class: "stack", id: "share-form" },
      field("File name", name), field("Expires", expires), field("Max downloads", maxDl), field("Password", password),
      field("Receipt address", receipt),
      h("label", { class: "inline" }, signIn, "downloaders must sign in with a token that can read this bucket"),
      h("button", { type: "submit", text: "Create link", name: "create-link" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const expireAt = localInputToS(expires.value);
      const req = {
        bucket, entry: rec.entry, record_entry: rec.entry, record_timestamp: Number(rec.ts), expire_at: expireAt,
        base_url: publicBase,
        query: { query_type: "QUERY", entries: [rec.entry], start: Number(rec.ts), stop: Number(rec.ts) + 1 },
      };
      if (maxDl.value) req.max_downloads = Number(maxDl.value);
      if (password.value) req.password = password.value;
      if (receipt.value.trim()) req.receipt_to = receipt.value.trim();
      if (signIn.checked) req.require_authentication = true;
      try {
        const res = await send("POST", "links/" + name.value.split("/").map(enc).join("/"), req);
        password.value = "";
        form.remove();
        // The short URL (when the server has short links) makes a far more readable QR code.
        const extra = h("div", { class: "stack" },
          res.short_url ? field("Full link", h("input", { type: "text", readonly: true, value: res.link, class: "mono", name: "full-link" })) : null,
          mail && res.id ? mailForm(res.id) : null);
        body.appendChild(linkResult(res.short_url || res.link, close, extra));
        notify("Share link created", "ok");
      } catch (err) {
        fail(err);
      }
    });
    body.appendChild(form);
    return body;
  });
}
