"""What the browser tests share: Debian's Chromium under Selenium, screen sizes, and the checks.

- ``start_chromium(profile)``: headless, no sandbox/GPU/background traffic, a fresh profile.
- ``emulate(driver, width, height, dark=False)``: a phone (``mobile``: the viewport meta tag is
  honoured, as on a real phone, so a page laid out too wide shows zoomed out) or a desktop.
- ``overflow(driver, width)``: the document and every visible element must fit the viewport's
  width (elements inside a container that scrolls or clips them are fine).
- ``axe(driver)``: axe-core (vendored, ``vendor/axe-core-*.min.js``, MPL-2.0) over the page;
  returns the serious and critical violations.
- ``shot(driver, name)``: a full-page PNG into ``$EDGE_SCREENSHOTS`` (default
  ``tests/artifacts/screenshots``).
- ``Watch``: collects browser console errors and failed requests to our origin.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("EDGE_SCREENSHOTS") or ROOT / "tests" / "artifacts" / "screenshots")
AXE = next((Path(__file__).parent / "vendor").glob("axe-core-*.min.js"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PHONE = (390, 844)
DESKTOP = (1366, 768)
WIDTHS = (360, 390, 768, 1366)

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover
    webdriver = None
    By = EC = WebDriverWait = Service = None  # type: ignore[assignment]

SKIP_REASON = ("selenium is not installed (pip install selenium)" if webdriver is None else
               "chromium/chromedriver not found (apt-get install -y chromium chromium-driver)"
               if CHROMIUM is None or DRIVER is None else None)


_DRIVER_PORT = re.compile(r"started successfully on port (\d+)")


class PortZeroService(Service if Service is not None else object):  # type: ignore[misc]
    """chromedriver on ``--port=0``: it binds an ephemeral port and reports it on its output;
    the port is read back from there (selenium's own default guesses a free port, which races
    with parallel tests)."""

    def __init__(self, path: str, log_path: Path):
        self._log_path = log_path
        log_path.write_text("")
        super().__init__(path, port=-1, log_output=str(log_path))   # -1: replaced once started

    def command_line_args(self) -> list[str]:
        return ["--port=0" if a.startswith("--port=") else a for a in super().command_line_args()]

    def _start_process(self, path: str) -> None:
        super()._start_process(path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = _DRIVER_PORT.search(self._log_path.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"chromedriver did not report its port:\n{self._log_path.read_text(errors='replace')}")


def start_chromium(profile: Path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--window-size=1366,900", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = PortZeroService(DRIVER, profile.parent / f"{profile.name}-chromedriver.log")
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    return driver


def emulate(driver, width: int, height: int, dark: bool = False) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 720,
        "screenWidth": width, "screenHeight": height})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": width < 720, "maxTouchPoints": 5})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


_OVERFLOW_JS = """
const W = arguments[0];
const out = {doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
             inner: window.innerWidth, scale: window.visualViewport ? window.visualViewport.scale : 1, wide: []};
const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
  (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (!r.width || !r.height) continue;
  if (r.right <= W + 1 && r.left >= -1) continue;
  const cs = getComputedStyle(el);
  if (cs.visibility === 'hidden' || cs.position === 'fixed' && r.bottom < 0) continue;
  let p = el.parentElement, clipped = false;
  while (p && p !== document.documentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') {
      const pr = p.getBoundingClientRect();
      if (pr.right <= W + 1 && pr.left >= -1) { clipped = true; break; }
    }
    p = p.parentElement;
  }
  if (!clipped) out.wide.push(name(el) + ' [' + Math.round(r.left) + '..' + Math.round(r.right) + ']');
}
out.wide = out.wide.slice(0, 12);
return out;
"""


def overflow(driver, width: int) -> list[str]:
    """Problems that make the page wider than ``width`` (empty: it fits)."""
    m = driver.execute_script(_OVERFLOW_JS, width)
    problems = []
    if m["doc"] > width or m["body"] > width:
        problems.append(f"document is {m['doc']} px wide (body {m['body']}) in a {width} px viewport")
    if m["inner"] != width or abs(m["scale"] - 1) > 1e-3:
        problems.append(f"viewport is {m['inner']} px at scale {m['scale']} (zoomed out)")
    problems += [f"sticks out: {w}" for w in m["wide"]]
    return problems


_axe_source: str | None = None


def axe(driver) -> list[str]:
    """Serious and critical axe-core violations on the current page, one line each."""
    global _axe_source
    if _axe_source is None:
        _axe_source = AXE.read_text()
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(_axe_source)      # DevTools evaluation: not subject to the page's CSP
    result = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
                           resultTypes: ['violations']})
          .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                   nodes: v.nodes.slice(0, 4).map(n => n.target.join(' '))}))))
          .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
    """)
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}"
            for v in result if v["impact"] in ("serious", "critical")]


