"""The web console in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, Selenium).

One flow, as a user would do it, on a desktop (1366x768) and on a phone (390x844, touch, the
viewport meta tag honoured): sign in with a token, create a bucket, upload files with progress
over tus, find them in the record browser and preview them, share a record with a password and
a download limit, open the link, revoke it, create an upload link and upload through it
anonymously, create and delete a token. Every click scrolls its target to the middle of the
screen first, as a thumb would, and must not land on something else (a covering tab bar fails
it). The browser console must stay free of errors and no request may fail. Screenshots of each
step go to ``$EDGE_SCREENSHOTS`` (``tests/artifacts/screenshots``) as ``flow-<size>-<step>.png``.

Skips (with the reason) only when Chromium, its driver or Selenium cannot be found; the CI
script installs them (``apt-get install -y chromium chromium-driver``, ``pip install selenium``).
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from tests.helpers import token_auth

from tests.browser.harness import (
    DESKTOP, PHONE, By, EC, Watch, click, css, dump, emulate, go as go_to, overflow, png, shot as full_shot, tap, wait,
)

INIT = "console-init-token"


def go(driver, server, page: str) -> None:
    go_to(driver, page, ready=page.lstrip("#/").split("/")[0].split("?")[0])


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_console_end_to_end(browser, make_server, tmp_path, size):
    srv = make_server({"EDGE_METRICS_SAMPLE_S": "1"}, auth=token_auth(INIT))
    emulate(browser, *size)
    watch = Watch(browser, srv.url)
    label = "desktop" if size == DESKTOP else "phone"

    def shot(driver, name):
        full_shot(driver, f"flow-{label}-{name}")

    try:
        _flow(browser, srv, watch, tmp_path, shot, size[0])
    except BaseException:
        dump(browser, watch, srv, f"flow-{label}-failure")
        raise
    watch.check()


def _flow(d, srv, watch, tmp_path, shot, width):
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
    # each row says which record its file became (x-reduct-time of the last PATCH), in full view
    for status in d.find_elements(By.CSS_SELECTOR, "#upload-list .progress .state"):
        assert status.text.startswith("done: docs at "), status.text
        assert d.execute_script("const r = arguments[0].getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth", status)
    assert overflow(d, width) == []
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
    tap(d, png_row.find_element(By.CSS_SELECTOR, "button[name=preview]"))
    wait(d, lambda drv: drv.execute_script(
        "const i = document.getElementById('preview-img'); return i && i.complete && i.naturalWidth === 96"))
    shot(d, "05-records-image")
    json_row = next(r for k, r in by_label.items() if "filename=note.json" in k)
    tap(d, json_row.find_element(By.CSS_SELECTOR, "button[name=preview]"))
    pre = css(d, "#preview-text")
    assert json.loads(pre.text) == {"hello": "<b>world</b>", "n": 1}          # shown as text, not markup
    svg_row = next(r for r in d.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")
                   if r.get_attribute("data-entry") == "vector")
    tap(d, svg_row.find_element(By.CSS_SELECTOR, "button[name=preview]"))
    wait(d, EC.text_to_be_present_in_element((By.ID, "preview"), "not previewed"))
    assert d.find_elements(By.ID, "preview-img") == [] and d.title != "owned"

    # the `when` filter
    click(d, "details.more > summary")
    css(d, "textarea[name=when]").send_keys('{"&filename": {"$eq": "note.json"}}')
    click(d, "button[name=search]")
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")) == 1)
    shot(d, "06-records-filtered")

    # --- share with password and max downloads ---------------------------------------------
    click(d, "#record-list tbody tr button[name=share]")
    css(d, "#share-form input[name=max_downloads]").send_keys("2")
    d.find_element(By.CSS_SELECTOR, "#share-form input[name=password]").send_keys("pw-123")
    assert overflow(d, width) == []                                          # the dialog fits the screen
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
