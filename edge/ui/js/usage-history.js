// The Overview's history from the $system usage records: per bucket and in total, over 1 h,
// 24 h or 7 d.
// Owns: finding this instance's usage entries, reading a bounded number of records per span
// (every window while the span has at most `perSeries` of them, else one window every `each_s`
// seconds, sampled by the server's query), reading only what is new on each refresh, and
// aggregating the records into at most BINS bins on the client (rates in bytes/s, stored bytes).
// Must not: touch the DOM or draw.
//
// What a usage record means: one window (EDGE_USAGE_INTERVAL_S, 60 s by default) of counters,
// not a running total; a bucket's record is written only in windows where it changed, while
// `total` is written every window. So a window that `total` has and a bucket lacks is an idle
// window of that bucket (write rate 0, size unchanged), and time that `total` does not cover
// is time the server did not run (a gap in the lines). A sampled span holds a kept window's
// rate over the windows the query skipped after it (at most each_s) and no further: the next
// kept record is the first at least each_s later, so a longer gap had no record at all.
//
// Cost, bounded on a Raspberry Pi: at most TOTAL_BUDGET records per span over all series
// (PER_SERIES each, fewer when there are many buckets), about 330 bytes each; a refresh reads
// only the records written since the last one; queries run at most PARALLEL at a time.

import { readEvents, systemInfo } from "./sysevents.js";

export const SPANS = [{ key: "1h", label: "1 h", s: 3600 }, { key: "24h", label: "24 h", s: 86400 },
  { key: "7d", label: "7 d", s: 7 * 86400 }];
export const BINS = 240;
const PER_SERIES = 1440;       // 24 h of one-minute windows: the default span reads every window
const MIN_PER_SERIES = 120;
const TOTAL_BUDGET = 12000;
const PARALLEL = 3;
const MAX_SEGMENT = 120;       // sysevents/records.py: longer names are cut and end in a hash
const TOTAL = "total";

// An entry-path segment as the server makes it (sysevents/records.py segment()).
export function segment(name) {
  return String(name).trim().replace(/[^A-Za-z0-9_-]/g, "_") || "unknown";
}

// The usage entry of every name (a bucket, or "total") among this instance's entries.
function entryOf(name, entries, instance) {
  const prefix = `usage/${instance}/`;
  const seg = segment(name);
  if (seg.length <= MAX_SEGMENT) return entries.get(prefix + seg) || null;
  const cut = prefix + seg.slice(0, MAX_SEGMENT - 9) + "-";
  const found = [...entries.values()].filter((e) => e.name.startsWith(cut) && e.name.length === cut.length + 8);
  return found.length === 1 ? found[0] : null;
}

// Which instance's records to show: the one named like this server, else the most recent.
function pickInstance(entries, instanceName) {
  const totals = [...entries.values()].filter((e) => /^usage\/[^/]+\/total$/.test(e.name) && e.record_count > 0);
  if (!totals.length) return null;
  const own = totals.find((e) => e.name === `usage/${segment(instanceName || "")}/total`);
  return (own || totals.sort((a, b) => b.latest_record - a.latest_record)[0]).name.split("/")[1];
}

async function pool(jobs, n) {
  const out = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return out;
}

// Aggregate usage records (sorted by time) into n bins over [t0, t1) (µs). holdUs: how long a
// sampled record's rate stands for the skipped windows after it (0: every window was read).
// ref: the bins of `total` (its covered time: when the server ran), for a bucket's series.
// Returns {cover, write, read, stored} per bin: covered µs, bytes/s (null: not running), bytes.
export function binUsage(records, t0, t1, n, holdUs, ref = null, storedIfNone = null) {
  const w = (t1 - t0) / n;
  const wr = new Float64Array(n);
  const rd = new Float64Array(n);
  const cover = new Float64Array(n);
  const last = new Array(n).fill(null);
  const spread = (a, b, writeRate, readRate) => {
    a = Math.max(a, t0);
    b = Math.min(b, t1);
    if (!(b > a)) return;
    for (let k = Math.floor((a - t0) / w); k < n && t0 + k * w < b; k++) {
      const overlap = Math.min(b, t0 + (k + 1) * w) - Math.max(a, t0 + k * w);
      if (overlap <= 0) continue;
      wr[k] += writeRate * overlap;
      rd[k] += readRate * overlap;
      cover[k] += overlap;
    }
  };
  const durUs = (r) => Math.max(1000, (Number(r.duration) || 0) * 1e6);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const end = Number(r.timestamp);
    const d = durUs(r);
    const writeRate = (Number(r.write_bytes) || 0) / (d / 1e6);
    const readRate = (Number(r.read_bytes) || 0) / (d / 1e6);
    let stop = end;
    if (holdUs) {
      const next = records[i + 1];
      stop = Math.max(end, Math.min(end + holdUs, next ? Number(next.timestamp) - durUs(next) : t1));
    }
    spread(end - d, stop, writeRate, readRate);
    const k = Math.ceil((end - t0) / w) - 1;        // the bin its window ends in (an end on an edge: the earlier)
    if (k >= 0 && k < n) last[k] = Number(r.storage_bytes) || 0;
  }
  const running = ref ? ref.cover : cover;
  const write = new Array(n);
  const read = new Array(n);
  const stored = new Array(n);
  let carry = records.length ? null : storedIfNone;
  for (let k = 0; k < n; k++) {
    const base = Math.max(running[k], cover[k]);
    write[k] = running[k] > 0 ? wr[k] / base : null;
    read[k] = running[k] > 0 ? rd[k] / base : null;
    if (last[k] !== null) carry = last[k];
    stored[k] = running[k] > 0 || last[k] !== null ? carry : null;
  }
  return { cover: running, write, read, stored };
}

