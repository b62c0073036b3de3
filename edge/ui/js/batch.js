// Reading record metadata with the v2 batch protocol (POST io/{b}/q + HEAD io/{b}/read).
// Owns: parsing x-reduct-entries / -start-ts / -labels / -<idx>-<delta> headers into records.
// Must not: touch the DOM.

import { enc, request, send } from "./api.js";

function pct(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

// "a=1,b=\"x,y\",c=" -> [["a","1"],["b","x,y"],["c",""]]
export function parseDelta(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) break;
    const key = text.slice(i, eq).trim();
    let j = eq + 1;
    let value;
    if (text[j] === '"') {
      const end = text.indexOf('"', j + 1);
      value = text.slice(j + 1, end < 0 ? text.length : end);
      j = end < 0 ? text.length : end + 1;
      const comma = text.indexOf(",", j);
      j = comma < 0 ? text.length : comma + 1;
    } else {
      const comma = text.indexOf(",", j);
      value = text.slice(j, comma < 0 ? text.length : comma).trim();
      j = comma < 0 ? text.length : comma + 1;
    }
    out.push([key, value]);
    i = j;
  }
  return out;
}

export function parseBatchHeaders(headers) {
  const entries = (headers.get("x-reduct-entries") || "").split(",").filter((s) => s !== "").map(pct);
  const start = BigInt(headers.get("x-reduct-start-ts") || "0");
  const labelNames = (headers.get("x-reduct-labels") || "").split(",").filter((s) => s !== "").map(pct);
  const raw = [];
  for (const [name, value] of headers.entries()) {
    const m = /^x-reduct-(\d+)-(\d+)$/.exec(name);
    if (m) raw.push({ idx: Number(m[1]), delta: BigInt(m[2]), value });
  }
  raw.sort((a, b) => (a.idx - b.idx) || (a.delta < b.delta ? -1 : a.delta > b.delta ? 1 : 0));
  const state = new Map();
  const records = [];
  for (const r of raw) {
    const prev = state.get(r.idx) || { contentType: "application/octet-stream", labels: {} };
    const c1 = r.value.indexOf(",");
    const size = Number(c1 < 0 ? r.value : r.value.slice(0, c1));
    let contentType = prev.contentType;
    let labels = { ...prev.labels };
    if (c1 >= 0) {
      const rest = r.value.slice(c1 + 1);
      const c2 = rest.indexOf(",");
      const ct = (c2 < 0 ? rest : rest.slice(0, c2)).trim();
      if (ct) contentType = ct;
      if (c2 >= 0) {
        for (const [k, v] of parseDelta(rest.slice(c2 + 1))) {
          const key = /^\d+$/.test(k) && labelNames.length ? labelNames[Number(k)] ?? k : k;
          if (v === "") delete labels[key];
          else labels[key] = v;
        }
      }
    }
    state.set(r.idx, { contentType, labels });
    records.push({ entry: entries[r.idx] ?? String(r.idx), ts: (start + r.delta).toString(), size, contentType, labels });
  }
  records.sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : a.entry.localeCompare(b.entry)));
  return { records, last: headers.get("x-reduct-last") === "true" };
}

// A metadata-only query over some entries; returns a reader: next(limit) -> {records, done}.
export async function openQuery(bucket, { entries, start, stop, when }) {
  const body = { query_type: "QUERY", only_metadata: true, ttl: 120 };
  if (entries && entries.length) body.entries = entries;
  if (start !== null && start !== undefined) body.start = start;
  if (stop !== null && stop !== undefined) body.stop = stop;
  if (when) body.when = when;
  const { id } = await send("POST", `io/${enc(bucket)}/q`, body);
  let done = false;
  return {
    id,
    async next(limit = 200) {
      const out = [];
      while (!done && out.length < limit) {
        const resp = await request("HEAD", `io/${enc(bucket)}/read`, { headers: { "x-reduct-query-id": String(id) } });
        if (resp.status === 204) {
          done = true;
          break;
        }
        const batch = parseBatchHeaders(resp.headers);
        out.push(...batch.records);
        if (batch.last) done = true;
      }
      return { records: out, done };
    },
  };
}
