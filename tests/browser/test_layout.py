"""Every console page at 360, 390, 768 and 1366 px: nothing wider than the screen, no serious or
critical accessibility violation (axe-core), light and dark; screenshots of each page at phone
and desktop width, and the two README screenshots.

Pages: sign-in, overview, buckets, records (list and thumbnails, and the share dialog on top),
upload, links, tokens, system, the upload-link page and the share-link download page (plain and with a
password). At 360 px only the width is checked; axe runs at 390 px (light), 768 px (dark) and
1366 px (light); screenshots are taken at 390, 768 (dark) and 1366 px into ``$EDGE_SCREENSHOTS``
(``tests/artifacts/screenshots`` by default) as ``<page>-<width>.png``. ``docs/screenshots/
console-desktop.png`` and ``console-phone.png`` (shown in the README) are rewritten when they change.
"""

from __future__ import annotations

import urllib.parse

from tests.browser.conftest import INIT, seed
from tests.helpers import token_auth
from tests.browser.harness import (
    ROOT, WIDTHS, By, Watch, axe, click, css, dump, emulate, go, overflow, shot, sign_in, wait,
)

README_SHOTS = ROOT / "docs" / "screenshots"
HEIGHT = {360: 740, 390: 844, 768: 1024, 1366: 768}
AXE_AT = {390: False, 768: True, 1366: False}        # width -> dark mode
SHOT_AT = (390, 768, 1366)


def _records_ready(d) -> bool:
    note = d.execute_script("const n = document.getElementById('timeline-note'); return n ? n.textContent : ''")
    return bool(note) and "so far" not in note


def _thumbs_ready(d) -> bool:
    """The thumbnails in view are drawn (they load as they scroll into view)."""
    return d.execute_script("""const g = document.getElementById('thumbs');
        if (!g) return false;
        g.scrollIntoView();
        return g.querySelectorAll('canvas').length >= Math.min(2, g.children.length)""")


def _console_pages(site):
    """(name, hash route, extra wait) of the signed-in pages."""
    return [
        ("overview", "#/overview", lambda d: d.find_elements(By.CSS_SELECTOR, "#bucket-usage .bar")),
        ("buckets", "#/buckets", None),
        ("records", "#/records/cameras", _records_ready),
        ("records-thumbnails", "#/records/cameras?view=thumbs", _thumbs_ready),
        ("upload", "#/upload", None),
        ("links", "#/links", lambda d: d.find_elements(By.CSS_SELECTOR, "#upload-links tbody tr")),
        ("tokens", "#/tokens", lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-token=camera-1]")),
        ("system", "#/system", None),
    ]


def _download_page(site, link: str) -> str:
    target = link[len(site.srv.url):]
    return f"{site.srv.url}/ui/download.html#{target}"


def _write_if_changed(src, dest) -> None:
    data = src.read_bytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.read_bytes() != data:
        dest.write_bytes(data)