// Open the history of these buckets; null when there are no usage records (yet) to show.
export async function openHistory(bucketNames, instanceName) {
  const doc = await systemInfo();
  if (!doc) return null;
  let entries = new Map(doc.entries.map((e) => [e.name, e]));
  const instance = pickInstance(entries, instanceName);
  if (!instance) return null;
  const totalEntry = () => entries.get(`usage/${instance}/total`);
  const newest = totalEntry().latest_record;
  const [latest] = await readEvents(totalEntry().name, newest, newest + 1, 1);
  const intervalS = Math.max(0.5, latest ? Number(latest.duration) || 60 : 60);
  const names = [TOTAL, ...bucketNames];
  const perSeries = Math.max(MIN_PER_SERIES, Math.min(PER_SERIES, Math.floor(TOTAL_BUDGET / names.length)));
  let span = SPANS[0];
  let eachS = null;
  let series = new Map();        // name -> {entry, records: [...], lastUs}
  let endUs = 0;                 // the end of the newest `total` window read

  const oldestUs = () => totalEntry().oldest_record;
  const rangeStart = () => Math.max(endUs - span.s * 1e6, oldestUs() - intervalS * 1e6);
  const windows = () => (endUs - rangeStart()) / 1e6 / intervalS;

  const readSeries = async (name, s, fromUs) => {
    const e = entryOf(name, entries, instance);
    if (!e) return;
    s.entry = e.name;
    const got = await readEvents(e.name, fromUs, Date.now() * 1000 + 60e6, perSeries * 2, eachS);
    const mine = got.filter((r) => name === TOTAL ? !r.bucket : r.bucket === name);
    s.records.push(...mine.filter((r) => r.timestamp > s.lastUs));
    if (s.records.length) s.lastUs = s.records[s.records.length - 1].timestamp;
  };
  const trim = () => {
    const from = endUs - span.s * 1e6 - intervalS * 1e6;
    for (const s of series.values()) {
      let i = 0;
      while (i < s.records.length && s.records[i].timestamp < from) i++;
      if (i) s.records.splice(0, i);
    }
  };
  const endOfTotal = () => {
    const t = series.get(TOTAL);
    return t && t.records.length ? t.records[t.records.length - 1].timestamp : totalEntry().latest_record;
  };

  const api = {
    instance,
    intervalS,
    // Spans worth offering: each one only when the records reach back past the shorter one.
    spans() {
      const age = (totalEntry().latest_record - oldestUs()) / 1e6;
      return SPANS.filter((sp, i) => i === 0 || age > SPANS[i - 1].s);
    },
    get span() {
      return span;
    },
    // Read the records of a span afresh (every window, or sampled when there are too many).
    async load(key) {
      span = SPANS.find((s) => s.key === key) || SPANS[0];
      endUs = totalEntry().latest_record;
      const want = windows();
      eachS = want > perSeries ? Math.ceil(((endUs - rangeStart()) / 1e6 / perSeries) * 10) / 10 : null;
      series = new Map(names.map((n) => [n, { entry: null, records: [], lastUs: 0 }]));
      const from = endUs - span.s * 1e6 - intervalS * 1e6;
      await pool(names.map((n) => () => readSeries(n, series.get(n), from)), PARALLEL);
      endUs = endOfTotal();
    },
    // Read what was written since the last read; a span that outgrew its budget is read afresh.
    async refresh() {
      const fresh = await systemInfo();
      if (fresh) entries = new Map(fresh.entries.map((e) => [e.name, e]));
      endUs = totalEntry().latest_record;
      if (!eachS && windows() > perSeries * 1.25) return api.load(span.key);
      await pool(names.map((n) => () => {
        const s = series.get(n);
        const from = s.lastUs ? s.lastUs + (eachS ? eachS * 1e6 : 1) : endUs - span.s * 1e6;
        return readSeries(n, s, from);
      }), PARALLEL);
      endUs = endOfTotal();
      trim();
      return null;
    },
    // The binned view of the current span: {t0, t1 (ms), t (bin centres, ms), total, buckets: {name: bins}, sampledS}
    view(currentSize = {}) {
      const t1 = endUs;
      const t0 = Math.min(rangeStart(), t1 - intervalS * 1e6);
      const n = Math.max(1, Math.min(BINS, Math.round((t1 - t0) / 1e6 / intervalS)));
      const hold = eachS ? eachS * 1e6 : 0;
      const total = binUsage(series.get(TOTAL).records, t0, t1, n, hold);
      const buckets = {};
      for (const name of bucketNames) {
        buckets[name] = binUsage(series.get(name).records, t0, t1, n, hold, total,
          currentSize[name] === undefined ? null : currentSize[name]);
      }
      const w = (t1 - t0) / n;
      return { t0: t0 / 1000, t1: t1 / 1000, binS: w / 1e6, t: Array.from({ length: n }, (_, k) => (t0 + (k + 0.5) * w) / 1000),
        total, buckets, sampledS: eachS, records: [...series.values()].reduce((a, s) => a + s.records.length, 0) };
    },
  };
  return api;
}
