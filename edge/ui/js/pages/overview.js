// Overview page: server info; per bucket its use against its quota and its write rate over time;
// the data file system; the server's write/read rate.
// Owns: reading /info, /list and (if this token may) /metrics + /metrics/history.
// Must not: change anything on the server.
//
// Where the pictures come from: the server samples its counters every few seconds and keeps the
// last 15 minutes at that step and the last 24 hours at one minute (GET metrics/history, memory
// bounded by the number of buckets). A token that cannot read metrics still sees each bucket's
// quota fill (from GET b/<name>), without rates.

import { getJson, request } from "../api.js";
import { lineChart } from "../chart.js";
import { clear, fmtBytes, fmtUs, h } from "../dom.js";

let timer = null;
let charts = [];

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
  const span = { value: "15m" };
  const spanBtns = ["15m", "24h"].map((v) => h("button", { type: "button", text: v === "15m" ? "15 min" : "24 h", name: "span-" + v, "aria-pressed": String(v === span.value) }));
  const usage = h("section", { class: "card", id: "bucket-usage", "aria-labelledby": "usage-title" },
    h("div", { class: "head" }, h("h2", { text: "Buckets: use and write rate", id: "usage-title" }),
      canMetrics ? h("div", { class: "seg", role: "group", "aria-label": "Time span" }, spanBtns) : null));
  const cards = h("div", { class: "bucket-cards" });
  usage.appendChild(cards);
  if (!list.buckets.length) usage.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
  root.appendChild(usage);
  const quotaOf = {};
  for (const s of (metrics && metrics.edge_bucket_quota_bytes) || []) quotaOf[s.labels.bucket] = { size: s.value, type: s.labels.quota_type };
  const rateCharts = {};
  for (const b of list.buckets) {
    const quota = h("div", { class: "quota", dataset: { bucket: b.name } }, h("span", { class: "muted", text: "…" }));
    const canvas = canMetrics ? h("canvas", { class: "chart small", role: "img", "aria-label": `Write rate of ${b.name}`, dataset: { bucket: b.name } }) : null;
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

  if (!canMetrics) return;
  const canvas = h("canvas", { class: "chart", id: "rates", role: "img", "aria-label": "Write and read rate of the server" });
  const note = h("small", { class: "hint", id: "rates-note" });
  root.appendChild(h("section", { class: "card", "aria-labelledby": "rates-title" }, h("h2", { text: "Write and read rate", id: "rates-title" }),
    h("div", { class: "legend" }, h("span", { class: "k1", text: "written" }), h("span", { class: "k2", text: "read" })),
    canvas, note));
  const server = lineChart(canvas);
  charts.push(server);

  const refresh = async () => {
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
      rc.chart.draw({ t, yFmt: rate, yFloor: 1000, series: [{ values, color: 1, fill: true }] });
      const last = values.length ? values[values.length - 1] : 0;
      const peak = values.reduce((m, v) => Math.max(m, v), 0);
      rc.now.textContent = values.length ? `writing ${rate(last)} now, peak ${rate(peak)}` : "collecting samples…";
      rc.canvas.setAttribute("aria-label", `Write rate of ${name}: ${rate(last)} now, peak ${rate(peak)} in the shown span`);
    }
  };
  for (const b of spanBtns) {
    b.addEventListener("click", () => {
      span.value = b.name.slice(5);
      for (const o of spanBtns) o.setAttribute("aria-pressed", String(o === b));
      refresh();
    });
  }
  await refresh();
  timer = window.setInterval(refresh, 5000);
}

export function unmount() {
  if (timer) window.clearInterval(timer);
  timer = null;
  for (const c of charts) c.destroy();
  charts = [];
}
