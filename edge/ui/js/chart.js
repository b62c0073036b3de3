// Small canvas charts, drawn here (no library: a few hundred lines are cheaper on a Raspberry Pi
// than any chart package, and nothing is loaded from elsewhere).
// Owns: drawing time series (lines, on one or two value axes, with gaps) and binned histograms
// (bars + a line on a second axis), the one canvas set-up of every chart of the console,
// sized for the device pixel ratio and redrawn when the element is resized; colours come from
// the stylesheet's variables, so dark mode needs nothing here; the brush of a histogram (drag with
// a mouse or a finger, or the keyboard: arrows move, Shift+arrows widen, Enter zooms, Escape clears).
// Must not: fetch, or know what the numbers are (callers pass formatters and labels).
// Time is in milliseconds here (Date's unit); callers convert from µs.

const DPR_MAX = 2;   // more pixels than this only cost time on a small device

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function palette() {
  return {
    fg: cssVar("--muted", "#57606a"), grid: cssVar("--chart-grid", "#d0d7de"), c1: cssVar("--chart-1", "#0969da"),
    c2: cssVar("--chart-2", "#1a7f37"), c3: cssVar("--chart-3", "#bf3989"), sel: cssVar("--link", "#0969da"),
  };
}

// Prepare a canvas for drawing at its CSS size; returns [ctx, width, height] in CSS pixels.
function surface(canvas) {
  const dpr = Math.min(DPR_MAX, window.devicePixelRatio || 1);
  const w = Math.max(1, canvas.clientWidth);
  const hgt = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  return [ctx, w, hgt];
}

const STEPS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 604800, 2592000, 7776000, 31536000].map((s) => s * 1000);

function pad2(n) {
  return String(n).padStart(2, "0");
}

// UTC, like every time the console shows.
export function timeLabel(ms, stepMs) {
  const d = new Date(ms);
  if (stepMs >= 86400000) return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  if (stepMs >= 60000) return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  if (stepMs >= 1000) return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  return `${pad2(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, "0")}`;
}

function timeTicks(t0, t1, width) {
  const want = Math.max(2, Math.floor(width / 90));
  const span = Math.max(1, t1 - t0);
  const step = STEPS_MS.find((s) => span / s <= want) || STEPS_MS[STEPS_MS.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return { step, ticks: out };
}

function niceMax(v, floor = 1) {
  if (!(v > floor)) return floor;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function axes(ctx, box, t0, t1, yMax, yFmt, col, y2) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.strokeStyle = col.grid;
  ctx.fillStyle = col.fg;
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 2; i++) {
    const y = box.t + (box.h * i) / 2;
    ctx.beginPath();
    ctx.moveTo(box.l, Math.round(y) + 0.5);
    ctx.lineTo(box.l + box.w, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(yFmt(yMax * (1 - i / 2)), box.l - 4, y);
    if (y2) {
      ctx.textAlign = "left";
      ctx.fillText(y2.fmt(y2.max * (1 - i / 2)), box.l + box.w + 4, y);
    }
  }
  const { step, ticks } = timeTicks(t0, t1, box.w);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks) {
    const x = box.l + ((t - t0) / Math.max(1, t1 - t0)) * box.w;
    ctx.fillText(timeLabel(t, step), Math.min(Math.max(x, box.l + 18), box.l + box.w - 18), box.t + box.h + 4);
  }
}

// Room for the widest axis label on each side.
function plotBox(ctx, w, hgt, leftLabels, rightLabels) {
  ctx.font = "11px system-ui, sans-serif";
  const width = (labels) => Math.ceil(Math.max(0, ...labels.map((t) => ctx.measureText(t).width))) + 8;
  const l = Math.max(24, width(leftLabels));
  const r = rightLabels ? Math.max(24, width(rightLabels)) : 8;
  return { l, t: 6, w: Math.max(10, w - l - r), h: Math.max(10, hgt - 26) };
}

const labelsFor = (max, fmt) => [fmt(max), fmt(max / 2), fmt(0)];

