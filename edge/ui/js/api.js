// The console's only door to the server: the base path, the token, fetch with errors.
// Owns: where the API lives (derived from this page's URL, so RS_API_BASE_PATH works), the
// bearer token in sessionStorage, and turning non-2xx answers into ApiError (x-reduct-error).
// Must not: touch the DOM.

const TOKEN_KEY = "edge.token";

export const basePath = (() => {
  const p = window.location.pathname;
  const i = p.lastIndexOf("/ui/");
  return i >= 0 ? p.slice(0, i + 1) : "/";
})();
export const apiBase = basePath + "api/v1/";
export const origin = window.location.origin;
export const publicBase = origin + basePath;

export class ApiError extends Error {
  constructor(status, message, retryAfterS = null) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

// "90" -> "1 min 30 s": how long a refused client has to wait (Retry-After, in seconds).
export function waitText(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

export function getToken() {
  return window.sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
  else window.sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders() {
  const t = getToken();
  return t ? { Authorization: "Bearer " + t } : {};
}

export function enc(segment) {
  return encodeURIComponent(segment);
}

export function entryPath(entry) {
  return entry.split("/").map(enc).join("/");
}

async function errorOf(resp) {
  let msg = resp.headers.get("x-reduct-error");
  if (!msg) {
    try {
      const doc = await resp.json();
      msg = doc && doc.detail;
    } catch (e) {
      msg = "";
    }
  }
  msg = msg || `HTTP ${resp.status}`;
  // A lockout (429) says how long to wait; the server's text may predate that, Retry-After does not.
  const after = Number(resp.headers.get("retry-after"));
  const retryAfterS = Number.isFinite(after) && after > 0 ? after : null;
  if (resp.status === 429 && retryAfterS !== null && !/\d+\s*(s|sec|second|min)/i.test(msg)) {
    msg = `${msg.replace(/[.;\s]*(retry later)?[.\s]*$/i, "")}. Try again in ${waitText(retryAfterS)}.`;
  }
  return new ApiError(resp.status, msg, retryAfterS);
}

// request("GET", "list") -> Response (raw) ; throws ApiError for >= 400
// anonymous: send no token (the upload-link page), root: relative to the base path, not api/v1/
export async function request(method, path, { json, body, headers = {}, root = false, anonymous = false } = {}) {
  const init = { method, headers: { ...(anonymous ? {} : authHeaders()), ...headers }, cache: "no-store", credentials: "omit" };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const resp = await fetch((root ? basePath : apiBase) + path, init);
  if (resp.status >= 400) throw await errorOf(resp);
  return resp;
}

export async function getJson(path, opts) {
  const resp = await request("GET", path, opts);
  return resp.status === 204 ? null : resp.json();
}

export async function send(method, path, json) {
  const resp = await request(method, path, json === undefined ? {} : { json });
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export async function features() {
  const resp = await fetch("features.json", { cache: "no-store", credentials: "omit" });
  if (!resp.ok) throw new ApiError(resp.status, "features");
  return resp.json();
}