def shot(driver, name: str, folder: Path = SHOTS, full: bool = True) -> Path:
    """A full-page screenshot (the whole scroll height, at the emulated width), or with
    ``full=False`` the screen as a person sees it (an open dialog)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not full:
        path = folder / f"{name}.png"
        path.write_bytes(driver.get_screenshot_as_png())
        return path
    # A phone's tab bar is fixed to the screen; in a picture of the whole page it belongs at the end.
    driver.execute_script("""const n = document.getElementById('nav');
        if (n && getComputedStyle(n).position === 'fixed') {
          n.style.position = 'absolute'; n.style.bottom = 'auto';
          n.style.top = (document.documentElement.scrollHeight - n.offsetHeight) + 'px'; }""")
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = driver.execute_script("return window.innerWidth")
    height = min(int(size["height"]), 6000)
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": max(1, height), "scale": 1}})
    driver.execute_script("const n = document.getElementById('nav'); if (n) { n.style.position = ''; n.style.top = ''; n.style.bottom = ''; }")
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(data["data"]))
    return path


def wait(driver, cond, timeout=40):
    return WebDriverWait(driver, timeout).until(cond)


def css(driver, selector, timeout=20):
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout)


def tap(driver, el):
    """Click as a person would: scroll it to the middle of the screen first (a phone's tab bar
    covers the bottom edge, where WebDriver's own scrolling would leave it)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", el)
    el.click()
    return el


def click(driver, selector, timeout=20):
    el = wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, selector)), timeout)
    return tap(driver, el)


def go(driver, page: str, ready: str | None = None, timeout=20) -> None:
    """Navigate inside the console (hash route) and wait until the page has its data."""
    driver.execute_script("window.location.hash = arguments[0]", page)
    name = ready or page.lstrip("#/").split("/")[0].split("?")[0]
    wait(driver, lambda d: d.execute_script(
        "const p = document.getElementById('page'); return p && p.dataset.ready === arguments[0]", name), timeout)


def png(width: int = 96, height: int = 64, tint: int = 160) -> bytes:
    """A small RGB gradient PNG, made here (no image files in the repository)."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, tint))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Watch:
    """Collects browser console errors and failed requests across a whole test."""

    def __init__(self, driver, origin: str, allow: tuple[str, ...] = ()):
        self.driver = driver
        self.origin = origin
        self.allow = allow            # substrings of failures a test provokes on purpose
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: dict[str, str] = {}

    def drain(self) -> None:
        for entry in self.driver.get_log("browser"):
            if entry["level"] in ("SEVERE", "ERROR") and not any(a in entry["message"] for a in self.allow):
                self.errors.append(entry["message"])
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            if msg["method"] == "Network.requestWillBeSent":
                self.requests[params["requestId"]] = params["request"]["url"]
            elif msg["method"] == "Network.responseReceived":
                status = params["response"]["status"]
                url = params["response"]["url"]
                if status >= 400 and url.startswith(self.origin) and not any(a in f"{status} {url}" for a in self.allow):
                    self.failed.append(f"{status} {url}")
            elif msg["method"] == "Network.loadingFailed" and not params.get("canceled") \
                    and self.requests.get(params["requestId"], "").startswith(self.origin):
                # (requests the page never made, e.g. Chromium's own probes, have no requestWillBeSent)
                self.failed.append(f"{params.get('errorText')} {self.requests.get(params['requestId'], '?')}")

    def check(self) -> None:
        self.drain()
        assert self.errors == [], "browser console errors:\n" + "\n".join(self.errors)
        assert self.failed == [], "failed requests:\n" + "\n".join(self.failed)


def dump(driver, watch: Watch | None, srv, name: str = "failure") -> None:
    """On a failure: a screenshot and what the browser and the server said."""
    try:
        shot(driver, name)
    except Exception as exc:  # the browser may be gone
        print("screenshot failed:", exc)
    if watch is not None:
        watch.drain()
        print("browser console errors:", *watch.errors, sep="\n  ")
        print("failed requests:", *watch.failed, sep="\n  ")
    try:
        print("message bar:", driver.execute_script("const m = document.getElementById('msg'); return m && m.textContent"))
    except Exception:
        pass
    print("server log:", srv.log()[-3000:])


def sign_in(driver, srv, token: str) -> None:
    """Open the console with a token already in session storage (the sign-in form has its own test)."""
    driver.get(srv.url + "/ui/features.json")
    driver.execute_script("window.sessionStorage.setItem('edge.token', arguments[0])", token)
    driver.get(srv.url + "/ui/")
    wait(driver, lambda d: d.execute_script("const p = document.getElementById('page'); return p && !!p.dataset.ready"))


def settle(seconds: float = 0.15) -> None:
    time.sleep(seconds)
