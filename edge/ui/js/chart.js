// A tiny line chart on <canvas> for the overview's write/read rates (no library needed).
// Owns: drawing. Must not: fetch.

import { fmtBytes } from "./dom.js";

export function drawRates(canvas, samples) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const hgt = canvas.height;
  ctx.clearRect(0, 0, w, hgt);
  const pad = { l: 70, r: 10, t: 10, b: 20 };
  const series = [
    { key: "bytes_written_per_s", color: "#1f6feb" },
    { key: "bytes_read_per_s", color: "#1a7f37" },
  ];
  let max = 1;
  for (const s of samples) for (const ser of series) max = Math.max(max, s[ser.key] || 0);
  ctx.strokeStyle = "#d0d7de";
  ctx.fillStyle = "#57606a";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((hgt - pad.t - pad.b) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(w - pad.r, y);
    ctx.stroke();
    ctx.fillText(fmtBytes(Math.round(max * (1 - i / 4))) + "/s", 4, y + 4);
  }
  if (samples.length < 2) return;
  const n = samples.length;
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / (n - 1);
  const y = (v) => pad.t + (hgt - pad.t - pad.b) * (1 - v / max);
  for (const ser of series) {
    ctx.strokeStyle = ser.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    samples.forEach((s, i) => (i ? ctx.lineTo(x(i), y(s[ser.key] || 0)) : ctx.moveTo(x(i), y(s[ser.key] || 0))));
    ctx.stroke();
  }
}
