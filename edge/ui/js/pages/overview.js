// Overview page: server info, disk and quota fill per bucket, the write/read rate chart.
// Owns: reading /info, /list and (if this token may) /metrics + /metrics/history.
// Must not: change anything on the server.

import { getJson, request } from "../api.js";
import { fmtBytes, fmtUs, h } from "../dom.js";
import { drawRates } from "../chart.js";

let timer = null;

function mayReadMetrics(ctx) {
  const f = ctx.features;
  if (!f.metrics) return false;
  return f.metrics_open || !f.auth || !!(ctx.me.permissions && ctx.me.permissions.full_access);
}

// A few gauges from the Prometheus text: name{labels} value
function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1] + (m[2] || "")] = Number(m[3]);
  }
  return out;
}

function fillBar(used, total) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const inner = h("div");
  inner.style.width = pct.toFixed(1) + "%";
  const bar = h("div", { class: "bar" + (pct >= 95 ? " full" : pct >= 80 ? " warn" : ""), title: pct.toFixed(1) + " %" }, inner);
  bar.setAttribute("role", "meter");
  bar.setAttribute("aria-valuenow", pct.toFixed(1));
  return bar;
}

export async function mount(root, ctx) {
  const [info, list] = await Promise.all([getJson("info"), getJson("list")]);
  let metrics = null;
  if (mayReadMetrics(ctx)) {
    metrics = parseMetrics(await (await request("GET", "metrics", { root: true })).text());
  }
  root.appendChild(h("h1", { text: "Overview" }));
  const stats = h("div", { class: "grid" },
    stat(info.instance_name || "edge", "instance"),
    stat(info.version, "API-compatible version"),
    stat(String(info.bucket_count), "buckets"),
    stat(fmtBytes(info.usage), "stored"),
    stat(formatUptime(info.uptime), "uptime"),
    stat(fmtUs(info.latest_record), "latest record"));
  root.appendChild(h("section", { class: "card", id: "server-info" }, stats));

  const disk = h("section", { class: "card", id: "disk" }, h("h2", { text: "Disk and quotas" }));
  if (metrics && metrics.edge_disk_total_bytes) {
    const total = metrics.edge_disk_total_bytes;
    const used = total - metrics.edge_disk_free_bytes;
    disk.appendChild(h("p", {}, `Data file system: ${fmtBytes(used)} used of ${fmtBytes(total)} (${fmtBytes(metrics.edge_disk_free_bytes)} free)`));
    disk.appendChild(fillBar(used, total));
  }
  const rows = list.buckets.map((b) => {
    const bucketInfo = b;
    return h("tr", {},
      h("td", {}, h("a", { href: "#/records/" + encodeURIComponent(b.name), text: b.name })),
      h("td", { class: "num", text: fmtBytes(bucketInfo.size) }),
      h("td", { class: "quota", dataset: { bucket: b.name } }, "…"),
      h("td", { class: "num", text: String(b.entry_count) }),
      h("td", { text: fmtUs(b.latest_record) }));
  });
  disk.appendChild(h("table", {}, h("thead", {}, h("tr", {}, ["bucket", "size", "quota fill", "entries", "latest"].map((t) => h("th", { text: t })))),
    h("tbody", {}, rows)));
  if (!list.buckets.length) disk.appendChild(h("p", { class: "muted", text: "No buckets yet." }));
  root.appendChild(disk);
  // Quota settings need GET /b/{name}: fill the cells as they arrive.
  for (const cell of disk.querySelectorAll("td.quota")) {
    const name = cell.dataset.bucket;
    getJson("b/" + encodeURIComponent(name)).then((full) => {
      cell.textContent = "";
      const s = full.settings;
      if (s.quota_type === "NONE" || !s.quota_size) {
        cell.appendChild(h("span", { class: "muted", text: "no quota" }));
      } else {
        cell.appendChild(fillBar(full.info.size, s.quota_size));
        cell.appendChild(h("small", { class: "muted", text: `${s.quota_type} ${fmtBytes(full.info.size)} / ${fmtBytes(s.quota_size)}` }));
      }
    }).catch(() => { cell.textContent = "?"; });
  }

  if (metrics) {
    const canvas = h("canvas", { class: "chart", id: "rates", width: 900, height: 160 });
    const chartCard = h("section", { class: "card" }, h("h2", { text: "Write and read rate" }),
      h("div", { class: "legend" }, h("span", { class: "w", text: "■ written B/s" }), h("span", { class: "r", text: "■ read B/s" })),
      canvas, h("small", { class: "muted", id: "rates-note" }));
    root.appendChild(chartCard);
    const refresh = async () => {
      try {
        const hist = await getJson("metrics/history", { root: true });
        drawRates(canvas, hist.samples);
        const note = chartCard.querySelector("#rates-note");
        note.textContent = hist.samples.length ? `last ${Math.round(hist.samples.length * hist.interval_s)} s, one point every ${hist.interval_s} s` : "collecting samples…";
      } catch (err) {
        /* transient: the next tick retries */
      }
    };
    await refresh();
    timer = window.setInterval(refresh, 5000);
  }
}

export function unmount() {
  if (timer) window.clearInterval(timer);
  timer = null;
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
