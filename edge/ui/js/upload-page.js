// The page an upload link opens (ui/upload.html#<secret>): drop files, they go over tus into
// the link's one entry. No token: the secret from the URL fragment is sent as `Upload-Link`.
// Owns: reading the fragment (then removing it from the address bar), showing what the link
// allows. Must not: store the secret (it stays in this page's memory only).

import { getJson } from "./api.js";
import { fail, fmtBytes, fmtS, h, notify, setMessageBar } from "./dom.js";
import { tusAvailable, uploadFile } from "./tusupload.js";
import { dropZone } from "./pages/upload.js";

const secret = decodeURIComponent(window.location.hash.replace(/^#/, ""));
// Keep the secret out of the history entry and out of anything copied from the address bar.
if (secret) window.history.replaceState(null, "", window.location.pathname);

async function start() {
  setMessageBar(document.getElementById("msg"));
  const info = document.getElementById("upload-info");
  if (!secret) {
    info.textContent = "This page needs the full upload link.";
    return;
  }
  let link;
  try {
    link = await getJson("upload-links/self", { headers: { "Upload-Link": secret }, anonymous: true });
  } catch (err) {
    info.textContent = err.message;
    return;
  }
  const limits = [];
  if (link.files_left !== null) limits.push(`${link.files_left} file(s) left`);
  if (link.bytes_left !== null) limits.push(`${fmtBytes(link.bytes_left)} left`);
  info.textContent = `Files go to ${link.bucket}/${link.entry}. Open until ${fmtS(link.expire_at)}.` + (limits.length ? " " + limits.join(", ") + "." : "");
  if (link.note) document.getElementById("upload-card").insertBefore(h("p", { text: link.note, id: "upload-note" }), info.nextSibling);
  if (!tusAvailable()) {
    fail("This browser cannot upload files here.");
    return;
  }
  const list = document.getElementById("upload-list");
  document.getElementById("upload-zone").appendChild(dropZone((files) => {
    for (const file of files) {
      list.appendChild(uploadFile(file, {
        bucket: link.bucket, entry: link.entry, headers: { "Upload-Link": secret },
        onDone: (f) => notify(`Uploaded ${f.name}`, "ok"),
        onError: (f, err) => fail(`Upload of ${f.name} failed: ${err}`),
      }));
    }
  }));
}

start().catch(fail).finally(() => { document.body.dataset.ready = "1"; });
