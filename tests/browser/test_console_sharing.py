"""The console and the sharing APIs, in a real headless Chromium: links made through the
Mediapocket and LiquidFiles APIs show on the console's Links page next to native ones, and the
share dialog's "downloaders must sign in" switch makes a link that needs a reader's token.
Also the LiquidFiles download page as a recipient sees it: the password form leads to the file.
"""

from __future__ import annotations

import time

import requests

from tests.browser.harness import By, click, css, shot, wait
from tests.browser.test_console import INIT, go
from tests.helpers import token_auth

AUTH = {"Authorization": f"Bearer {INIT}"}


def _seed(srv) -> None:
    assert requests.post(f"{srv.api}/b/cams", headers=AUTH, timeout=10).status_code == 200
    for ts in (1000, 1001):
        r = requests.post(f"{srv.api}/b/cams/gate", params={"ts": ts}, data=b"frame", timeout=10,
                          headers={**AUTH, "Content-Type": "text/plain", "x-reduct-label-filename": f"gate-{ts}.txt"})
        assert r.status_code == 200


def test_links_of_every_api_in_the_console(browser, make_server):
    srv = make_server(auth=token_auth(INIT))
    _seed(srv)
    mp = requests.post(f"{srv.url}/api/v2/shareable_links", headers={"X-API-KEY": INIT}, timeout=10, json={
        "expiry_date": "2099-01-01", "limit": 3,
        "payload": {"asset_id": "cams/gate/1000", "media_id": 1000, "filename": "from-mediapocket.txt"}})
    assert mp.status_code == 200
    up = requests.post(f"{srv.url}/link/attachments/upload", params={"filename": "from-liquidfiles.txt"},
                       data=b"attached", auth=(INIT, "x"), timeout=10).json()["attachment"]
    lf = requests.post(f"{srv.url}/link", json={"link": {"attachment": up["id"], "password": "pw-9"}},
                       auth=(INIT, "x"), timeout=10).json()["link"]
    d = browser
    try:
        d.get(srv.url + "/ui/")
        css(d, "#signin #token").send_keys(INIT)
        click(d, "#signin-btn")
        css(d, "#server-info")
        # a native link from the share dialog, with the sign-in switch on
        go(d, srv, "#/records/cams")
        wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")) == 2)
        click(d, "#record-list tbody tr button[name=share]")
        click(d, "#share-form input[name=require_authentication]")
        click(d, "#share-form button[name=create-link]")
        css(d, "#link-url")
        click(d, "#link-result button[name=done]")
        native = [x for x in requests.get(f"{srv.api}/links", headers=AUTH, timeout=10).json()["links"]
                  if x["origin"] == "native"]
        assert len(native) == 1 and native[0]["require_authentication"] is True
        assert requests.get(f"{srv.url}/link/{native[0]['id']}", timeout=10).status_code == 404
        assert requests.get(f"{srv.url}/link/{native[0]['id']}", headers=AUTH, timeout=10).content == b"frame"
        # the Links page lists all three
        go(d, srv, "#/links")
        wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#share-links tbody tr")) == 3)
        text = d.find_element(By.ID, "share-links").text
        assert "from-mediapocket.txt" in text and "from-liquidfiles.txt" in text and native[0]["file_name"] in text
        shot(d, "sharing-links")
        # a recipient opens the LiquidFiles link: the page asks, the right password gives the file
        d.get(lf["url"])
        css(d, "input[name=password]").send_keys("pw-9")
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        time.sleep(1.0)
        shot(d, "sharing-download")
        # the 303 leads to the file itself (a download, so the page does not change to it):
        # the server counted exactly one download
        row = next(x for x in requests.get(f"{srv.api}/links", headers=AUTH, timeout=10).json()["links"]
                   if x["id"] == lf["id"])
        assert row["downloads"] == 1
    except BaseException:
        shot(d, "sharing-failure")
        print("server log:", srv.log()[-3000:])
        raise
