// Records page: choose bucket/entry, time range and a `when` filter; see the result as a timeline
// (records and bytes over time; drag across it, or use the arrow keys and Enter, to zoom the
// query), as a list with labels, or as a grid of thumbnails of its images; preview (images,
// text, JSON), download, share.
// Owns: the record browser. Must not: render record content as markup: images are shown only
// for raster types through a blob URL (or drawn into a canvas), text and JSON only through
// textContent; SVG, HTML and everything else are offered as downloads.
//
// Cost on a small device: one metadata-only query per search; the timeline reads at most
// TIMELINE_CAP records of it (metadata only, in the background, after the first page is shown),
// thumbnails fetch only images that scroll into view, at most THUMB_PARALLEL at a time, and
// keep a 160 px canvas, not the image.

import { enc, entryPath, getJson, request } from "../api.js";
import { openQuery } from "../batch.js";
import { histogram } from "../chart.js";
import { clear, fail, field, fmtBytes, fmtUs, h, notify, table } from "../dom.js";
import { baseType, fileNameOf, previewKind } from "../media.js";
import { shareDialog } from "../share.js";

export { IMAGE_TYPES, fileNameOf, previewKind } from "../media.js";

const PAGE = 200;
const TIMELINE_CAP = 5000;
const PREVIEW_LIMIT = 4 * 1024 * 1024;
const THUMB_LIMIT = 8 * 1024 * 1024;
const THUMB_PARALLEL = 3;
const THUMB_WIDTH = 160;
let blobUrls = [];
let live = null;          // the mounted page's state, so unmount() can stop its work

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

// Bring the preview where the eye is: on a phone (or below a long list) it is scrolled into
// view; its heading takes the focus so a keyboard or screen-reader user lands there too.
function reveal(pane) {
  const r = pane.getBoundingClientRect();
  const vh = window.innerHeight || document.documentElement.clientHeight;
  if (r.top < 0 || r.top > vh * 0.25) pane.scrollIntoView({ block: "start" });
  const heading = pane.querySelector("h2");
  if (heading) heading.focus({ preventScroll: true });
}

async function preview(pane, bucket, rec) {
  releaseBlobs();
  clear(pane);
  pane.classList.add("showing");
  pane.appendChild(h("h2", { text: `${rec.entry} at ${fmtUs(rec.ts)}`, tabindex: "-1", id: "preview-title" }));
  pane.appendChild(h("p", { class: "muted", text: `${rec.contentType} · ${fmtBytes(rec.size)} · timestamp ${rec.ts} µs` }));
  const actions = h("div", { class: "row" },
    h("button", { type: "button", text: "Download", name: "preview-download", onclick: () => download(bucket, rec).catch(fail) }),
    h("button", { type: "button", class: "secondary", text: "Share…", name: "preview-share", onclick: () => shareDialog(bucket, rec) }));
  const kind = previewKind(rec.contentType);
  if (kind === "download" || rec.size > PREVIEW_LIMIT) {
    pane.appendChild(h("p", { text: kind === "download" ? "This type is not previewed; download it to open it." : "Too large to preview." }));
    pane.appendChild(actions);
    reveal(pane);
    return;
  }
  const loading = h("p", { class: "muted", text: "Loading…" });
  pane.append(loading, actions);
  reveal(pane);
  const blob = await fetchBlob(bucket, rec);
  let shown;
  if (kind === "image") {
    const url = URL.createObjectURL(new Blob([blob], { type: baseType(rec.contentType) }));
    blobUrls.push(url);
    shown = h("img", { class: "preview-img", src: url, alt: fileNameOf(rec), id: "preview-img" });
  } else {
    let text = await blob.text();
    if (baseType(rec.contentType).includes("json")) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch (e) {
        /* shown as it is */
      }
    }
    shown = h("pre", { class: "preview", id: "preview-text", text, tabindex: "0", "aria-label": "Record content" });
  }
  if (loading.isConnected) loading.replaceWith(shown);
}

