// Buckets page: list, create, edit quota/settings, rename, delete (typed confirmation).
// Owns: the bucket forms. Must not: guess server rules: the server's error text is shown as is.

import { enc, getJson, send } from "../api.js";
import { clear, confirmAction, fail, field, fmtBytes, fmtUs, h, modal, notify, table } from "../dom.js";

const QUOTA_TYPES = ["NONE", "FIFO", "HARD"];

function settingsForm(settings, submitText, withName, onSubmit) {
  const name = withName ? h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_\\-]+", autocomplete: "off" }) : null;
  const qt = h("select", { name: "quota_type" }, QUOTA_TYPES.map((t) => h("option", { value: t, text: t, selected: settings.quota_type === t })));
  const qs = h("input", { name: "quota_size", type: "number", min: "0", step: "1", value: String(settings.quota_size ?? 0) });
  const mbs = h("input", { name: "max_block_size", type: "number", min: "1", step: "1", value: String(settings.max_block_size ?? "") });
  const mbr = h("input", { name: "max_block_records", type: "number", min: "1", step: "1", value: String(settings.max_block_records ?? "") });
  const form = h("form", { class: "stack" },
    name ? field("Name", name, "letters, digits, - and _") : null,
    h("div", { class: "row" }, field("Quota type", qt), field("Quota size (bytes)", qs)),
    h("div", { class: "row" }, field("Max block size (bytes)", mbs), field("Max block records", mbr)),
    h("div", { class: "row" }, h("button", { type: "submit", text: submitText, name: "submit" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const num = (el) => (el.value === "" ? null : Number(el.value));
    const body = { quota_type: qt.value, quota_size: num(qs), max_block_size: num(mbs), max_block_records: num(mbr) };
    try {
      await onSubmit(name ? name.value.trim() : null, body);
    } catch (err) {
      fail(err);
    }
  });
  return form;
}

export async function mount(root, ctx) {
  const full = !!(ctx.me.permissions && ctx.me.permissions.full_access);
  root.appendChild(h("h1", { text: "Buckets" }));
  const list = h("section", { class: "card", id: "bucket-list" });
  root.appendChild(list);
  if (full) {
    const defaults = (await getJson("info")).defaults.bucket;
    root.appendChild(h("section", { class: "card", id: "bucket-create" }, h("h2", { text: "New bucket" }),
      settingsForm(defaults, "Create bucket", true, async (name, body) => {
        await send("POST", "b/" + enc(name), body);
        notify(`Bucket '${name}' created`, "ok");
        await render(list, full);
      })));
  }
  await render(list, full);
}

async function render(list, full) {
  const data = await getJson("list");
  clear(list);
  list.appendChild(h("h2", { text: `${data.buckets.length} bucket(s)` }));
  const rows = data.buckets.map((b) => h("tr", { dataset: { bucket: b.name } },
    h("td", {}, h("a", { href: "#/records/" + encodeURIComponent(b.name), text: b.name })),
    h("td", { text: String(b.entry_count) }),
    h("td", { text: fmtBytes(b.size) }),
    h("td", { text: fmtUs(b.oldest_record) }),
    h("td", { text: fmtUs(b.latest_record) }),
    h("td", {}, b.is_provisioned ? h("span", { class: "muted", text: "provisioned" }) : full ? [
      h("button", { type: "button", class: "act", text: "Settings", name: "edit", "aria-label": `Settings of ${b.name}`, onclick: () => edit(b.name, list, full).catch(fail) }),
      h("button", { type: "button", class: "act", text: "Rename", name: "rename", "aria-label": `Rename ${b.name}`, onclick: () => rename(b.name, list, full) }),
      h("button", { type: "button", class: "act danger", text: "Delete", name: "delete", "aria-label": `Delete ${b.name}`, onclick: () => remove(b.name, list, full) }),
    ] : null)));
  list.appendChild(table([{ text: "name", class: "primary" }, { text: "entries", class: "num" }, { text: "size", class: "num" },
    { text: "oldest", class: "time" }, { text: "latest", class: "time" }, { text: "", class: "actions" }], rows));
  if (!data.buckets.length) list.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
}

async function edit(name, list, full) {
  const info = await getJson("b/" + enc(name));
  await modal(`Settings of ${name}`, (close) => settingsForm(info.settings, "Save", false, async (_, body) => {
    await send("PUT", "b/" + enc(name), body);
    notify(`Settings of '${name}' saved`, "ok");
    close(true);
    await render(list, full);
  }));
}

async function rename(name, list, full) {
  await modal(`Rename ${name}`, (close) => {
    const input = h("input", { name: "new_name", required: true, value: name, pattern: "[A-Za-z0-9_\\-]+" });
    const form = h("form", { class: "stack" }, field("New name", input), h("button", { type: "submit", text: "Rename" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await send("PUT", `b/${enc(name)}/rename`, { new_name: input.value.trim() });
        notify(`Renamed '${name}' to '${input.value.trim()}'`, "ok");
        close(true);
        await render(list, full);
      } catch (err) {
        fail(err);
      }
    });
    return form;
  });
}

async function remove(name, list, full) {
  const ok = await confirmAction(`Delete ${name}`, `This removes bucket '${name}' with all its records. It cannot be undone.`, name);
  if (!ok) return;
  try {
    await send("DELETE", "b/" + enc(name));
    notify(`Bucket '${name}' deleted`, "ok");
    await render(list, full);
  } catch (err) {
    fail(err);
  }
}
