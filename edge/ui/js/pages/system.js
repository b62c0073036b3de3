// System page: the $system events as an operator reads them: usage over time (a chart) and the
// audit trail (a table with filters: time range, token, status, method, path).
// Owns: these two views and their filters. Must not: change anything on the server; read
// anything but $system (through sysevents.js).

import { ApiError, getJson } from "../api.js";
import { clear, fail, fmtBytes, fmtUs, h, table } from "../dom.js";
import { SYSTEM, readKind, systemEntries } from "../sysevents.js";
import { lineChart } from "../chart.js";

const RANGES = [["1 hour", 3600], ["24 hours", 86400], ["7 days", 7 * 86400], ["30 days", 30 * 86400]];
const STATUSES = [["any status", () => true], ["2xx", (s) => s >= 200 && s < 300], ["4xx", (s) => s >= 400 && s < 500],
  ["401 (refused)", (s) => s === 401], ["403", (s) => s === 403], ["5xx", (s) => s >= 500]];
const METHODS = ["any method", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const MAX_ROWS = 500;
let charts = [];

function select(name, options, value, label) {
  const el = h("select", { name, "aria-label": label });
  for (const [label, v] of options) el.appendChild(h("option", { value: String(v), text: label }));
  if (value !== undefined) el.value = String(value);
  return el;
}

function rangeUs(seconds) {
  const now = Date.now() * 1000;
  return [now - seconds * 1e6, now + 60e6];
}

export async function mount(root, ctx) {
  root.appendChild(h("h1", { text: "System" }));
  try {
    await getJson(`b/${encodeURIComponent(SYSTEM)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      root.appendChild(h("p", { class: "muted", text: `Reading ${SYSTEM} needs a full-access token or one whose read list names "${SYSTEM}" exactly.` }));
      return;
    }
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    root.appendChild(h("p", { class: "muted", id: "system-empty", text: `No events yet: ${SYSTEM} is created by the first one (usage every minute, audit a few seconds after an authenticated call).` }));
    return;
  }
  const usage = h("section", { class: "card", id: "usage" });
  const audit = h("section", { class: "card", id: "audit" });
  root.append(usage, audit);
  await Promise.all([mountUsage(usage), mountAudit(audit, ctx)]);
}

async function mountUsage(box) {
  const names = (await systemEntries("usage")).map((e) => e.split("/").pop());
  const which = select("usage-of", (names.includes("total") ? ["total"] : []).concat(names.filter((n) => n !== "total")).map((n) => [n === "total" ? "all buckets" : n, n]), undefined, "Usage of");
  const range = select("usage-range", RANGES, 86400, "Usage time range");
  const canvas = h("canvas", { class: "chart", id: "usage-chart", role: "img", "aria-label": "Usage over time" });
  const chart = lineChart(canvas);
  charts.push(chart);
  const note = h("small", { class: "muted", id: "usage-note" });
  const latest = h("div", { id: "usage-latest" });
  const legend = h("div", { class: "legend" }, h("span", { class: "k1", text: "written" }), h("span", { class: "k2", text: "read" }),
    h("span", { class: "k3", text: "stored (right axis)" }));
  box.append(h("h2", { text: "Usage" }), h("div", { class: "row" }, which, range), legend, canvas, note, latest);
  const render = async () => {
    const [start, stop] = rangeUs(Number(range.value));
    const events = await readKind("usage", [which.value], start, stop, 5000);
    chart.draw({ t: events.map((e) => e.timestamp / 1000), yFmt: fmtBytes, yFloor: 1000, y2: { fmt: fmtBytes, floor: 1000 },
      t0: events.length ? undefined : start / 1000, t1: events.length ? undefined : Date.now(),
      series: [{ values: events.map((e) => e.write_bytes || 0), color: 1 }, { values: events.map((e) => e.read_bytes || 0), color: 2 },
        { values: events.map((e) => e.storage_bytes || 0), color: 3, axis: 2 }] });
    const last = events[events.length - 1];
    canvas.setAttribute("aria-label", last ? `Usage of ${which.value === "total" ? "all buckets" : which.value}: ${events.length} windows, ` +
      `${fmtBytes(last.storage_bytes)} stored at the end` : "Usage over time: no records in this range");
    note.textContent = events.length ? `${events.length} windows of ${events[events.length - 1].duration} s; bytes per window` : "no usage records in this range";
    clear(latest);
    if (last) {
      latest.appendChild(table(["at", "stored", "records", "entries", "blocks", "written", "read"], [h("tr", {},
        h("td", { text: fmtUs(last.timestamp) }), h("td", { text: fmtBytes(last.storage_bytes) }),
        h("td", { text: String(last.record_count) }), h("td", { text: String(last.entry_count) }),
        h("td", { text: String(last.block_count) }),
        h("td", { text: `${fmtBytes(last.write_bytes)} in ${last.records_written} records` }),
        h("td", { text: `${fmtBytes(last.read_bytes)} in ${last.records_read} records` }))]));
    }
  };
  which.addEventListener("change", () => render().catch(fail));
  range.addEventListener("change", () => render().catch(fail));
  if (names.length) await render();
  else {
    chart.draw({ t: [], series: [], yFmt: fmtBytes, yFloor: 1000, t0: Date.now() - 3600000, t1: Date.now() });
    note.textContent = "no usage records yet (written every minute)";
  }
}

async function mountAudit(box) {
  const tokens = (await systemEntries("audit")).map((e) => e.split("/").pop());
  const range = select("audit-range", RANGES, 3600, "Audit time range");
  const token = select("audit-token", [["any token", ""], ...tokens.map((t) => [t, t])], undefined, "Token");
  const status = select("audit-status", STATUSES.map(([label], i) => [label, i]), undefined, "Status");
  const method = select("audit-method", METHODS.map((m, i) => [m, i ? m : ""]), undefined, "Method");
  const path = h("input", { name: "audit-path", type: "search", placeholder: "path contains", "aria-label": "Path contains" });
  const refresh = h("button", { type: "button", text: "Refresh", name: "audit-refresh" });
  const count = h("p", { class: "muted", id: "audit-count" });
  const out = h("div", { id: "audit-table" });
  box.append(h("h2", { text: "Audit trail" }), h("div", { class: "row" }, range, token, status, method, path, refresh), count, out);
  let events = [];
  const show = () => {
    const okStatus = STATUSES[Number(status.value)][1];
    const needle = path.value.trim();
    const rows = events.filter((e) => okStatus(e.status) && (!method.value || e.method === method.value) &&
      (!needle || String(e.path).includes(needle))).reverse();
    count.textContent = `${rows.length} record(s)${rows.length > MAX_ROWS ? `, newest ${MAX_ROWS} shown` : ""}; identical calls within a few seconds are one record`;
    clear(out).appendChild(table(["time", "token", "method", "path", "client", "status", "calls", "duration"],
      rows.slice(0, MAX_ROWS).map((e) => h("tr", { dataset: { token: e.token_name } },
        h("td", { text: fmtUs(e.timestamp) }), h("td", { text: e.token_name }), h("td", { text: e.method }),
        h("td", { class: "mono", text: e.path }), h("td", { text: e.client_ip || "—" }),
        h("td", { text: String(e.status) }), h("td", { text: String(e.call_count) }),
        h("td", { text: `${(Number(e.duration) * 1000).toFixed(1)} ms` })))));
  };
  const load = async () => {
    const [start, stop] = rangeUs(Number(range.value));
    events = await readKind("audit", token.value ? [token.value] : null, start, stop, 5000);
    show();
  };
  for (const el of [range, token]) el.addEventListener("change", () => load().catch(fail));
  for (const el of [status, method]) el.addEventListener("change", show);
  path.addEventListener("input", show);
  refresh.addEventListener("click", () => load().catch(fail));
  await load();
}

export function unmount() {
  for (const c of charts) c.destroy();
  charts = [];
}
