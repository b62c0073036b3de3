// What the console knows about a record's content type: how it may be shown and what its file
// is called when saved or shared. One table, used by the record browser and the share dialog.
// Owns: the raster-image and text type lists, file-name extensions. Must not: touch the DOM.

// Raster formats only: an SVG can carry script and is never shown, only downloaded.
export const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif"]);
const TEXT_TYPES = new Set(["application/json", "text/plain", "text/csv", "application/x-ndjson", "text/markdown"]);

const EXT = {
  "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "image/bmp": "bmp", "image/avif": "avif",
  "image/svg+xml": "svg", "application/json": "json", "application/x-ndjson": "ndjson", "text/plain": "txt", "text/csv": "csv",
  "text/markdown": "md", "text/html": "html", "application/xml": "xml", "text/xml": "xml", "video/mp4": "mp4",
  "video/webm": "webm", "audio/mpeg": "mp3", "audio/wav": "wav", "application/pdf": "pdf", "application/zip": "zip",
  "application/gzip": "gz", "application/x-tar": "tar", "application/octet-stream": "bin",
};

export function baseType(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase();
}

export function previewKind(ct) {
  const t = baseType(ct);
  if (IMAGE_TYPES.has(t)) return "image";
  if (TEXT_TYPES.has(t) || t.endsWith("+json")) return "text";
  return "download";
}

export function extensionOf(ct) {
  const t = baseType(ct);
  if (EXT[t]) return EXT[t];
  if (t.endsWith("+json")) return "json";
  if (t.startsWith("text/")) return "txt";
  return "bin";
}

// The record's `filename` label if it has one, else "<entry>_<ts>.<extension of its type>".
export function fileNameOf(rec) {
  const fromLabel = rec.labels && rec.labels.filename;
  if (fromLabel) return fromLabel.replace(/[\\/\x00-\x1f]/g, "_");
  return `${rec.entry.replace(/\//g, "_")}_${rec.ts}.${extensionOf(rec.contentType)}`;
}
