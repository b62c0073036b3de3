// Overview page: server info; per bucket its use against its quota and its write rate over time;
// the data file system; the server's write/read rate.
// Owns: reading /info, /list, (if this token may) /metrics, and the history of the charts;
// choosing where that history comes from and saying so on the page.
// Must not: change anything on the server.
//
// Where the pictures come from, best first:
// 1. the $system usage records (usage-history.js): durable, so 1 h, 24 h and 7 d where the
//    records reach that far; read with the caller's token through the ordinary query API. They
//    need a token that may read $system (full access, or "$system" named in its read list: /list
//    shows the bucket exactly then) and events switched on (features.system_events).
// 2. else GET metrics/history: the server's in-memory samples of the last 15 minutes (every few
//    seconds) or 24 hours (every minute), lost at a restart; needs a token that may read metrics.
// 3. else no charts: each bucket's quota fill still shows (from GET b/<name>).

import { getJson, request } from "../api.js";
import { lineChart } from "../chart.js";
import { clear, fmtBytes, fmtUs, h } from "../dom.js";
import { SYSTEM } from "../sysevents.js";
import { openHistory } from "../usage-history.js";

let timer = null;
let charts = [];
let mounted = 0;          // bumped by every mount and unmount: a mount that was left stops

function mayReadMetrics(ctx) {
  const f = ctx.features;
  if (!f.metrics) return false;
  const p = ctx.me.permissions || {};
  return f.metrics_open || !f.auth || !!p.full_access || (p.read || []).includes("$metrics");
}

// Samples from the Prometheus text: {name: [{labels, value}]}
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const lm of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    (out[m[1]] = out[m[1]] || []).push({ labels, value: Number(m[3]) });
  }
  return out;
}

function maySeeSystem(ctx) {
  const p = ctx.me.permissions || {};
  return !ctx.features.auth || !!p.full_access || (p.read || []).includes(SYSTEM);
}

// Where the history comes from: {kind: "events", history} | {kind: "metrics" | "none", why}.
async function historySource(ctx, list, info, canMetrics) {
  let why;
  if (ctx.features.system_events === false) why = `${SYSTEM} events are switched off (RS_SYSTEM_EVENTS_ENABLED=false)`;
  else if (!list.buckets.some((b) => b.name === SYSTEM)) {
    why = maySeeSystem(ctx) ? `there are no ${SYSTEM} usage records yet (the first is written one usage interval after the start)`
      : `this token cannot read ${SYSTEM} (that needs full access, or "${SYSTEM}" named in its read list)`;
  } else {
    try {
      const history = await openHistory(list.buckets.map((b) => b.name), info.instance_name);
      if (history) return { kind: "events", history };
      why = `there are no ${SYSTEM} usage records yet (the first is written one usage interval after the start)`;
    } catch (err) {
      why = `reading ${SYSTEM} failed (${err.message})`;
    }
  }
  return { kind: canMetrics ? "metrics" : "none", why };
}

