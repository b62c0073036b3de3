// Reading $system events (JSON records) for the System page and the Overview: entries, queries, bodies.
// Owns: the $system bucket's entries (all, or those of one kind), running a time-bounded
// (optionally sampled) query on an entry and splitting the batch-protocol-v1 answer into parsed
// JSON bodies.
// Must not: touch the DOM.

import { ApiError, entryPath, getJson, request, send } from "./api.js";

export const SYSTEM = "$system";
const SYS = encodeURIComponent(SYSTEM);

// GET b/$system (info, settings, entries with their record counts and oldest/latest records);
// null when the bucket does not exist yet.
export async function systemInfo() {
  try {
    return await getJson(`b/${SYS}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

// Entry names of $system starting with `kind/` (e.g. "audit"); [] when the bucket does not exist yet.
export async function systemEntries(kind) {
  const doc = await systemInfo();
  return doc ? doc.entries.map((e) => e.name).filter((n) => n.startsWith(kind + "/")).sort() : [];
}

// The events of one entry with timestamps in [startUs, stopUs), oldest first, at most `limit`
// (the newest `limit` when there are more). With `eachS` the server keeps one record every
// `eachS` seconds (the query's each_s), so a long span costs a bounded number of records.
export async function readEvents(entry, startUs, stopUs, limit = 2000, eachS = null) {
  const path = `b/${SYS}/${entryPath(entry)}`;
  const query = { query_type: "QUERY", start: Math.floor(startUs), stop: Math.ceil(stopUs) };
  if (eachS) query.each_s = eachS;
  let id;
  try {
    ({ id } = await send("POST", `${path}/q`, query));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
  const out = [];
  for (;;) {
    const resp = await request("GET", `${path}/batch?q=${id}`);
    if (resp.status === 204) break;
    const stamps = [];
    for (const [name, value] of resp.headers.entries()) {
      const m = /^x-reduct-time-(\d+)$/.exec(name);
      if (m) stamps.push({ ts: BigInt(m[1]), size: Number(value.split(",")[0]) });
    }
    stamps.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    const bytes = new Uint8Array(await resp.arrayBuffer());
    const dec = new TextDecoder();
    let at = 0;
    for (const s of stamps) {
      try {
        out.push(JSON.parse(dec.decode(bytes.subarray(at, at + s.size))));
      } catch (e) {
        // a record that is not JSON is not an event of ours: skipped
      }
      at += s.size;
    }
    if (out.length > limit) out.splice(0, out.length - limit);
    if (resp.headers.get("x-reduct-last") === "true") break;
  }
  return out;
}

// Events of every entry of a kind (optionally only some names), merged and ordered by time.
export async function readKind(kind, names, startUs, stopUs, limit = 2000) {
  const entries = (await systemEntries(kind)).filter((e) => !names || names.includes(e.split("/").pop()));
  const lists = await Promise.all(entries.map((e) => readEvents(e, startUs, stopUs, limit)));
  const all = lists.flat().sort((a, b) => a.timestamp - b.timestamp);
  return all.length > limit ? all.slice(all.length - limit) : all;
}
