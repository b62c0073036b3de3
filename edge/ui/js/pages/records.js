// Records page: choose bucket/entry, time range and a `when` filter, list records with labels,
// preview (images, text, JSON), download, share.
// Owns: the record browser. Must not: render record content as markup: images are shown only
// for raster types through a blob URL, text and JSON only through textContent; SVG, HTML and
// everything else are offered as downloads.

import { enc, entryPath, getJson, request } from "../api.js";
import { openQuery } from "../batch.js";
import { clear, fail, field, fmtBytes, fmtUs, h, notify } from "../dom.js";
import { shareDialog } from "../share.js";

// Raster formats only: an SVG can carry script and is never shown, only downloaded.
export const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif"]);
const TEXT_TYPES = new Set(["application/json", "text/plain", "text/csv", "application/x-ndjson", "text/markdown"]);
const PREVIEW_LIMIT = 4 * 1024 * 1024;
let blobUrls = [];

function baseType(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase();
}

export function previewKind(ct) {
  const t = baseType(ct);
  if (IMAGE_TYPES.has(t)) return "image";
  if (TEXT_TYPES.has(t) || t.endsWith("+json")) return "text";
  return "download";
}

const EXT = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "application/json": "json",
  "text/plain": "txt", "text/csv": "csv", "image/svg+xml": "svg", "text/html": "html", "video/mp4": "mp4", "application/pdf": "pdf" };

export function fileNameOf(rec) {
  const fromLabel = rec.labels && rec.labels.filename;
  if (fromLabel) return fromLabel.replace(/[\\/\x00-\x1f]/g, "_");
  return `${rec.entry.replace(/\//g, "_")}_${rec.ts}.${EXT[baseType(rec.contentType)] || "bin"}`;
}

function recordUrl(bucket, rec) {
  return `b/${enc(bucket)}/${entryPath(rec.entry)}?ts=${rec.ts}`;
}

async function fetchBlob(bucket, rec) {
  const resp = await request("GET", recordUrl(bucket, rec));
  return resp.blob();
}

