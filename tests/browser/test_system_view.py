"""The console's System page in real headless Chromium: the usage chart and the audit trail with
its filters, over $system events a real server wrote (see test_console.py for the set-up)."""

from __future__ import annotations

import time

import requests

from tests.browser.harness import Watch, click, css, shot, wait
from tests.browser.test_console import go
from tests.helpers import token_auth

INIT = "system-view-init"
H = {"Authorization": f"Bearer {INIT}"}


def test_system_page_shows_usage_and_a_filterable_audit_trail(browser, make_server):
    from selenium.webdriver.common.by import By

    srv = make_server({"EDGE_AUDIT_FLUSH_S": "0.3", "EDGE_USAGE_INTERVAL_S": "1", "RS_INSTANCE_NAME": "cam-7"},
                      auth=token_auth(INIT))
    api = srv.api
    requests.post(f"{api}/b/line", headers=H, timeout=5).raise_for_status()
    for i in range(5):
        requests.post(f"{api}/b/line/e?ts={i + 1}", data=b"x" * 500, headers=H, timeout=5).raise_for_status()
    requests.get(f"{api}/info", headers={"Authorization": "Bearer not-a-token"}, timeout=5)   # a refused call
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = [e["name"] for e in requests.get(f"{api}/b/$system", headers=H, timeout=5).json()["entries"]] \
            if requests.get(f"{api}/b/$system", headers=H, timeout=5).status_code == 200 else []
        if {"audit/cam-7/init-token", "audit/cam-7/unauthorized", "usage/cam-7/line"} <= set(names):
            break
        time.sleep(0.2)
    watch = Watch(browser, srv.url)
    d = browser
    d.get(f"{srv.url}/ui/")
    css(d, "#signin #token").send_keys(INIT)
    click(d, "#signin-btn")
    css(d, "#server-info")
    go(d, srv, "#/system")
    css(d, "#usage-chart")
    wait(d, lambda drv: "windows of" in drv.find_element(By.ID, "usage-note").text)
    css(d, "#audit-table table")
    rows = d.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")
    tokens = {r.get_attribute("data-token") for r in rows}
    assert {"init-token", "unauthorized"} <= tokens
    writes = [r for r in rows if "/api/v1/b/line/e" in r.text]
    assert writes and "POST" in writes[0].text and "200" in writes[0].text
    shot(d, "20-system")
    # Filters: only refused calls; then a path filter; then one token from the server side.
    d.find_element(By.CSS_SELECTOR, "select[name=audit-status] option:nth-child(4)").click()    # 401
    wait(d, lambda drv: {r.get_attribute("data-token") for r in
                         drv.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")} == {"unauthorized"})
    d.find_element(By.CSS_SELECTOR, "select[name=audit-status] option:nth-child(1)").click()
    d.find_element(By.CSS_SELECTOR, "input[name=audit-path]").send_keys("/b/line/e")
    wait(d, lambda drv: all("/b/line/e" in r.text for r in drv.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")))
    d.find_element(By.CSS_SELECTOR, "select[name=audit-token] option[value=unauthorized]").click()
    wait(d, lambda drv: "0 record(s)" in drv.find_element(By.ID, "audit-count").text)
    # Usage of one bucket.
    d.find_element(By.CSS_SELECTOR, "select[name=usage-of] option[value=line]").click()
    wait(d, lambda drv: "in 5 records" in drv.find_element(By.ID, "usage-latest").text
         or "windows of" in drv.find_element(By.ID, "usage-note").text)
    shot(d, "21-system-filtered")
    watch.check()
