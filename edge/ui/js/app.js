// The console shell: sign-in, the hash router and the navigation.
// Owns: deciding whether a token is needed (features.json says whether auth is on), keeping the
// session (the token lives in sessionStorage only), the page registry (PAGES: navigation order,
// titles, icons) and mounting one page module at a time. Every navigation (a click, back/forward,
// a typed address) closes the dialogs of the page that is left.
// Must not: build page content (pages/*.js) or call fetch directly (api.js).
//
// Adding a page: a module under pages/ exporting mount(root, ctx) (and unmount() if it keeps
// timers or blob URLs), plus one entry in PAGES. The navigation (a tab bar at the bottom of a
// phone screen, a row in the header on wider ones) is built from PAGES.

import { ApiError, features, getJson, getToken, setToken } from "./api.js";
import { clear, closeModals, fail, h, notify, setMessageBar } from "./dom.js";
import { icon } from "./icons.js";
import * as overview from "./pages/overview.js";
import * as buckets from "./pages/buckets.js";
import * as records from "./pages/records.js";
import * as upload from "./pages/upload.js";
import * as links from "./pages/links.js";
import * as tokens from "./pages/tokens.js";
import * as system from "./pages/system.js";

const PAGES = [
  { name: "overview", title: "Overview", icon: "overview", module: overview },
  { name: "buckets", title: "Buckets", icon: "buckets", module: buckets },
  { name: "records", title: "Records", icon: "records", module: records },
  { name: "upload", title: "Upload", icon: "upload", module: upload },
  { name: "links", title: "Links", icon: "links", module: links },
  { name: "tokens", title: "Tokens", icon: "tokens", module: tokens },
  { name: "system", title: "System", icon: "activity", module: system },
];
const BY_NAME = new Map(PAGES.map((p) => [p.name, p]));
const state = { features: null, me: null, page: null, routed: 0 };

function $(id) {
  return document.getElementById(id);
}

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (e) {
      return p;
    }
  });
  const params = new URLSearchParams(query || "");
  return { name: parts[0] || "overview", args: parts.slice(1), params };
}

function buildNav() {
  const nav = clear($("nav"));
  for (const p of PAGES) {
    nav.appendChild(h("a", { href: "#/" + p.name, dataset: { page: p.name } }, icon(p.icon), h("span", { text: p.title })));
  }
}

async function route() {
  closeModals();
  if (!state.me) return;
  const { name, args, params } = parseHash();
  const page = BY_NAME.get(name) || BY_NAME.get("overview");
  for (const a of document.querySelectorAll("#nav a")) {
    const active = a.dataset.page === page.name;
    a.classList.toggle("active", active);
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · edge console`;
  if (state.page && state.page.unmount) state.page.unmount();
  const root = clear($("page"));
  delete root.dataset.ready;
  const ctx = { features: state.features, me: state.me, args, params };
  state.page = page.module;
  const first = state.routed++ === 0;
  try {
    await page.module.mount(root, ctx);
  } catch (err) {
    fail(err);
  }
  if (state.page === page.module) root.dataset.ready = page.name;   // the page has its data (tests wait for it)
  // After a navigation, start reading (and tabbing) at the new page, not at the old link.
  if (!first && state.page === page.module) $("main").focus({ preventScroll: true });
}

function showSignIn(show) {
  $("signin").hidden = !show;
  $("nav").hidden = show;
  document.body.classList.toggle("no-nav", show);
  $("signout").hidden = show || !state.features.auth;
  if (show) {
    closeModals();
    clear($("page"));
    document.title = "Sign in · edge console";
  }
}

async function signIn() {
  try {
    state.me = await getJson("me");
  } catch (err) {
    state.me = null;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 429)) {
      setToken("");
      showSignIn(true);
      if (getToken() !== "" || err.status !== 401) notify(err.message, "error");
      return err;
    }
    throw err;
  }
  const who = state.features.auth ? `${state.me.name}${state.me.permissions && state.me.permissions.full_access ? " (full access)" : ""}` : "authentication disabled";
  $("who").textContent = who;
  showSignIn(false);
  await route();
  return null;
}

async function start() {
  setMessageBar($("msg"));
  try {
    state.features = await features();
  } catch (err) {
    fail(err);
    return;
  }
  buildNav();
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    setToken(value);
    $("token").value = "";
    try {
      const refused = await signIn();
      if (!refused) notify("Signed in", "ok");
      else if (refused.status === 401) notify("The token was not accepted", "error");
      if (refused) $("token").focus();
    } catch (err) {
      fail(err);
    }
  });
  $("signout").addEventListener("click", () => {
    setToken("");
    state.me = null;
    $("who").textContent = "";
    showSignIn(true);
    $("token").focus();
  });
  window.addEventListener("hashchange", () => {
    clear($("msg"));
    $("msg").className = "msg";
    route();
  });
  if (state.features.auth && !getToken()) {
    showSignIn(true);
    return;
  }
  try {
    await signIn();
  } catch (err) {
    fail(err);
  }
}

start();