function every(value) {
  const seconds = value >= 10 ? Math.round(value) : value;     // a window of 60.002 s is "1 min"
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return seconds >= 90 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds * 10) / 10} s`;
}

function one(metrics, name) {
  const s = metrics && metrics[name];
  return s && s.length ? s[0].value : null;
}

function fillBar(used, total, label) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const inner = h("div");
  inner.style.width = pct.toFixed(1) + "%";
  return h("div", { class: "bar" + (pct >= 95 ? " full" : pct >= 80 ? " warn" : ""), role: "meter", "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": pct.toFixed(1), "aria-label": label || "fill", title: pct.toFixed(1) + " %" }, inner);
}

function stat(value, label) {
  return h("div", { class: "stat" }, h("b", { text: value }), h("span", { text: label }));
}

function formatUptime(s) {
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + hh + "h " + mm + "m";
}

const rate = (v) => fmtBytes(Math.round(v)) + "/s";

export async function mount(root, ctx) {
  const gen = ++mounted;
  const [info, list] = await Promise.all([getJson("info"), getJson("list")]);
  const canMetrics = mayReadMetrics(ctx);
  let metrics = null;
  if (canMetrics) {
    try {
      metrics = parseMetrics(await (await request("GET", "metrics", { root: true })).text());
    } catch (err) {
      metrics = null;
    }
  }
  root.appendChild(h("h1", { text: "Overview" }));
  root.appendChild(h("section", { class: "card", id: "server-info", "aria-label": "Server" }, h("div", { class: "grid" },
    stat(info.instance_name || "edge", "instance"),
    stat(info.version, "API-compatible version"),
    stat(String(info.bucket_count), "buckets"),
    stat(fmtBytes(info.usage), "stored"),
    stat(formatUptime(info.uptime), "uptime"),
    stat(fmtUs(info.latest_record), "latest record"))));

  // --- buckets: quota fill and write rate ---------------------------------------------------
  const source = await historySource(ctx, list, info, canMetrics);
  const history = source.kind === "events" ? source.history : null;
  const charted = source.kind !== "none";
  const spans = history ? history.spans().map((sp) => [sp.key, sp.label]) : [["15m", "15 min"], ["24h", "24 h"]];
  const span = { value: spans[0][0] };
  const spanBtns = spans.map(([v, label]) => h("button", { type: "button", text: label, name: "span-" + v, "aria-pressed": String(v === span.value) }));
  const sourceNote = h("p", { class: "hint", id: "history-source" });
  const usage = h("section", { class: "card", id: "bucket-usage", "aria-labelledby": "usage-title", dataset: { source: source.kind } },
    h("div", { class: "head" }, h("h2", { text: "Buckets: use and write rate", id: "usage-title" }),
      charted ? h("div", { class: "seg", role: "group", "aria-label": "Time span" }, spanBtns) : null),
    charted ? h("div", { class: "legend" }, h("span", { class: "k1", text: "write rate" }),
      history ? h("span", { class: "k3", text: "stored (right axis, up to the quota)" }) : null) : null,
    sourceNote);
  const cards = h("div", { class: "bucket-cards" });
  usage.appendChild(cards);
  if (!list.buckets.length) usage.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
  root.appendChild(usage);
  const quotaOf = {};
  for (const s of (metrics && metrics.edge_bucket_quota_bytes) || []) quotaOf[s.labels.bucket] = { size: s.value, type: s.labels.quota_type };
  const sizeOf = {};
  const rateCharts = {};
  for (const b of list.buckets) {
    sizeOf[b.name] = b.size;
    const quota = h("div", { class: "quota", dataset: { bucket: b.name } }, h("span", { class: "muted", text: "…" }));
    const canvas = charted ? h("canvas", { class: "chart small", role: "img", "aria-label": `Write rate of ${b.name}`, dataset: { bucket: b.name } }) : null;
    const now = h("span", { class: "hint", text: "" });
    cards.appendChild(h("article", { class: "card", dataset: { bucket: b.name }, "aria-label": b.name },
      h("h3", { class: "sr-only", text: b.name }),
      h("div", { class: "head" }, h("a", { href: "#/records/" + encodeURIComponent(b.name), text: b.name, class: "bucket-name" }),
        h("span", { class: "hint", text: `${b.entry_count} entr${b.entry_count === 1 ? "y" : "ies"}` })),
      quota,
      canvas ? h("div", { class: "stack" }, canvas, now) : h("p", { class: "hint", text: `latest record ${fmtUs(b.latest_record)}` })));
    if (canvas) {
      const chart = lineChart(canvas);
      charts.push(chart);
      rateCharts[b.name] = { chart, canvas, now };
    }
    const fill = (size, quotaSize, quotaType) => {
      clear(quota);
      quotaOf[b.name] = { size: quotaSize, type: quotaType };
      if (!quotaSize || quotaType === "NONE") {
        quota.append(h("p", { class: "hint", text: `${fmtBytes(size)} stored, no quota` }));
        return;
      }
      quota.append(fillBar(size, quotaSize, `${b.name}: ${fmtBytes(size)} of ${fmtBytes(quotaSize)}`),
        h("p", { class: "hint", text: `${fmtBytes(size)} of ${fmtBytes(quotaSize)} (${quotaType}, ${Math.min(100, (100 * size) / quotaSize).toFixed(1)} %)` }));
    };
    if (quotaOf[b.name]) fill(b.size, quotaOf[b.name].size, quotaOf[b.name].type);
    else {
      getJson("b/" + encodeURIComponent(b.name)).then((full) => fill(full.info.size, full.settings.quota_size, full.settings.quota_type))
        .catch(() => { clear(quota).appendChild(h("span", { class: "muted", text: "quota unknown" })); });
    }
  }

  // --- disk ------------------------------------------------------------------------------------
  const total = one(metrics, "edge_disk_total_bytes");
  if (total) {
    const free = one(metrics, "edge_disk_free_bytes") || 0;
    root.appendChild(h("section", { class: "card", id: "disk", "aria-labelledby": "disk-title" }, h("h2", { text: "Data file system", id: "disk-title" }),
      h("p", { text: `${fmtBytes(total - free)} used of ${fmtBytes(total)} (${fmtBytes(free)} free)` }),
      fillBar(total - free, total, "file system use")));
  }

  if (!charted) {
    if (source.why) sourceNote.textContent = `No history: ${source.why}, and it cannot read metrics.`;
    return;
  }
  const canvas = h("canvas", { class: "chart", id: "rates", role: "img", "aria-label": "Write and read rate of the server" });
  const note = h("small", { class: "hint", id: "rates-note" });
  root.appendChild(h("section", { class: "card", "aria-labelledby": "rates-title" }, h("h2", { text: "Write and read rate", id: "rates-title" }),
    h("div", { class: "legend" }, h("span", { class: "k1", text: "written" }), h("span", { class: "k2", text: "read" })),
    canvas, note));
  const server = lineChart(canvas);
  charts.push(server);

  // One bucket's chart: the write rate, and with usage records also the stored bytes against the quota.
  // lastLabel: what the last point is ("now": a sample of the last seconds; or the last bin).
  const drawBucket = (name, rc, t, values, range, stored, lastLabel = "now") => {
    const q = quotaOf[name];
    const series = [{ values, color: 1, fill: true }];
    if (stored) series.push({ values: stored, color: 3, axis: 2 });
    rc.chart.draw({ t, ...range, yFmt: rate, yFloor: 1000, series,
      y2: stored ? { fmt: fmtBytes, floor: 1000, max: q && q.type !== "NONE" ? q.size : 0 } : undefined });
    const known = values.filter((v) => v !== null && v !== undefined);
    const last = known.length ? known[known.length - 1] : 0;
    const peak = known.reduce((m, v) => Math.max(m, v), 0);
    const size = stored ? stored.filter((v) => v !== null).pop() : undefined;
    const tail = size !== undefined ? `, ${fmtBytes(size)} stored` : "";
    rc.canvas.dataset.points = String(known.length);
    rc.canvas.dataset.peak = String(Math.round(peak));
    rc.now.textContent = known.length ? `writing ${rate(last)} ${lastLabel}, peak ${rate(peak)}` : "collecting samples…";
    rc.canvas.setAttribute("aria-label", `Write rate of ${name}: ${rate(last)} ${lastLabel}, peak ${rate(peak)} in the shown span${tail}`);
  };

  const fromMetrics = async () => {
    let hist;
    try {
      hist = await getJson("metrics/history" + (span.value === "24h" ? "?span=24h" : ""), { root: true });
    } catch (err) {
      return; /* transient: the next tick retries */
    }
    const samples = hist.samples || [];
    const t = samples.map((s) => s.t * 1000);
    server.draw({ t, yFmt: rate, yFloor: 1000, series: [
      { values: samples.map((s) => s.bytes_written_per_s), color: 1, fill: true },
      { values: samples.map((s) => s.bytes_read_per_s), color: 2 }] });
    note.textContent = samples.length ? `last ${Math.round((samples.length * hist.interval_s) / 60) || "<1"} min, one point every ${hist.interval_s} s (UTC)` : "collecting samples…";
    for (const [name, rc] of Object.entries(rateCharts)) {
      const values = samples.map((s) => (s.buckets && s.buckets[name] ? s.buckets[name].bytes_written_per_s : 0));
      drawBucket(name, rc, t, values, {}, null);
    }
  };

  const drawEvents = () => {
    const v = history.view(sizeOf);
    const range = { t0: v.t0, t1: v.t1 };
    server.draw({ t: v.t, ...range, yFmt: rate, yFloor: 1000, series: [
      { values: v.total.write, color: 1, fill: true }, { values: v.total.read, color: 2 }] });
    const long = v.t1 - v.t0 > 86400000 * 0.99;
    const stamp = (ms) => new Date(ms).toISOString().slice(long ? 0 : 11, 16).replace("T", " ");
    note.textContent = `${stamp(v.t0)} – ${stamp(v.t1)} UTC, one point every ${every(v.binS)}`;
    for (const [name, rc] of Object.entries(rateCharts)) {
      const bins = v.buckets[name];
      drawBucket(name, rc, v.t, bins.write, range, bins.stored, `over the last ${every(v.binS)}`);
    }
    sourceNote.textContent = `From the ${SYSTEM} usage records (one window every ${every(history.intervalS)}` +
      (v.sampledS ? `; over this span one window every ${every(v.sampledS)} is read` : "") + `): ${v.records} records.`;
  };
  const fromEvents = async (reload) => {
    try {
      if (reload) await history.load(span.value);
      else await history.refresh();
    } catch (err) {
      if (reload) sourceNote.textContent = `Reading ${SYSTEM} failed: ${err.message}`;
      return; /* transient: the next tick retries */
    }
    drawEvents();
  };

  if (!history) sourceNote.textContent = `From the server's in-memory samples (metrics/history, lost at a restart): ${source.why}.`;
  // One read at a time (a span change waits for a tick's read; a tick while one runs is skipped).
  let pending = 0;
  let chain = Promise.resolve();
  const refresh = (reload = false) => {
    if (!reload && pending) return chain;
    pending++;
    chain = chain.then(() => (history ? fromEvents(reload) : fromMetrics())).catch(() => { /* the next tick retries */ })
      .finally(() => { pending--; });
    return chain;
  };
  for (const b of spanBtns) {
    b.addEventListener("click", () => {
      span.value = b.name.slice(5);
      for (const o of spanBtns) o.setAttribute("aria-pressed", String(o === b));
      refresh(true);
    });
  }
  await refresh(true);
  if (gen !== mounted) return;     // left while loading: no timer for a page that is gone
  const tick = history ? Math.min(60, Math.max(10, history.intervalS)) : 5;
  timer = window.setInterval(() => refresh(false), tick * 1000);
}

export function unmount() {
  mounted++;
  if (timer) window.clearInterval(timer);
  timer = null;
  for (const c of charts) c.destroy();
  charts = [];
}