// Lines over time, on one or two value axes.
// data: {t: [ms...], series: [{values, color: 1|2|3, fill, axis: 1|2}], yFmt, yFloor,
//        y2: {fmt, max (a fixed top, e.g. a quota), floor} for the series on the right axis,
//        t0, t1 (ms, the shown range; default: the data's)}
// A value of null is a gap (the line lifts its pen); a lone point between gaps is a dot.
export function drawLines(canvas, data) {
  const [ctx, w, hgt] = surface(canvas);
  const col = palette();
  const n = data.t.length;
  const t0 = data.t0 !== undefined ? data.t0 : n ? data.t[0] : Date.now() - 60000;
  const t1 = data.t1 !== undefined ? data.t1 : n > 1 ? data.t[n - 1] : t0 + 60000;
  const yFmt = data.yFmt || String;
  let max = 0;
  let max2 = 0;
  for (const s of data.series) {
    for (const v of s.values) {
      if (s.axis === 2) max2 = Math.max(max2, v || 0);
      else max = Math.max(max, v || 0);
    }
  }
  max = niceMax(max, data.yFloor || 1);
  const y2 = data.y2 ? { fmt: data.y2.fmt || String, max: data.y2.max > 0 ? Math.max(data.y2.max, max2) : niceMax(max2, data.y2.floor || 1) } : null;
  const box = plotBox(ctx, w, hgt, labelsFor(max, yFmt), y2 ? labelsFor(y2.max, y2.fmt) : null);
  axes(ctx, box, t0, t1, max, yFmt, col, y2);
  const x = (t) => box.l + ((t - t0) / Math.max(1, t1 - t0)) * box.w;
  for (const s of data.series) {
    const top = s.axis === 2 ? y2.max : max;
    const y = (v) => box.t + box.h * (1 - Math.min(v, top) / top);
    ctx.strokeStyle = col["c" + (s.color || 1)];
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 2;
    // one path per run of values without a gap
    let i = 0;
    while (i < n) {
      while (i < n && (s.values[i] === null || s.values[i] === undefined)) i++;
      const a = i;
      while (i < n && s.values[i] !== null && s.values[i] !== undefined) i++;
      if (i === a) break;
      if (i - a === 1) {
        ctx.beginPath();
        ctx.arc(x(data.t[a]), y(s.values[a]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      for (let k = a; k < i; k++) (k > a ? ctx.lineTo : ctx.moveTo).call(ctx, x(data.t[k]), y(s.values[k]));
      ctx.stroke();
      if (s.fill) {
        ctx.lineTo(x(data.t[i - 1]), box.t + box.h);
        ctx.lineTo(x(data.t[a]), box.t + box.h);
        ctx.closePath();
        ctx.globalAlpha = 0.15;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
  }
}

// A histogram of counts (bars, left axis) with a second quantity as a line (right axis), and a
// brush. opts: {t0, t1 (ms), bins: [{count, bytes}], countFmt, bytesFmt, onSelect(t0, t1),
// status(text) for the live description of the focused bin}. Returns {update(opts), destroy()}.
export function histogram(canvas, opts) {
  let o = opts;
  let drag = null;        // {x0, x1} in CSS pixels while dragging
  let cursor = -1;        // focused bin (keyboard)
  let anchor = -1;        // first bin of a keyboard selection
  let box = null;
  const binAt = (x) => {
    if (!box || !o.bins.length) return -1;
    return Math.max(0, Math.min(o.bins.length - 1, Math.floor(((x - box.l) / box.w) * o.bins.length)));
  };
  const binTime = (i) => o.t0 + ((o.t1 - o.t0) * i) / o.bins.length;
  const draw = () => {
    const [ctx, w, hgt] = surface(canvas);
    const col = palette();
    const bins = o.bins;
    let maxC = 0;
    let maxB = 0;
    for (const b of bins) {
      maxC = Math.max(maxC, b.count);
      maxB = Math.max(maxB, b.bytes);
    }
    maxC = niceMax(maxC, 2);
    maxB = niceMax(maxB, 1000);
    box = plotBox(ctx, w, hgt, labelsFor(maxC, o.countFmt || String), labelsFor(maxB, o.bytesFmt || String));
    axes(ctx, box, o.t0, o.t1, maxC, o.countFmt || String, col, { max: maxB, fmt: o.bytesFmt || String });
    const bw = box.w / Math.max(1, bins.length);
    ctx.fillStyle = col.c1;
    bins.forEach((b, i) => {
      if (!b.count) return;
      const hh = (b.count / maxC) * box.h;
      ctx.fillRect(box.l + i * bw + (bw > 3 ? 0.5 : 0), box.t + box.h - hh, Math.max(1, bw - (bw > 3 ? 1 : 0)), hh);
    });
    ctx.strokeStyle = col.c3;
    ctx.lineWidth = 2;
    ctx.beginPath();
    bins.forEach((b, i) => {
      const x = box.l + (i + 0.5) * bw;
      const y = box.t + box.h * (1 - b.bytes / maxB);
      (i ? ctx.lineTo : ctx.moveTo).call(ctx, x, y);
    });
    ctx.stroke();
    let sel = null;
    if (drag) sel = [Math.min(drag.x0, drag.x1), Math.max(drag.x0, drag.x1)];
    else if (cursor >= 0) {
      const a = anchor >= 0 ? Math.min(anchor, cursor) : cursor;
      const b = anchor >= 0 ? Math.max(anchor, cursor) : cursor;
      sel = [box.l + a * bw, box.l + (b + 1) * bw];
    }
    if (sel) {
      ctx.fillStyle = col.sel;
      ctx.globalAlpha = 0.18;
      ctx.fillRect(sel[0], box.t, Math.max(1, sel[1] - sel[0]), box.h);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = col.sel;
      ctx.lineWidth = 1;
      ctx.strokeRect(sel[0] + 0.5, box.t + 0.5, Math.max(1, sel[1] - sel[0] - 1), box.h - 1);
    }
  };
  const describe = () => {
    if (!o.status || cursor < 0 || !o.bins.length) return;
    const a = anchor >= 0 ? Math.min(anchor, cursor) : cursor;
    const b = anchor >= 0 ? Math.max(anchor, cursor) : cursor;
    let count = 0;
    let bytes = 0;
    for (let i = a; i <= b; i++) {
      count += o.bins[i].count;
      bytes += o.bins[i].bytes;
    }
    const span = (o.t1 - o.t0) / o.bins.length;
    o.status(`${timeLabel(binTime(a), span)} – ${timeLabel(binTime(b + 1), span)} UTC: ${count} record(s), ${(o.bytesFmt || String)(bytes)}. Enter zooms in.`);
  };
  const local = (e) => e.clientX - canvas.getBoundingClientRect().left;
  const onDown = (e) => {
    if (e.button !== undefined && e.button !== 0) return;
    drag = { x0: local(e), x1: local(e), id: e.pointerId };
    canvas.setPointerCapture(e.pointerId);
  };
  const onMove = (e) => {
    if (!drag) return;
    drag.x1 = local(e);
    draw();
  };
  const onUp = (e) => {
    if (!drag) return;
    const [a, b] = [Math.min(drag.x0, drag.x1), Math.max(drag.x0, drag.x1)];
    drag = null;
    if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
    if (b - a >= 6 && box && o.onSelect) {
      const toT = (x) => o.t0 + ((Math.max(box.l, Math.min(box.l + box.w, x)) - box.l) / box.w) * (o.t1 - o.t0);
      o.onSelect(toT(a), toT(b));
    } else {
      cursor = binAt(a);
      anchor = -1;
      describe();
    }
    draw();
  };
  const onCancel = () => {
    drag = null;
    draw();
  };
  const onKey = (e) => {
    const n = o.bins.length;
    if (!n) return;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") {
      e.preventDefault();
      if (e.shiftKey && anchor < 0) anchor = Math.max(0, cursor);
      if (!e.shiftKey) anchor = -1;
      const step = e.key === "ArrowLeft" ? -1 : e.key === "ArrowRight" ? 1 : 0;
      if (cursor < 0) cursor = step < 0 ? n - 1 : 0;
      else if (e.key === "Home") cursor = 0;
      else if (e.key === "End") cursor = n - 1;
      else cursor = Math.max(0, Math.min(n - 1, cursor + step));
      describe();
      draw();
    } else if (e.key === "Enter" && cursor >= 0 && o.onSelect) {
      e.preventDefault();
      const a = anchor >= 0 ? Math.min(anchor, cursor) : cursor;
      const b = anchor >= 0 ? Math.max(anchor, cursor) : cursor;
      const t0 = binTime(a);
      const t1 = binTime(b + 1);
      cursor = -1;
      anchor = -1;
      o.onSelect(t0, t1);
    } else if (e.key === "Escape" && cursor >= 0) {
      e.preventDefault();
      e.stopPropagation();
      cursor = -1;
      anchor = -1;
      if (o.status) o.status("");
      draw();
    }
  };
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onCancel);
  canvas.addEventListener("keydown", onKey);
  const ro = new ResizeObserver(() => draw());
  ro.observe(canvas);
  draw();
  return {
    update(next) {
      o = { ...o, ...next };
      if (cursor >= o.bins.length) cursor = -1;
      draw();
    },
    destroy() {
      ro.disconnect();
    },
  };
}

// Redraw a drawLines chart whenever its element changes size; returns a function that draws new data.
export function lineChart(canvas) {
  let last = null;
  const ro = new ResizeObserver(() => last && drawLines(canvas, last));
  ro.observe(canvas);
  return {
    draw(data) {
      last = data;
      drawLines(canvas, data);
    },
    destroy() {
      ro.disconnect();
    },
  };
}