// datetime-local (local time, to the second) <-> µs
function inputToUs(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t * 1000 : null;
}

function usToInput(us, roundUp) {
  const ms = roundUp ? Math.ceil(us / 1000000) * 1000 : Math.floor(us / 1000000) * 1000;
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function binRecords(records, t0, t1, n) {
  const bins = Array.from({ length: n }, () => ({ count: 0, bytes: 0 }));
  const span = Math.max(1, t1 - t0);
  for (const r of records) {
    const t = Number(r.ts) / 1000;
    const i = Math.min(n - 1, Math.max(0, Math.floor(((t - t0) / span) * n)));
    bins[i].count++;
    bins[i].bytes += r.size;
  }
  return bins;
}

export async function mount(root, ctx) {
  releaseBlobs();
  const view = ctx.params.get("view") === "thumbs" ? "thumbs" : "list";
  const listBtn = h("button", { type: "button", text: "List", name: "view-list", "aria-pressed": String(view === "list") });
  const thumbBtn = h("button", { type: "button", text: "Thumbnails", name: "view-thumbs", "aria-pressed": String(view === "thumbs") });
  root.appendChild(h("div", { class: "head" }, h("h1", { text: "Records" }),
    h("div", { class: "seg", role: "group", "aria-label": "Show records as" }, listBtn, thumbBtn)));
  const { buckets } = await getJson("list");
  if (!buckets.length) {
    root.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
    return;
  }
  // Without a bucket in the address: the first one holding the user's data, not $system (sorted
  // first, and written by the server itself every minute, so it would otherwise win as soon as
  // the first event appears).
  const own = buckets.find((b) => !b.name.startsWith("$")) || buckets[0];
  const chosen = ctx.args[0] && buckets.some((b) => b.name === ctx.args[0]) ? ctx.args[0] : own.name;
  const bucketSel = h("select", { name: "bucket" }, buckets.map((b) => h("option", { value: b.name, text: b.name, selected: b.name === chosen })));
  const entrySel = h("select", { name: "entry" });
  const start = h("input", { type: "datetime-local", name: "start", step: "1" });
  const stop = h("input", { type: "datetime-local", name: "stop", step: "1" });
  const when = h("textarea", { name: "when", placeholder: '{"&kind": {"$eq": "jpeg"}}', rows: 2 });
  const zoomOut = h("button", { type: "button", class: "secondary", text: "Zoom out", name: "zoom-out", hidden: true });
  const wide = (label) => {
    label.classList.add("wide");
    return label;
  };
  const more = h("details", { class: "more", open: !!ctx.params.get("when") },
    h("summary", { text: "Condition (when)" }), field("when (JSON condition)", when, "optional; the ReductStore conditional query language"));
  const form = h("form", { class: "card stack", id: "record-filter", "aria-label": "Query" },
    h("div", { class: "row" }, field("Bucket", bucketSel), field("Entry", entrySel), wide(field("From", start)), wide(field("Until (exclusive)", stop))),
    more,
    h("div", { class: "row" }, h("button", { type: "submit", text: "Search", name: "search" }), zoomOut));

  const canvas = h("canvas", { class: "chart", id: "timeline-chart", tabindex: "0", role: "img",
    "aria-label": "Timeline of the result. Use the arrow keys to pick a time span, Shift to widen it, Enter to zoom in." });
  const tlStatus = h("p", { class: "hint", id: "timeline-status", "aria-live": "polite" });
  const tlNote = h("p", { class: "hint", id: "timeline-note" });
  const timeline = h("section", { class: "card", id: "timeline", "aria-labelledby": "timeline-title" },
    h("div", { class: "head" }, h("h2", { text: "Timeline", id: "timeline-title" }),
      h("div", { class: "legend" }, h("span", { class: "k1", text: "records" }), h("span", { class: "k3", text: "bytes" }))),
    h("div", { class: "chart-box" }, canvas), tlStatus, tlNote);

  const results = h("section", { class: "card", id: "record-list", "aria-labelledby": "result-count" });
  const pane = h("section", { class: "card", id: "preview", "aria-label": "Preview" }, h("p", { class: "muted", text: "Select a record to preview it." }));
  const layout = h("div", { class: "records-layout with-preview" }, results, pane);
  root.append(form, timeline, layout);

  const state = { view, zooms: [], query: null, gen: 0, chart: null, thumbs: null, stopped: false };
  live = state;

  function setView(v) {
    state.view = v;
    listBtn.setAttribute("aria-pressed", String(v === "list"));
    thumbBtn.setAttribute("aria-pressed", String(v === "thumbs"));
    if (state.query) renderResults(state.query);
  }
  listBtn.addEventListener("click", () => setView("list"));
  thumbBtn.addEventListener("click", () => setView("thumbs"));

  async function loadEntries() {
    const info = await getJson("b/" + enc(bucketSel.value));
    clear(entrySel);
    entrySel.appendChild(h("option", { value: "", text: "(all entries)" }));
    for (const e of info.entries) {
      entrySel.appendChild(h("option", { value: e.name, text: `${e.name} (${e.record_count})`, selected: ctx.params.get("entry") === e.name }));
    }
  }

  function rangeFromInputs() {
    const z = state.zooms[state.zooms.length - 1];
    // The inputs show a zoom rounded to seconds; the query uses the exact range while they still do.
    if (z && start.value === z.shownStart && stop.value === z.shownStop) return { start: z.start, stop: z.stop };
    return { start: inputToUs(start.value), stop: inputToUs(stop.value) };
  }

  function zoomTo(startUs, stopUs) {
    if (!(stopUs > startUs)) return;
    const z = { start: Math.floor(startUs), stop: Math.ceil(stopUs), shownStart: usToInput(startUs, false), shownStop: usToInput(stopUs, true),
      before: { start: start.value, stop: stop.value } };
    state.zooms.push(z);
    start.value = z.shownStart;
    stop.value = z.shownStop;
    zoomOut.hidden = false;
    search().catch(fail);
  }

  zoomOut.addEventListener("click", () => {
    const z = state.zooms.pop();
    if (!z) return;
    start.value = z.before.start;
    stop.value = z.before.stop;
    zoomOut.hidden = state.zooms.length === 0;
    search().catch(fail);
  });

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
    const gen = ++state.gen;
    const bucket = bucketSel.value;
    const range = rangeFromInputs();
    const reader = await openQuery(bucket, { entries: entrySel.value ? [entrySel.value] : null, start: range.start, stop: range.stop, when: cond });
    const q = { bucket, reader, range, all: [], done: false, shown: 0, gen, loading: null };
    state.query = q;
    q.loadUntil = (n) => {
      // one reader: loads are chained, never concurrent
      q.loading = (q.loading || Promise.resolve()).then(async () => {
        while (!q.done && q.all.length < n && state.gen === gen && !state.stopped) {
          const { records, done } = await reader.next(Math.min(PAGE, n - q.all.length));
          q.all.push(...records);
          q.done = done;
          drawTimeline(q);
        }
      });
      return q.loading;
    };
    await q.loadUntil(PAGE);
    if (state.gen !== gen) return;
    q.shown = Math.min(PAGE, q.all.length);
    renderResults(q);
    drawTimeline(q);
    // The rest of the timeline, in the background (bounded).
    q.loadUntil(TIMELINE_CAP).then(() => {
      if (state.gen === gen) {
        drawTimeline(q);
        updateCount(q);
      }
    }).catch(() => { /* the list keeps working; the timeline shows what it has */ });
  }

  let drawPending = false;
  function drawTimeline(q) {
    if (drawPending) return;
    drawPending = true;
    window.requestAnimationFrame(() => {
      drawPending = false;
      if (state.query !== q) return;
      const recs = q.all;
      let t0;
      let t1;
      if (q.range.start !== null && q.range.stop !== null) {
        t0 = q.range.start / 1000;
        t1 = q.range.stop / 1000;
      } else if (recs.length) {
        t0 = q.range.start !== null ? q.range.start / 1000 : Number(recs[0].ts) / 1000;
        t1 = q.range.stop !== null ? q.range.stop / 1000 : Number(recs[recs.length - 1].ts) / 1000;
        const pad = Math.max(1, (t1 - t0) * 0.02);
        if (q.range.start === null) t0 -= pad;
        if (q.range.stop === null) t1 += pad;
      } else {
        t1 = Date.now();
        t0 = t1 - 3600000;
      }
      const n = Math.max(12, Math.min(120, Math.round((canvas.clientWidth || 600) / 9)));
      const bins = binRecords(recs, t0, t1, n);
      const opts = { t0, t1, bins, countFmt: (v) => String(Math.round(v)), bytesFmt: fmtBytes, onSelect: (a, b) => zoomTo(a * 1000, b * 1000),
        status: (text) => { tlStatus.textContent = text; } };
      if (!state.chart) state.chart = histogram(canvas, opts);
      else state.chart.update(opts);
      const total = recs.reduce((s, r) => s + r.size, 0);
      canvas.setAttribute("aria-label", `Timeline of ${recs.length} record(s), ${fmtBytes(total)}, from ${fmtUs(t0 * 1000)} to ${fmtUs(t1 * 1000)}. ` +
        "Use the arrow keys to pick a time span, Shift to widen it, Enter to zoom in.");
      tlNote.textContent = !recs.length ? "No records in this range." :
        q.done ? `${recs.length} record(s), ${fmtBytes(total)}. Drag across the chart to zoom in.` :
          recs.length >= TIMELINE_CAP ? `The first ${recs.length} records of a larger result (${fmtBytes(total)}); drag across the chart to narrow the query.` :
            `${recs.length} record(s) so far…`;
    });
  }

  function updateCount(q) {
    const count = results.querySelector("#result-count");
    if (count) count.textContent = `${q.done ? q.all.length : q.all.length + "+"} record(s)${q.shown < q.all.length || !q.done ? `, ${q.shown} shown` : ""}`;
  }

  function renderResults(q) {
    if (state.thumbs) state.thumbs.disconnect();
    state.thumbs = null;
    clear(results);
    const shown = q.all.slice(0, q.shown);
    const more = h("button", { type: "button", class: "secondary", text: "Load more", name: "more", hidden: q.done && q.shown >= q.all.length });
    results.appendChild(h("h2", { id: "result-count", text: "" }));
    if (state.view === "thumbs") {
      const images = shown.filter((r) => previewKind(r.contentType) === "image");
      const grid = h("ul", { class: "thumbs", id: "thumbs", "aria-label": "Images" });
      results.append(grid);
      if (!images.length) results.appendChild(h("p", { class: "muted", text: "No image records among these; the list shows all of them." }));
      else if (images.length < shown.length) results.appendChild(h("p", { class: "hint", text: `${shown.length - images.length} record(s) that are not images are only in the list.` }));
      state.thumbs = thumbGrid(grid, q.bucket, images, pane);
    } else {
      const rows = shown.map((rec) => row(q.bucket, rec, pane, results));
      results.appendChild(table([{ text: "time", class: "time" }, "entry", { text: "size", class: "num" }, "type", { text: "labels", class: "labels" },
        { text: "", class: "actions", sr: "actions" }], rows, { id: "record-table" }));
      if (!shown.length) results.appendChild(h("p", { class: "muted", text: "No records match." }));
    }
    results.appendChild(more);
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        await q.loadUntil(q.shown + PAGE);
        q.shown = Math.min(q.shown + PAGE, q.all.length);
        renderResults(q);
      } catch (err) {
        fail(err);
        more.disabled = false;
      }
    });
    updateCount(q);
  }

  bucketSel.addEventListener("change", () => loadEntries().then(search).catch(fail));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search().catch(fail);
  });
  await loadEntries();
  await search();
}

