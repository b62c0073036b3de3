// Upload page: drag and drop (or choose) files into an entry over tus, with progress and resume.
// Owns: the choice of bucket and entry and the drop zone. Must not: read files into memory
// (tus-js-client slices them).

import { authHeaders, getJson } from "../api.js";
import { fail, field, h, notify } from "../dom.js";
import { tusAvailable, uploadFile } from "../tusupload.js";

// A drop zone with a "Choose files" button (the file input itself is invisible but focusable:
// it sits inside the label, so Tab reaches it, Enter/Space opens the picker, and it can never
// stick out of the zone on a narrow screen).
export function dropZone(onFiles, inputName = "files") {
  const input = h("input", { type: "file", multiple: true, name: inputName, id: inputName });
  const zone = h("div", { class: "drop", id: "drop" },
    h("p", { text: "Drop files here, or" }),
    h("label", { class: "pick" }, input, h("span", { text: "Choose files" })));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles(Array.from(e.dataTransfer.files));
  });
  input.addEventListener("change", () => {
    onFiles(Array.from(input.files));
    input.value = "";
  });
  return zone;
}

export async function mount(root, ctx) {
  root.appendChild(h("h1", { text: "Upload" }));
  if (!ctx.features.uploads || !tusAvailable()) {
    root.appendChild(h("p", { class: "muted", text: "Resumable uploads are not available on this server." }));
    return;
  }
  const { buckets } = await getJson("list");
  if (!buckets.length) {
    root.appendChild(h("p", { class: "muted", text: "Create a bucket first." }));
    return;
  }
  // `$` buckets ($system) are written by the server only: never an upload target.
  const bucketSel = h("select", { name: "bucket" }, buckets.filter((b) => !b.name.startsWith("$")).map((b) => h("option", { value: b.name, text: b.name, selected: ctx.params.get("bucket") === b.name })));
  const entry = h("input", { name: "entry", required: true, value: ctx.params.get("entry") || "uploads", pattern: "[A-Za-z0-9_\\-\\/]+" });
  const list = h("div", { id: "upload-list", "aria-live": "polite" });
  root.appendChild(h("section", { class: "card stack" },
    h("div", { class: "row" }, field("Bucket", bucketSel), field("Entry", entry, "letters, digits, -, _ and /")),
    dropZone((files) => {
      if (!entry.reportValidity()) return;
      for (const file of files) {
        list.appendChild(uploadFile(file, {
          bucket: bucketSel.value, entry: entry.value.trim(), headers: authHeaders(),
          recordHref: (b, e) => `#/records/${encodeURIComponent(b)}?entry=${encodeURIComponent(e)}`,
          onDone: (f) => notify(`Uploaded ${f.name}`, "ok"),
          onError: (f, err) => fail(`Upload of ${f.name} failed: ${err}`),
        }));
      }
    }),
    list));
}