def test_every_page_fits_every_screen_and_passes_axe(browser, make_server):
    srv = make_server({"EDGE_METRICS_SAMPLE_S": "0.5"}, auth=token_auth(INIT))
    site = seed(srv)
    watch = Watch(browser, srv.url, allow=("status of 401", "401 ", "status of 404", "404 "))
    problems: list[str] = []
    d = browser

    def check(name: str, width: int) -> None:
        problems.extend(f"{name} @ {width}px: {p}" for p in overflow(d, width))
        if width in AXE_AT:
            scheme = "dark" if AXE_AT[width] else "light"
            problems.extend(f"{name} @ {width}px ({scheme}): {v}" for v in axe(d))
        if width in SHOT_AT:
            shot(d, f"{name}-{width}" + ("-dark" if AXE_AT.get(width) else ""), full=not name.endswith("dialog"))

    try:
        for width in WIDTHS:
            emulate(d, width, HEIGHT[width], dark=AXE_AT.get(width, False))
            # sign-in (no token yet)
            d.get(srv.url + "/ui/features.json")
            d.execute_script("window.sessionStorage.clear()")
            d.get(srv.url + "/ui/")
            css(d, "#signin #token")
            assert not d.find_element(By.ID, "nav").is_displayed(), "navigation shows on the sign-in page"
            check("signin", width)
            sign_in(d, srv, INIT)
            for name, route, ready in _console_pages(site):
                go(d, route, ready="records" if name.startswith("records") else None)
                if ready is not None:
                    wait(d, ready)
                d.execute_script("window.scrollTo(0, 0)")
                check(name, width)
            # a dialog on a phone: the share dialog of the first record
            go(d, "#/records/cameras")
            wait(d, _records_ready)
            click(d, "#record-list tbody tr button[name=share]")
            css(d, "dialog.modal #share-form")
            check("share-dialog", width)
            click(d, "dialog.modal button.close")
            if width == 1366:
                # README, desktop: the record browser with its timeline and an image preview.
                click(d, "#record-list tbody tr:nth-child(3) button[name=preview]")
                wait(d, lambda drv: drv.execute_script(
                    "const i = document.getElementById('preview-img'); return i && i.complete && i.naturalWidth > 0"))
                d.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
                out = shot(d, "readme-desktop")
                out.write_bytes(d.get_screenshot_as_png())      # the first screen, as a person sees it
                _write_if_changed(out, README_SHOTS / "console-desktop.png")
            if width == 390:
                # README, phone: the thumbnails of a camera, as a phone shows them.
                go(d, "#/records/cameras?view=thumbs", ready="records")
                wait(d, _thumbs_ready)
                d.execute_script("document.getElementById('record-list').scrollIntoView(); document.activeElement.blur()")
                wait(d, lambda drv: drv.execute_script("""return document.querySelectorAll('#thumbs canvas').length >= 8 &&
                    !Array.from(document.querySelectorAll('#thumbs .ph')).some(e => e.getBoundingClientRect().top < window.innerHeight)"""))
                png_bytes = d.get_screenshot_as_png()
                out = shot(d, "readme-phone")
                out.write_bytes(png_bytes)              # the phone screen as a person sees it, not the whole page
                _write_if_changed(out, README_SHOTS / "console-phone.png")
            # the pages a recipient opens (no token)
            d.get("about:blank")
            d.get(site.upload_url)
            wait(d, lambda drv: drv.execute_script("return document.body.dataset.ready === '1'"))
            css(d, "#upload-note")
            check("upload-link-page", width)
            d.get(_download_page(site, site.share_link))
            css(d, "#download-link")
            check("download-page", width)
            d.get("about:blank")                        # (only the fragment differs: force a load)
            d.get(_download_page(site, site.password_link))
            css(d, "#download-password")
            check("download-page-password", width)
    except BaseException:
        dump(d, watch, srv)
        raise
    assert problems == [], "layout / accessibility problems:\n" + "\n".join(problems)
    watch.check()


def test_a_share_link_opened_in_a_browser_shows_the_download_page(browser, make_server):
    """A person following a share link gets a page (name, size, Download); the file itself still
    comes straight to scripts, and with the page's own Download button (dl=1)."""
    import requests

    srv = make_server({}, auth=token_auth(INIT))
    site = seed(srv)
    d = browser
    watch = Watch(d, srv.url, allow=("401 ", "404 "))
    try:
        d.get(site.share_link)
        css(d, "#download-link")
        assert "/ui/download.html#" in d.current_url
        assert d.find_element(By.ID, "download-name").text == "front-00.png"
        assert "B" in d.find_element(By.ID, "download-size").text and "image/png" in d.find_element(By.ID, "download-size").text
        href = d.find_element(By.ID, "download-link").get_attribute("href")
        assert href.endswith("&dl=1")
        got = requests.get(href, headers={"Accept": "text/html,*/*"})
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
        assert requests.get(site.share_link).content.startswith(b"\x89PNG")        # scripts: unchanged
        # a password link asks for the password; a wrong one is refused, the right one downloads
        d.get(site.password_link)
        pw = css(d, "#download-password")
        pw.send_keys("wrong")
        click(d, "#password-form button[name=download]")
        wait(d, lambda drv: "Not accepted" in drv.find_element(By.ID, "msg").text)
        pw.clear()
        pw.send_keys("open-sesame")
        click(d, "#password-form button[name=download]")
        wait(d, lambda drv: "Downloaded front-01.png" in drv.find_element(By.ID, "msg").text)
        links = requests.get(f"{srv.api}/links", headers=site.auth).json()["links"]
        assert next(lk for lk in links if lk["file_name"] == "front-01.png")["downloads"] == 1
        # a revoked link is not told apart from one that needs a password (the server's uniform answer)
        link_id = next(lk["id"] for lk in links if lk["file_name"] == "front-00.png")
        assert requests.delete(f"{srv.api}/links/{link_id}", headers=site.auth).status_code == 200
        d.get("about:blank")
        d.get(site.share_link)
        wait(d, lambda drv: "does not work any more" in drv.find_element(By.ID, "download-info").text)
        assert d.find_elements(By.ID, "download-password")
        # something that is not one of our link URLs is not fetched at all
        d.get("about:blank")
        d.get(srv.url + "/ui/download.html#" + urllib.parse.quote("https://example.com/x?ct=1"))
        wait(d, lambda drv: "complete share link" in drv.find_element(By.ID, "download-info").text)
    except BaseException:
        dump(d, watch, srv)
        raise
    watch.drain()
    assert watch.errors == [] or all("401" in e or "404" in e for e in watch.errors), watch.errors
