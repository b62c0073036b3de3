"""The web console in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, Selenium).

One flow, as a user would do it: sign in with a token, create a bucket, upload files with
progress over tus, find them in the record browser and preview them, share a record with a
password and a download limit, open the link, revoke it, create an upload link and upload
through it anonymously, create and delete a token. The browser console must stay free of
errors and no request may fail. Screenshots of each page go to ``tests/artifacts/``.

Skips (with the reason) only when Chromium, its driver or Selenium cannot be found; the CI
script installs them (``apt-get install -y chromium chromium-driver``, ``pip install selenium``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import requests
from tests.helpers import token_auth

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
INIT = "console-init-token"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="chromium/chromedriver not found (apt-get install -y chromium chromium-driver)"),
]



def png(width: int = 96, height: int = 64) -> bytes:
    """A small RGB gradient PNG, made here (no image files in the repository)."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Watch:
    """Collects browser console errors and failed requests across the whole flow."""

    def __init__(self, driver, origin: str):
        self.driver = driver
        self.origin = origin
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: dict[str, str] = {}

    def drain(self) -> None:
        for entry in self.driver.get_log("browser"):
            if entry["level"] in ("SEVERE", "ERROR"):
                self.errors.append(entry["message"])
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            if msg["method"] == "Network.requestWillBeSent":
                self.requests[params["requestId"]] = params["request"]["url"]
            elif msg["method"] == "Network.responseReceived":
                status = params["response"]["status"]
                if status >= 400 and params["response"]["url"].startswith(self.origin):
                    self.failed.append(f"{status} {params['response']['url']}")
            elif msg["method"] == "Network.loadingFailed" and not params.get("canceled") \
                    and self.requests.get(params["requestId"], "").startswith(self.origin):
                # (requests the page never made, e.g. Chromium's own probes, have no requestWillBeSent)
                self.failed.append(f"{params.get('errorText')} {self.requests.get(params['requestId'], '?')}")

    def check(self) -> None:
        self.drain()
        assert self.errors == [], "browser console errors:\n" + "\n".join(self.errors)
        assert self.failed == [], "failed requests:\n" + "\n".join(self.failed)


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"console-{name}.png"))


def wait(driver, cond, timeout=20):
    return WebDriverWait(driver, timeout).until(cond)


def css(driver, selector, timeout=20):
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout)


def click(driver, selector, timeout=20):
    el = wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, selector)), timeout)
    el.click()
    return el


def go(driver, server, page: str) -> None:
    driver.execute_script("window.location.hash = arguments[0]", page)
    time.sleep(0.2)


def test_console_end_to_end(browser, make_server, tmp_path):
    srv = make_server({"EDGE_METRICS_SAMPLE_S": "1"}, auth=token_auth(INIT))
    watch = Watch(browser, srv.url)
    try:
        _flow(browser, srv, watch, tmp_path)
    except BaseException:
        shot(browser, "failure")
        watch.drain()
        print("browser console errors:", *watch.errors, sep="\n  ")
        print("failed requests:", *watch.failed, sep="\n  ")
        print("message bar:", browser.execute_script("const m = document.getElementById('msg'); return m && m.textContent"))
        print("server log:", srv.log()[-3000:])
        raise
    watch.check()


