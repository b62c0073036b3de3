"""The console faults found on a phone and on the way, each pinned by a test, plus the keyboard
(everything without a mouse), the timeline's zoom, and a check that the layout and axe checks
themselves catch what they are meant to (a check that cannot fail is no check)."""

from __future__ import annotations

import time
import urllib.parse

import pytest
import requests

from tests.browser.conftest import INIT, T0, seed
from tests.helpers import token_auth
from tests.browser.harness import (
    DESKTOP, PHONE, By, Watch, axe, click, css, dump, emulate, go, overflow, sign_in, tap, wait,
)

try:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
except ImportError:  # pragma: no cover
    ActionChains = Keys = None


@pytest.fixture
def site(make_server):
    srv = make_server({}, auth=token_auth(INIT))
    return seed(srv)


def _rows(d) -> int:
    return len(d.find_elements(By.CSS_SELECTOR, "#record-list tbody tr"))


def _records(d, site, size, entry: str, rows: int) -> None:
    """Signed in, on Records for ``sensors/<entry>``, with its ``rows`` records listed."""
    emulate(d, *size)
    sign_in(d, site.srv, INIT)
    go(d, f"#/records/sensors?entry={entry}")
    wait(d, lambda drv: _rows(drv) == rows)


def _timeline_done(d) -> bool:
    note = d.execute_script("const n = document.getElementById('timeline-note'); return n ? n.textContent : ''")
    return bool(note) and "so far" not in note


def test_dialog_closes_when_leaving_the_page_with_back(browser, site):
    d = browser
    emulate(d, *PHONE)
    sign_in(d, site.srv, INIT)
    go(d, "#/buckets")
    go(d, "#/links")
    click(d, "#upload-link-form button[name=create-upload-link]")
    css(d, "dialog.modal #link-url")
    d.back()                                            # to #/buckets
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, "dialog.modal"))
    go(d, "#/buckets") if "buckets" not in d.current_url else None
    d.forward()                                         # back on Links: the dialog stays closed
    wait(d, lambda drv: drv.execute_script("return document.getElementById('page').dataset.ready === 'links'"))
    assert d.find_elements(By.CSS_SELECTOR, "dialog.modal") == []


def test_preview_below_a_long_list_is_brought_into_view(browser, site):
    d = browser
    _records(d, site, PHONE, "climate/room-1", 60)
    last = d.find_elements(By.CSS_SELECTOR, "#record-list tbody tr")[-1]
    tap(d, last.find_element(By.CSS_SELECTOR, "button[name=preview]"))
    wait(d, lambda drv: drv.find_elements(By.ID, "preview-text"))
    top = d.execute_script("return document.getElementById('preview').getBoundingClientRect().top")
    assert 0 <= top < d.execute_script("return window.innerHeight") / 2, top
    assert d.execute_script("return document.activeElement.id") == "preview-title"


def test_lockout_says_how_long_to_wait(browser, make_server):
    srv = make_server({"EDGE_AUTH_MAX_FAILURES": "2", "EDGE_AUTH_BACKOFF": "40"}, auth=token_auth(INIT))
    d = browser
    d.get(srv.url + "/ui/")
    for _ in range(3):
        token = css(d, "#signin #token")
        token.clear()
        token.send_keys("not-the-token")
        click(d, "#signin-btn")
        time.sleep(0.3)
    wait(d, lambda drv: "retry in" in drv.find_element(By.ID, "msg").text)
    text = d.find_element(By.ID, "msg").text
    seconds = int(text.split("retry in ")[1].split(" s")[0])
    assert 30 <= seconds <= 40, text
    assert not d.find_element(By.ID, "nav").is_displayed()


def test_share_dialog_names_the_record_by_its_time_and_text_gets_a_txt_name(browser, site):
    d = browser
    _records(d, site, DESKTOP, "notes", 1)
    click(d, "#record-list tbody tr button[name=share]")
    title = css(d, "dialog.modal header h2").text
    assert "2025-06-01 08:00:00" in title and str(T0) not in title, title
    name = d.find_element(By.CSS_SELECTOR, "#share-form input[name=file_name]").get_attribute("value")
    assert name == f"notes_{T0}.txt"


