// The console shell: sign-in, the hash router and the navigation.
// Owns: deciding whether a token is needed (features.json says whether auth is on), keeping the
// session (the token lives in sessionStorage only), and mounting one page module at a time.
// Must not: build page content (pages/*.js) or call fetch directly (api.js).

import { ApiError, features, getJson, getToken, setToken } from "./api.js";
import { clear, fail, notify, setMessageBar } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as buckets from "./pages/buckets.js";
import * as records from "./pages/records.js";
import * as upload from "./pages/upload.js";
import * as links from "./pages/links.js";
import * as tokens from "./pages/tokens.js";
import * as system from "./pages/system.js";

const PAGES = { overview, buckets, records, upload, links, tokens, system };
const state = { features: null, me: null, page: null };

function $(id) {
  return document.getElementById(id);
}

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  return { name: parts[0] || "overview", args: parts.slice(1), params };
}

async function route() {
  if (!state.me) return;
  const { name, args, params } = parseHash();
  const mod = PAGES[name] || overview;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === (PAGES[name] ? name : "overview"));
  }
  if (state.page && state.page.unmount) state.page.unmount();
  const root = clear($("page"));
  const ctx = { features: state.features, me: state.me, args, params };
  state.page = mod;
  try {
    await mod.mount(root, ctx);
  } catch (err) {
    fail(err);
  }
}

function showSignIn(show) {
  $("signin").hidden = !show;
  $("nav").hidden = show;
  $("signout").hidden = show || !state.features.auth;
  if (show) clear($("page"));
}

async function signIn() {
  try {
    state.me = await getJson("me");
  } catch (err) {
    state.me = null;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      setToken("");
      showSignIn(true);
      if (getToken() !== "" || err.status === 403) notify(err.message, "error");
      return false;
    }
    throw err;
  }
  const who = state.features.auth ? `${state.me.name}${state.me.permissions && state.me.permissions.full_access ? " (full access)" : ""}` : "authentication disabled";
  $("who").textContent = who;
  showSignIn(false);
  await route();
  return true;
}

async function start() {
  setMessageBar($("msg"));
  try {
    state.features = await features();
  } catch (err) {
    fail(err);
    return;
  }
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    setToken(value);
    $("token").value = "";
    try {
      const ok = await signIn();
      if (!ok) notify("The token was not accepted", "error");
      else notify("Signed in", "ok");
    } catch (err) {
      fail(err);
    }
  });
  $("signout").addEventListener("click", () => {
    setToken("");
    state.me = null;
    $("who").textContent = "";
    showSignIn(true);
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
