"""Fixtures of the browser tests: a Chromium per test, and a server seeded like a small camera site."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import requests

from tests.browser.harness import SKIP_REASON, png, start_chromium

INIT = "console-init-token"
# 2025-06-01 08:00:00 UTC: fixed, so screenshots of the seeded pages do not change between runs.
T0 = 1748764800_000000


@pytest.fixture
def browser(tmp_path):
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    driver = start_chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Site:
    srv: object
    token: str
    share_link: str          # a plain share link (full URL)
    password_link: str       # a share link with a password
    upload_url: str          # an upload link's page (ui/upload.html#secret)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def seed(srv, token: str = INIT) -> Site:
    """Two buckets (images with a FIFO quota, JSON readings without), a share link, a password
    link, an upload link and a second token: enough for every page to have something to show."""
    auth = {"Authorization": f"Bearer {token}"}
    api = srv.api
    s = requests.Session()
    s.headers.update(auth)
    assert s.post(f"{api}/b/cameras", json={"quota_type": "FIFO", "quota_size": 40_000_000}).status_code == 200
    assert s.post(f"{api}/b/sensors").status_code == 200
    for i in range(24):
        ts = T0 + i * 150_000_000 + (i % 5) * 17_000_000
        body = png(96 + (i % 3) * 16, 64, tint=(i * 37) % 256)
        r = s.post(f"{api}/b/cameras/front?ts={ts}", data=body,
                   headers={"content-type": "image/png", "x-reduct-label-filename": f"front-{i:02d}.png",
                            "x-reduct-label-site": "north"})
        assert r.status_code == 200, r.text
    for i in range(60):
        ts = T0 + i * 60_000_000
        reading = {"t": 20.5 + (i % 7) * 0.3, "rh": 41 + i % 9}
        r = s.post(f"{api}/b/sensors/climate/room-1?ts={ts}", data=json.dumps(reading),
                   headers={"content-type": "application/json", "x-reduct-label-kind": "reading"})
        assert r.status_code == 200, r.text
    s.post(f"{api}/b/sensors/notes?ts={T0}", data=b"calibrated on site\n", headers={"content-type": "text/plain"})
    expire = int(time.time()) + 30 * 86400
    first = T0
    link = s.post(f"{api}/links/front-00.png", json={
        "bucket": "cameras", "entry": "front", "record_entry": "front", "record_timestamp": first,
        "query": {"query_type": "QUERY", "start": first, "stop": first + 1}, "expire_at": expire,
        "base_url": srv.url + "/"}).json()
    protected = s.post(f"{api}/links/front-01.png", json={
        "bucket": "cameras", "entry": "front", "record_entry": "front", "record_timestamp": first + 150_000_000 + 17_000_000,
        "query": {"query_type": "QUERY"}, "expire_at": expire, "password": "open-sesame", "max_downloads": 5,
        "base_url": srv.url + "/"}).json()
    up = s.post(f"{api}/upload-links", json={"bucket": "sensors", "entry": "inbox", "expire_at": expire,
                                             "max_files": 10, "note": "Please add the calibration report",
                                             "base_url": srv.url + "/"}).json()
    assert s.post(f"{api}/tokens/camera-1", json={"permissions": {"full_access": False, "read": ["cameras"],
                                                                  "write": ["cameras"]}}).status_code == 200
    assert s.post(f"{api}/tokens/prometheus", json={"permissions": {"full_access": False, "read": ["$metrics"]}}).status_code == 200
    return Site(srv, token, link["link"], protected["link"], up["url"])