def test_timeline_zooms_by_dragging_and_from_the_keyboard(browser, site):
    d = browser
    _records(d, site, DESKTOP, "climate/room-1", 60)
    wait(d, _timeline_done)
    canvas = d.find_element(By.ID, "timeline-chart")
    w = canvas.size["width"]
    # drag across the middle third with the mouse: the query narrows to that span
    ActionChains(d).move_to_element_with_offset(canvas, -w // 6, 0).click_and_hold() \
        .move_by_offset(w // 3, 0).release().perform()
    wait(d, lambda drv: 0 < _rows(drv) < 60 and _timeline_done(drv))
    zoomed = _rows(d)
    assert 10 <= zoomed <= 30, zoomed
    assert d.find_element(By.NAME, "start").get_attribute("value")
    # the keyboard: focus the chart, pick three bins, Enter zooms again
    canvas.click()
    canvas.send_keys(Keys.HOME, Keys.SHIFT + Keys.ARROW_RIGHT + Keys.ARROW_RIGHT)
    status = d.find_element(By.ID, "timeline-status").text
    assert "record(s)" in status and "Enter zooms in" in status
    canvas.send_keys(Keys.ENTER)
    wait(d, lambda drv: _rows(drv) < zoomed and _timeline_done(drv))
    click(d, "button[name=zoom-out]")
    wait(d, lambda drv: _rows(drv) == zoomed and _timeline_done(drv))
    click(d, "button[name=zoom-out]")
    wait(d, lambda drv: _rows(drv) == 60)
    assert not d.find_element(By.NAME, "zoom-out").is_displayed()


def test_everything_from_the_keyboard(browser, make_server):
    """Sign in, move between pages, open a record's share dialog, close it with Escape, pick a
    file on the Upload page: Tab, Enter and Escape only.

    With ``$system`` already there (audit flushed at once, and the test waits for the bucket):
    this test once timed out under load because Records, opened without a bucket in the address,
    showed whichever bucket sorted first, and ``$system`` (sorted first) appears only a few
    seconds after the first authenticated call, so a slow run met the JSON events instead of the
    camera's images. Records now opens the first bucket of the user's own data; the test makes
    the slow case the only case."""
    srv = make_server({"EDGE_AUDIT_FLUSH_S": "0.2"}, auth=token_auth(INIT))
    site = seed(srv)
    deadline = time.monotonic() + 30
    while "$system" not in {b["name"] for b in requests.get(f"{srv.api}/list", headers=site.auth, timeout=5).json()["buckets"]}:
        assert time.monotonic() < deadline, "no $system bucket after 30 s"
        time.sleep(0.2)
    d = browser
    emulate(d, *DESKTOP)
    watch = Watch(d, site.srv.url)
    d.get(site.srv.url + "/ui/")
    css(d, "#signin #token")
    body = d.find_element(By.TAG_NAME, "body")

    def tab_to(predicate, limit=60):
        for _ in range(limit):
            d.switch_to.active_element.send_keys(Keys.TAB)
            el = d.switch_to.active_element
            if predicate(el):
                return el
        raise AssertionError(f"not reachable with Tab (on {d.current_url}; focus ended on "
                             f"{d.execute_script('return document.activeElement.outerHTML.slice(0, 200)')})")

    body.send_keys(Keys.TAB)
    token = tab_to(lambda el: el.get_attribute("id") == "token")
    token.send_keys(INIT, Keys.ENTER)
    wait(d, lambda drv: drv.execute_script("return document.getElementById('page').dataset.ready === 'overview'"))
    link = tab_to(lambda el: el.get_attribute("data-page") == "records")
    link.send_keys(Keys.ENTER)
    wait(d, lambda drv: drv.execute_script("return document.getElementById('page').dataset.ready === 'records'"))
    assert d.switch_to.active_element.get_attribute("id") == "main"            # reading starts at the page
    assert d.find_element(By.NAME, "bucket").get_attribute("value") == "cameras"   # the user's data, not $system
    share = tab_to(lambda el: el.get_attribute("name") == "share", limit=120)
    share.send_keys(Keys.ENTER)
    css(d, "dialog.modal #share-form")
    assert d.execute_script("return document.activeElement.closest('dialog') !== null")   # focus moved into it
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, "dialog.modal"))
    assert d.switch_to.active_element.get_attribute("name") == "share"         # and came back
    # a thumbnail is a button too
    d.execute_script("document.querySelector('button[name=view-thumbs]').focus()")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#thumbs button[name=thumb]"))
    thumb = tab_to(lambda el: el.get_attribute("name") == "thumb")
    thumb.send_keys(Keys.ENTER)
    wait(d, lambda drv: drv.execute_script(
        "const i = document.getElementById('preview-img'); return i && i.complete && i.naturalWidth > 0"))
    # the file picker of the Upload page is reachable and announced as such
    d.execute_script("document.querySelector('#nav a[data-page=upload]').focus()")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda drv: drv.execute_script("return document.getElementById('page').dataset.ready === 'upload'"))
    picker = tab_to(lambda el: el.get_attribute("type") == "file")
    assert picker.get_attribute("id") == "files"
    assert d.execute_script("return getComputedStyle(arguments[0].closest('label')).outlineStyle", picker) != "none"
    watch.check()


def test_the_checks_catch_what_they_should(browser):
    """overflow() and axe() on pages made to fail them."""
    d = browser
    emulate(d, 360, 740)
    wide = "<!doctype html><meta name=viewport content='width=device-width'><body><div style='width:500px'>x</div>"
    d.get("data:text/html," + urllib.parse.quote(wide))
    assert any("document is" in p for p in overflow(d, 360))
    poke = ("<!doctype html><meta name=viewport content='width=device-width'><body style='margin:0'>"
            "<div style='overflow:visible;width:100px'><span style='display:inline-block;margin-left:340px;width:60px'>x</span></div>"
            "<div style='overflow-x:auto;width:100px'><span style='display:inline-block;width:900px'>y</span></div>")
    d.get("data:text/html," + urllib.parse.quote(poke))
    problems = overflow(d, 360)
    assert any("sticks out: span" in p for p in problems) and not any("900" in p for p in problems), problems
    bad = ("<!doctype html><html><head><title>t</title></head><body><main><input type=text>"
           "<p style='color:#aaa;background:#fff'>low contrast</p></main></body></html>")
    d.get("data:text/html," + urllib.parse.quote(bad))
    found = axe(d)
    assert any("label" in v for v in found) and any("color-contrast" in v for v in found), found
