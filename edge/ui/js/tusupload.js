// File uploads over tus (vendor/tus.min.js, loaded as a classic script: window.tus).
// Owns: one progress row per file, pause/resume, resuming a previous upload of the same file
// (tus-js-client keeps the upload URL in localStorage; no secret is stored there).
// Must not: put the bearer token or an upload-link secret into metadata or storage.

import { apiBase } from "./api.js";
import { fmtBytes, h } from "./dom.js";

export function tusAvailable() {
  return !!(window.tus && window.tus.isSupported);
}

// opts: {bucket, entry, headers, onDone(file), onError(file, err)}; returns the progress row.
export function uploadFile(file, opts) {
  const bar = h("progress", { max: 100, value: 0 });
  const status = h("span", { class: "muted", text: "starting" });
  const pct = h("span", { class: "num", text: "0 %" });
  const toggle = h("button", { type: "button", class: "secondary", text: "Pause", name: "pause" });
  const row = h("div", { class: "progress", dataset: { file: file.name } }, h("span", { text: file.name }), bar, pct, h("span", {}, toggle, status));
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
    onSuccess() {
      bar.value = 100;
      pct.textContent = "100 %";
      status.textContent = "done";
      row.classList.add("done");
      row.dataset.state = "done";
      toggle.hidden = true;
      if (opts.onDone) opts.onDone(file);
    },
    onError(err) {
      const resp = err && err.originalResponse;
      const detail = resp ? (resp.getHeader("x-reduct-error") || resp.getBody() || "") : "";
      status.textContent = "failed: " + (detail || (err && err.message) || err);
      row.dataset.state = "failed";
      toggle.textContent = "Retry";
      if (opts.onError) opts.onError(file, detail || err);
    },
  });
  let paused = false;
  toggle.addEventListener("click", () => {
    if (!paused && row.dataset.state !== "failed") {
      upload.abort();
      paused = true;
      toggle.textContent = "Resume";
      status.textContent = "paused";
    } else {
      paused = false;
      row.dataset.state = "";
      toggle.textContent = "Pause";
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