function select(container, el) {
  for (const r of container.querySelectorAll("tr.selected")) r.classList.remove("selected");
  for (const r of container.querySelectorAll("[aria-current=true]")) r.removeAttribute("aria-current");
  if (el.tagName === "TR") el.classList.add("selected");
  else el.setAttribute("aria-current", "true");
}

function row(bucket, rec, pane, container) {
  const tr = h("tr", { dataset: { ts: rec.ts, entry: rec.entry } },
    h("td", { text: fmtUs(rec.ts), title: rec.ts + " µs" }),
    h("td", { text: rec.entry }),
    h("td", { text: fmtBytes(rec.size) }),
    h("td", { text: rec.contentType }),
    h("td", {}, Object.entries(rec.labels).map(([k, v]) => h("span", { text: `${k}=${v}` }))),
    h("td", {},
      h("button", { type: "button", class: "act", text: "Preview", name: "preview", "aria-label": `Preview ${fileNameOf(rec)}`, onclick: () => {
        select(container, tr);
        preview(pane, bucket, rec).catch(fail);
      } }),
      h("button", { type: "button", class: "act", text: "Download", name: "download", "aria-label": `Download ${fileNameOf(rec)}`, onclick: () => download(bucket, rec).catch(fail) }),
      h("button", { type: "button", class: "act", text: "Share", name: "share", "aria-label": `Share ${fileNameOf(rec)}`, onclick: () => shareDialog(bucket, rec) })));
  return tr;
}

