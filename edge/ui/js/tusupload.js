// File uploads over tus (vendor/tus.min.js, loaded as a classic script: window.tus).
// Owns: one progress row per file, pause/resume, resuming a previous upload of the same file
// (tus-js-client keeps the upload URL in localStorage; no secret is stored there).
// Must not: put the bearer token or an upload-link secret into metadata or storage.

import { apiBase } from "./api.js";
import { fmtBytes, fmtUs, h } from "./dom.js";

export function tusAvailable() {
  return !!(window.tus && window.tus.isSupported);
}

// opts: {bucket, entry, headers, recordHref(bucket, entry, ts) (optional), onDone(file, record),
// onError(file, err)}; returns the progress row. The last PATCH says which record the upload
// became (x-reduct-time, x-reduct-entry); the row shows it.
export function uploadFile(file, opts) {
  const bar = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const status = h("span", { class: "state", text: "starting" });
  const pct = h("span", { class: "num", text: "0 %" });
  const toggle = h("button", { type: "button", class: "act", text: "Pause", name: "pause", "aria-label": `Pause ${file.name}` });
  const row = h("div", { class: "progress", dataset: { file: file.name } }, h("span", { class: "name", text: file.name }), pct, bar,
    h("div", { class: "status" }, status, toggle));
  const metadata = { bucket: opts.bucket, entry: opts.entry, filename: file.name };
  if (file.type) metadata.filetype = file.type;
  const upload = new window.tus.Upload(file, {
    endpoint: apiBase + "uploads",
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    metadata,
    headers: opts.headers || {},
    removeFingerprintOnSuccess: true,
    storeFingerprintForResuming: true,
    onProgress(sent, total) {
      const p = total ? Math.floor((sent / total) * 100) : 0;
      bar.value = p;
      pct.textContent = p + " %";
      status.textContent = `${fmtBytes(sent)} of ${fmtBytes(total)}`;
    },
    onSuccess(payload) {
      const resp = payload && payload.lastResponse;
      const ts = resp ? resp.getHeader("x-reduct-time") : null;
      const entry = (resp && resp.getHeader("x-reduct-entry")) || opts.entry;
      bar.value = 100;
      pct.textContent = "100 %";
      status.textContent = ts ? `done: ${entry} at ${fmtUs(ts)}` : "done";
      if (ts) {
        row.dataset.ts = ts;
        if (opts.recordHref) status.appendChild(h("a", { href: opts.recordHref(opts.bucket, entry, ts), text: " · show", class: "show-record" }));
      }
      row.classList.add("done");
      row.dataset.state = "done";
      toggle.hidden = true;
      if (opts.onDone) opts.onDone(file, ts ? { entry, ts } : null);
    },
    onError(err) {
      const resp = err && err.originalResponse;
      const detail = resp ? (resp.getHeader("x-reduct-error") || resp.getBody() || "") : "";
      status.textContent = "failed: " + (detail || (err && err.message) || err);
      row.dataset.state = "failed";
      toggle.textContent = "Retry";
      toggle.setAttribute("aria-label", `Retry ${file.name}`);
      if (opts.onError) opts.onError(file, detail || err);
    },
  });
  let paused = false;
  toggle.addEventListener("click", () => {
    if (!paused && row.dataset.state !== "failed") {
      upload.abort();
      paused = true;
      toggle.textContent = "Resume";
      toggle.setAttribute("aria-label", `Resume ${file.name}`);
      status.textContent = "paused";
    } else {
      paused = false;
      row.dataset.state = "";
      toggle.textContent = "Pause";
      toggle.setAttribute("aria-label", `Pause ${file.name}`);
      upload.start();
    }
  });
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      status.textContent = "resuming";
    }
    upload.start();
  });
  return row;
}
