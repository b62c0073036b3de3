// The System page's usage chart: bytes written and read per usage window, and stored bytes, on <canvas>.
// Owns: drawing one series set over time. Must not: fetch.

import { fmtBytes } from "./dom.js";

const SERIES = [
  { key: "write_bytes", color: "#1f6feb", label: "written" },
  { key: "read_bytes", color: "#1a7f37", label: "read" },
];

export function drawUsage(canvas, events) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const hgt = canvas.height;
  ctx.clearRect(0, 0, w, hgt);
  const pad = { l: 74, r: 74, t: 12, b: 24 };
  let max = 1;
  let maxStored = 1;
  for (const e of events) {
    for (const s of SERIES) max = Math.max(max, e[s.key] || 0);
    maxStored = Math.max(maxStored, e.storage_bytes || 0);
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.strokeStyle = "#d0d7de";
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(w - pad.r, y);
    ctx.stroke();
    ctx.fillStyle = "#57606a";
    ctx.fillText(fmtBytes(Math.round(max * (1 - i / 4))), 4, y + 4);
    ctx.fillStyle = "#8250df";
    ctx.fillText(fmtBytes(Math.round(maxStored * (1 - i / 4))), w - pad.r + 6, y + 4);
  }
  if (events.length === 0) return;
  const t0 = events[0].timestamp;
  const t1 = Math.max(events[events.length - 1].timestamp, t0 + 1);
  const x = (t) => pad.l + ((w - pad.l - pad.r) * (t - t0)) / (t1 - t0);
  const y = (v, m) => pad.t + (hgt - pad.t - pad.b) * (1 - v / m);
  ctx.fillStyle = "#57606a";
  for (const [t, align] of [[t0, "left"], [t1, "right"]]) {
    ctx.textAlign = align;
    ctx.fillText(new Date(t / 1000).toLocaleString(), x(t), hgt - 6);
  }
  ctx.textAlign = "left";
  const line = (key, m, color) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    events.forEach((e, i) => (i ? ctx.lineTo(x(e.timestamp), y(e[key] || 0, m)) : ctx.moveTo(x(e.timestamp), y(e[key] || 0, m))));
    if (events.length === 1) ctx.arc(x(events[0].timestamp), y(events[0][key] || 0, m), 2, 0, 7);
    ctx.stroke();
  };
  for (const s of SERIES) line(s.key, max, s.color);
  line("storage_bytes", maxStored, "#8250df");
}

export const USAGE_LEGEND = [...SERIES, { key: "storage_bytes", color: "#8250df", label: "stored (right axis)" }];