// A grid of image thumbnails; each is fetched when it scrolls into view and drawn into a small
// canvas (the full image is released at once). Returns {disconnect()}.
function thumbGrid(grid, bucket, images, pane) {
  const queue = [];
  let running = 0;
  let stopped = false;
  const pump = () => {
    while (!stopped && running < THUMB_PARALLEL && queue.length) {
      const job = queue.shift();
      running++;
      job().finally(() => {
        running--;
        pump();
      });
    }
  };
  const io = new IntersectionObserver((seen) => {
    for (const e of seen) {
      if (!e.isIntersecting) continue;
      io.unobserve(e.target);
      const { rec, box } = e.target.thumb;
      queue.push(() => drawThumb(bucket, rec, box));
      pump();
    }
  }, { rootMargin: "200px" });
  for (const rec of images) {
    const box = h("span", { class: "ph", text: rec.size > THUMB_LIMIT ? fmtBytes(rec.size) : "…" });
    const caption = h("span", { text: fmtUs(rec.ts).replace(" UTC", "") });
    const btn = h("button", { type: "button", name: "thumb", dataset: { ts: rec.ts, entry: rec.entry },
      "aria-label": `${fileNameOf(rec)}, ${fmtUs(rec.ts)}: preview` }, box, caption);
    btn.addEventListener("click", () => {
      select(grid, btn);
      preview(pane, bucket, rec).catch(fail);
    });
    const li = h("li", {}, btn);
    grid.appendChild(li);
    if (rec.size <= THUMB_LIMIT) {
      btn.thumb = { rec, box };
      io.observe(btn);
    }
  }
  return { disconnect() { stopped = true; io.disconnect(); queue.length = 0; } };
}

async function drawThumb(bucket, rec, box) {
  try {
    const blob = await fetchBlob(bucket, rec);
    const typed = new Blob([blob], { type: baseType(rec.contentType) });
    const bmp = await createImageBitmap(typed);
    const scale = Math.min(1, THUMB_WIDTH / bmp.width);
    const canvas = h("canvas", { width: Math.max(1, Math.round(bmp.width * scale)), height: Math.max(1, Math.round(bmp.height * scale)), "aria-hidden": "true" });
    canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
    bmp.close();
    if (box.isConnected) box.replaceWith(canvas);
  } catch (e) {
    box.textContent = "no preview";
  }
}

export function unmount() {
  releaseBlobs();
  if (live) {
    live.stopped = true;
    live.gen++;
    if (live.thumbs) live.thumbs.disconnect();
    if (live.chart) live.chart.destroy();
  }
  live = null;
}
