// Tokens page: list, create with permissions (the secret is shown once), delete.
// Owns: the token forms. Must not: store a token secret anywhere.

import { enc, getJson, send } from "../api.js";
import { clear, confirmAction, copyText, fail, field, fmtS, h, modal, notify, table } from "../dom.js";

function list(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

export async function mount(root, ctx) {
  root.appendChild(h("h1", { text: "Tokens" }));
  if (!ctx.features.auth) {
    root.appendChild(h("p", { class: "muted", text: "Authentication is disabled on this server (RS_DISABLE_AUTH=true): there are no tokens." }));
    return;
  }
  if (!(ctx.me.permissions && ctx.me.permissions.full_access)) {
    root.appendChild(h("p", { class: "muted", text: "Managing tokens needs a full-access token." }));
    return;
  }
  const box = h("section", { class: "card", id: "token-list" });
  const name = h("input", { name: "token-name", required: true, autocomplete: "off" });
  const full = h("input", { type: "checkbox", name: "full_access" });
  const read = h("input", { name: "read", placeholder: "bucket-1, cam-*" });
  const write = h("input", { name: "write", placeholder: "bucket-1" });
  const expires = h("input", { type: "datetime-local", name: "expires_at" });
  const form = h("form", { class: "card stack", id: "token-create" }, h("h2", { text: "New token" }),
    h("div", { class: "row" }, field("Name", name), h("label", { class: "inline" }, full, "full access")),
    h("div", { class: "row" }, field("Read buckets", read, "comma-separated names or patterns"), field("Write buckets", write), field("Expires (optional)", expires)),
    h("div", { class: "row" }, h("button", { type: "submit", text: "Create token", name: "create-token" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { permissions: { full_access: full.checked, read: list(read.value), write: list(write.value) } };
    if (expires.value) body.expires_at = new Date(expires.value).toISOString();
    try {
      const res = await send("POST", "tokens/" + enc(name.value.trim()), body);
      await showSecret(name.value.trim(), res.value);
      form.reset();
      await render(box);
    } catch (err) {
      fail(err);
    }
  });
  root.append(form, box);
  await render(box);
}

function showSecret(name, value) {
  return modal(`Token ${name}`, (close) => {
    const out = h("input", { type: "text", readonly: true, value, class: "mono", name: "token-secret", id: "token-secret" });
    return h("div", { class: "stack" },
      h("p", { class: "secret", text: "This is the only time the secret is shown. Copy it now." }), out,
      h("div", { class: "row" },
        h("button", { type: "button", text: "Copy", onclick: async () => notify((await copyText(value, out)) ? "Token copied" : "Copy failed", "info") }),
        h("button", { type: "button", class: "secondary", text: "Done", name: "done", onclick: () => close(true) })));
  });
}

async function render(box) {
  const { tokens } = await getJson("tokens");
  clear(box);
  box.appendChild(h("h2", { text: `${tokens.length} token(s)` }));
  const rows = tokens.map((t) => {
    const p = t.permissions || { full_access: false, read: [], write: [] };
    return h("tr", { dataset: { token: t.name } },
      h("td", { text: t.name }),
      h("td", { text: p.full_access ? "full access" : "" }),
      h("td", { text: (p.read || []).join(", ") }),
      h("td", { text: (p.write || []).join(", ") }),
      h("td", { text: t.created_at ? fmtS(Date.parse(t.created_at) / 1000) : "—" }),
      h("td", { text: t.expires_at ? fmtS(Date.parse(t.expires_at) / 1000) : "never" }),
      h("td", {}, t.is_provisioned ? h("span", { class: "muted", text: "provisioned" }) :
        h("button", { type: "button", class: "act danger", text: "Delete", name: "delete-token", "aria-label": `Delete token ${t.name}`, onclick: () => remove(t.name, box).catch(fail) })));
  });
  box.appendChild(table([{ text: "name", class: "primary" }, "access", "read", "write", { text: "created", class: "time" },
    { text: "expires", class: "time" }, { text: "", class: "actions" }], rows));
}

async function remove(name, box) {
  if (!(await confirmAction("Delete token", `Clients using '${name}' will be refused from now on.`, name))) return;
  await send("DELETE", "tokens/" + enc(name));
  notify(`Token '${name}' deleted`, "ok");
  await render(box);
}