export async function download(bucket, rec) {
  const blob = await fetchBlob(bucket, rec);
  // application/octet-stream: the browser saves the bytes, it never interprets them.
  const url = URL.createObjectURL(new Blob([blob], { type: "application/octet-stream" }));
  const a = h("a", { href: url, download: fileNameOf(rec), hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function releaseBlobs() {
  for (const u of blobUrls) URL.revokeObjectURL(u);
  blobUrls = [];
}

async function preview(pane, bucket, rec) {
  releaseBlobs();
  clear(pane);
  pane.appendChild(h("h2", { text: `${rec.entry} @ ${rec.ts}` }));
  pane.appendChild(h("p", { class: "muted", text: `${fmtUs(rec.ts)} · ${rec.contentType} · ${fmtBytes(rec.size)}` }));
  const kind = previewKind(rec.contentType);
  if (kind === "download" || rec.size > PREVIEW_LIMIT) {
    pane.appendChild(h("p", { text: kind === "download" ? "This type is not previewed; download it to open it." : "Too large to preview." }));
  } else {
    const blob = await fetchBlob(bucket, rec);
    if (kind === "image") {
      const url = URL.createObjectURL(new Blob([blob], { type: baseType(rec.contentType) }));
      blobUrls.push(url);
      pane.appendChild(h("img", { class: "preview-img", src: url, alt: fileNameOf(rec), id: "preview-img" }));
    } else {
      let text = await blob.text();
      if (baseType(rec.contentType).includes("json")) {
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch (e) {
          /* shown as it is */
        }
      }
      pane.appendChild(h("pre", { class: "preview", id: "preview-text", text }));
    }
  }
  pane.appendChild(h("div", { class: "row" },
    h("button", { type: "button", text: "Download", name: "preview-download", onclick: () => download(bucket, rec).catch(fail) }),
    h("button", { type: "button", class: "secondary", text: "Share…", name: "preview-share", onclick: () => shareDialog(bucket, rec) })));
}

function toUs(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t * 1000 : null;
}

export async function mount(root, ctx) {
  releaseBlobs();
  root.appendChild(h("h1", { text: "Records" }));
  const { buckets } = await getJson("list");
  if (!buckets.length) {
    root.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
    return;
  }
  const chosen = ctx.args[0] && buckets.some((b) => b.name === ctx.args[0]) ? ctx.args[0] : buckets[0].name;
  const bucketSel = h("select", { name: "bucket" }, buckets.map((b) => h("option", { value: b.name, text: b.name, selected: b.name === chosen })));
  const entrySel = h("select", { name: "entry" });
  const start = h("input", { type: "datetime-local", name: "start", step: "1" });
  const stop = h("input", { type: "datetime-local", name: "stop", step: "1" });
  const when = h("textarea", { name: "when", placeholder: '{"&kind": {"$eq": "jpeg"}}', rows: 2 });
  const results = h("section", { class: "card", id: "record-list" });
  const pane = h("section", { class: "card", id: "preview" }, h("p", { class: "muted", text: "Select a record to preview it." }));
  const form = h("form", { class: "card stack", id: "record-filter" },
    h("div", { class: "row" }, field("Bucket", bucketSel), field("Entry", entrySel), field("From", start), field("Until (exclusive)", stop)),
    field("when (JSON condition)", when, "optional; the ReductStore conditional query language"),
    h("div", { class: "row" }, h("button", { type: "submit", text: "Search", name: "search" })));
  root.append(form, results, pane);

  async function loadEntries() {
    const info = await getJson("b/" + enc(bucketSel.value));
    clear(entrySel);
    entrySel.appendChild(h("option", { value: "", text: "(all entries)" }));
    for (const e of info.entries) {
      entrySel.appendChild(h("option", { value: e.name, text: `${e.name} (${e.record_count})`, selected: ctx.params.get("entry") === e.name }));
    }
  }

  async function search() {
    let cond = null;
    if (when.value.trim()) {
      try {
        cond = JSON.parse(when.value);
      } catch (e) {
        notify("The when condition is not valid JSON: " + e.message, "error");
        return;
      }
    }
    const bucket = bucketSel.value;
    const reader = await openQuery(bucket, { entries: entrySel.value ? [entrySel.value] : null, start: toUs(start.value), stop: toUs(stop.value), when: cond });
    clear(results);
    const tbody = h("tbody");
    const more = h("button", { type: "button", class: "secondary", text: "Load more", name: "more", hidden: true });
    const count = h("h2", { text: "…" });
    results.append(count, h("table", {}, h("thead", {}, h("tr", {}, ["time", "entry", "size", "type", "labels", ""].map((t) => h("th", { text: t })))), tbody), more);
    let total = 0;
    const page = async () => {
      const { records, done } = await reader.next(200);
      total += records.length;
      for (const rec of records) tbody.appendChild(row(bucket, rec, pane, tbody));
      count.textContent = `${total} record(s)${done ? "" : " so far"}`;
      more.hidden = done;
    };
    more.addEventListener("click", () => page().catch(fail));
    await page();
  }

  bucketSel.addEventListener("change", () => loadEntries().then(search).catch(fail));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search().catch(fail);
  });
  await loadEntries();
  await search();
}

function row(bucket, rec, pane, tbody) {
  const tr = h("tr", { dataset: { ts: rec.ts, entry: rec.entry } },
    h("td", { class: "mono", text: fmtUs(rec.ts), title: rec.ts }),
    h("td", { text: rec.entry }),
    h("td", { class: "num", text: fmtBytes(rec.size) }),
    h("td", { text: rec.contentType }),
    h("td", { class: "labels" }, Object.entries(rec.labels).map(([k, v]) => h("span", { text: `${k}=${v}` }))),
    h("td", {},
      h("button", { type: "button", class: "link", text: "Preview", name: "preview", onclick: () => {
        for (const r of tbody.querySelectorAll("tr.selected")) r.classList.remove("selected");
        tr.classList.add("selected");
        preview(pane, bucket, rec).catch(fail);
      } }),
      h("button", { type: "button", class: "link", text: "Download", name: "download", onclick: () => download(bucket, rec).catch(fail) }),
      h("button", { type: "button", class: "link", text: "Share", name: "share", onclick: () => shareDialog(bucket, rec) })));
  return tr;
}

export function unmount() {
  releaseBlobs();
}