def _flow(d, srv, watch, tmp_path):
    auth = {"Authorization": f"Bearer {INIT}"}

    # --- sign in -------------------------------------------------------------------------------
    d.get(srv.url + "/ui/")
    css(d, "#signin #token")
    shot(d, "01-signin")
    d.find_element(By.ID, "token").send_keys(INIT)
    click(d, "#signin-btn")
    css(d, "#server-info")
    assert "init-token" in d.find_element(By.ID, "who").text
    assert d.execute_script("return window.sessionStorage.getItem('edge.token')") == INIT
    shot(d, "02-overview")

    # --- create a bucket -----------------------------------------------------------------------
    go(d, srv, "#/buckets")
    css(d, "#bucket-create input[name=name]").send_keys("photos")
    click(d, "#bucket-create button[name=submit]")
    css(d, "tr[data-bucket=photos]")
    assert requests.head(f"{srv.api}/b/photos", headers=auth).status_code == 200
    shot(d, "03-buckets")

    # --- upload with progress (tus) -------------------------------------------------------------
    big = tmp_path / "video.bin"
    big.write_bytes(bytes(range(256)) * (12 * 1024 * 4))      # 12 MiB: two tus chunks
    img = tmp_path / "dot.png"
    img.write_bytes(png())
    note = tmp_path / "note.json"
    note.write_text(json.dumps({"hello": "<b>world</b>", "n": 1}))
    go(d, srv, "#/upload?bucket=photos")
    entry = css(d, "input[name=entry]")
    entry.clear()
    entry.send_keys("docs")
    d.find_element(By.CSS_SELECTOR, "#files").send_keys("\n".join(str(p) for p in (big, img, note)))
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#upload-list .progress[data-state=done]")) == 3, 60)
    values = [p.get_attribute("value") for p in d.find_elements(By.CSS_SELECTOR, "#upload-list progress")]
    assert values == ["100"] * 3
    shot(d, "04-upload")
    info = requests.get(f"{srv.api}/b/photos", headers=auth).json()
    assert {e["name"]: e["record_count"] for e in info["entries"]} == {"docs": 3}

    # An SVG record: must never be rendered by the console.
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>document.title='owned'</script></svg>"
    requests.post(f"{srv.api}/b/photos/vector?ts=5", data=svg, headers={**auth, "content-type": "image/svg+xml"})

    # --- record browser, previews ------------------------------------------------------------
    go(d, srv, "#/records/photos")
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")) == 4)
    rows = d.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")
    by_label = {r.find_element(By.CSS_SELECTOR, "td.labels").text: r for r in rows}
    assert any("filename=dot.png" in k for k in by_label)
    png_row = next(r for k, r in by_label.items() if "filename=dot.png" in k)
    png_row.find_element(By.CSS_SELECTOR, "button[name=preview]").click()
    wait(d, lambda drv: drv.execute_script(
        "const i = document.getElementById('preview-img'); return i && i.complete && i.naturalWidth === 96"))
    shot(d, "05-records-image")
    json_row = next(r for k, r in by_label.items() if "filename=note.json" in k)
    json_row.find_element(By.CSS_SELECTOR, "button[name=preview]").click()
    pre = css(d, "#preview-text")
    assert json.loads(pre.text) == {"hello": "<b>world</b>", "n": 1}          # shown as text, not markup
    svg_row = next(r for r in d.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")
                   if r.get_attribute("data-entry") == "vector")
    svg_row.find_element(By.CSS_SELECTOR, "button[name=preview]").click()
    wait(d, EC.text_to_be_present_in_element((By.ID, "preview"), "not previewed"))
    assert d.find_elements(By.ID, "preview-img") == [] and d.title != "owned"

    # the `when` filter
    css(d, "textarea[name=when]").send_keys('{"&filename": {"$eq": "note.json"}}')
    click(d, "button[name=search]")
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")) == 1)
    shot(d, "06-records-filtered")

    # --- share with password and max downloads ---------------------------------------------
    click(d, "#record-list tbody tr button[name=share]")
    css(d, "#share-form input[name=max_downloads]").send_keys("2")
    d.find_element(By.CSS_SELECTOR, "#share-form input[name=password]").send_keys("pw-123")
    click(d, "#share-form button[name=create-link]")
    shown = css(d, "#link-url").get_attribute("value")
    full = d.find_elements(By.CSS_SELECTOR, "input[name=full-link]")     # present once short links exist
    link = full[0].get_attribute("value") if full else shown
    assert "/api/v1/links/" in link and shown.startswith(srv.url)
    assert d.execute_script("const q = document.getElementById('link-qr'); return q.complete && q.naturalWidth > 0")
    shot(d, "07-share-dialog")
    click(d, "#link-result button[name=done]")

    # open the link in the browser (Basic auth password), as a recipient would
    result = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {headers: {Authorization: 'Basic ' + btoa('guest:pw-123')}, credentials: 'omit'})
          .then(async r => done({status: r.status, body: await r.text()})).catch(e => done({error: String(e)}));
    """, link)
    assert result["status"] == 200 and json.loads(result["body"])["n"] == 1
    assert requests.get(link).status_code == 404       # no password, no file: the uniform answer

    # --- links page: receipts, revoke -------------------------------------------------------
    go(d, srv, "#/links")
    row = css(d, "#share-links tbody tr")
    assert "1 / 2" in row.text and "active" in row.text
    click(d, "#share-links button[name=receipts]")
    css(d, "dialog.modal table")
    shot(d, "08-link-receipts")
    click(d, "dialog.modal button.close")
    click(d, "#share-links button[name=revoke]")
    click(d, "dialog.modal button[name=confirm-ok]")
    wait(d, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#share-links tbody tr"), "revoked"))
    assert requests.get(link, auth=("guest", "pw-123")).status_code in (404, 410, 422)

    # --- upload link -------------------------------------------------------------------------
    css(d, "#upload-link-form input[name=ul-max_files]").send_keys("2")
    entry = d.find_element(By.CSS_SELECTOR, "#upload-link-form input[name=ul-entry]")
    entry.clear()
    entry.send_keys("inbox")
    d.find_element(By.CSS_SELECTOR, "#upload-link-form input[name=ul-note]").send_keys("Please send the <report>")
    click(d, "#upload-link-form button[name=create-upload-link]")
    upload_url = css(d, "#link-url").get_attribute("value")
    assert "/ui/upload.html#" in upload_url
    shot(d, "09-upload-link-created")
    click(d, "#link-result button[name=done]")
    css(d, "#upload-links tbody tr")
    shot(d, "10-links")

    # --- tokens ------------------------------------------------------------------------------
    go(d, srv, "#/tokens")
    css(d, "#token-create input[name=token-name]").send_keys("camera-1")
    d.find_element(By.CSS_SELECTOR, "#token-create input[name=write]").send_keys("photos")
    click(d, "#token-create button[name=create-token]")
    secret = css(d, "#token-secret").get_attribute("value")
    assert secret.startswith("camera-1-")
    shot(d, "11-token-secret")
    click(d, "dialog.modal button[name=done]")
    css(d, "tr[data-token=camera-1]")
    assert requests.get(f"{srv.api}/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    click(d, "tr[data-token=camera-1] button[name=delete-token]")
    css(d, "dialog.modal input[name=confirm]").send_keys("camera-1")
    click(d, "dialog.modal button[name=confirm-ok]")
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, "tr[data-token=camera-1]"))
    shot(d, "12-tokens")

    # the overview again, now with data in the rate chart
    go(d, srv, "#/overview")
    css(d, "#rates")
    time.sleep(2.5)
    shot(d, "13-overview-after")

    # --- anonymous upload through the link -----------------------------------------------------
    click(d, "#signout")
    css(d, "#signin #token")
    assert d.execute_script("return window.sessionStorage.getItem('edge.token')") is None
    d.get(upload_url)
    wait(d, EC.text_to_be_present_in_element((By.ID, "upload-info"), "photos/inbox"))
    assert css(d, "#upload-note").text == "Please send the <report>"
    assert "#" not in d.current_url                                         # the secret left the address bar
    report = tmp_path / "report.txt"
    report.write_text("quarterly numbers\n" * 1000)
    d.find_element(By.CSS_SELECTOR, "#files").send_keys(str(report))
    wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#upload-list .progress[data-state=done]"), 30)
    shot(d, "14-anonymous-upload")
    entries = {e["name"]: e for e in requests.get(f"{srv.api}/b/photos", headers=auth).json()["entries"]}
    assert entries["inbox"]["record_count"] == 1
    got = requests.get(f"{srv.api}/b/photos/inbox", headers=auth)
    assert got.content == report.read_bytes() and got.headers["x-reduct-label-filename"] == "report.txt"
    links = requests.get(f"{srv.api}/upload-links", headers=auth).json()["upload_links"]
    assert links[0]["files"] == 1 and links[0]["bytes"] == report.stat().st_size
