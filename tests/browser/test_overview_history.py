"""The Overview's per-bucket history in real headless Chromium, from the ``$system`` usage records
a real server wrote (``EDGE_USAGE_INTERVAL_S=1``), with the fallbacks the page names:

- a full-access token: history from ``$system`` (never ``metrics/history``), 1 h offered while
  the records are young; with three days of older usage records (written into ``$system`` as
  the server writes them) 24 h and 7 d are offered, the 7 d chart reaches back to them, reads a
  bounded, sampled number of records, and still fits a 360 px screen and passes axe;
- a token that may read metrics but not ``$system``: ``metrics/history``, and the page says why;
- events switched off (``RS_SYSTEM_EVENTS_ENABLED=false``): ``metrics/history``, and it says so;
- the client-side aggregation itself (``binUsage``), run in the page on made-up windows.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.browser.conftest import INIT, seed
from tests.browser.harness import (
    DESKTOP, By, Watch, axe, dump, emulate, go, overflow, png, shot, sign_in, wait,
)
from tests.helpers import token_auth

INSTANCE = "cam-7"


def _source(d) -> dict:
    return d.execute_script("""const s = document.getElementById('bucket-usage');
        const c = (b) => document.querySelector(`#bucket-usage canvas[data-bucket="${b}"]`);
        return {kind: s.dataset.source, note: document.getElementById('history-source').textContent,
                spans: [...s.querySelectorAll('.seg button')].map(b => b.name),
                points: c('cameras') ? Number(c('cameras').dataset.points || 0) : -1,
                peak: c('cameras') ? Number(c('cameras').dataset.peak || 0) : -1,
                label: c('cameras') ? c('cameras').getAttribute('aria-label') : ''}""")


def _wait_entries(srv, auth, names, minimum=1, timeout=30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{srv.api}/b/$system", headers=auth, timeout=5)
        counts = {e["name"]: e["record_count"] for e in r.json()["entries"]} if r.status_code == 200 else {}
        if all(counts.get(n, 0) >= minimum for n in names):
            return counts
        assert time.monotonic() < deadline, f"no usage records {names} after {timeout} s: {counts}"
        time.sleep(0.3)


def _backfill(srv, auth, entry: str, bucket: str | None, start_us: int, count: int, step_s: int,
              rate: int, stored0: int, stored_step: int) -> None:
    """``count`` usage windows of ``step_s`` seconds ending at start + i*step, as batches."""
    for first in range(0, count, 200):
        headers = {**auth, "content-type": "application/octet-stream"}
        body = b""
        for i in range(first, min(count, first + 200)):
            ts = start_us + i * step_s * 1_000_000
            doc = json.dumps({"timestamp": ts, "instance": INSTANCE, "status": 200, "message": "usage",
                              "type": "usage_stats", "bucket": bucket, "duration": step_s,
                              "write_bytes": rate * step_s, "read_bytes": 0, "records_written": 10,
                              "records_read": 0, "written_entries": 1, "read_entries": 0,
                              "storage_bytes": stored0 + i * stored_step, "bucket_count": 1, "entry_count": 1,
                              "block_count": 1, "record_count": 10 * i}).encode()
            headers[f"x-reduct-time-{ts}"] = f"{len(doc)},application/json,status=200"
            body += doc
        r = requests.post(f"{srv.api}/b/$system/{entry}/batch", data=body, headers=headers, timeout=30)
        assert r.status_code == 200 and "x-reduct-error-" not in " ".join(r.headers), (r.status_code, dict(r.headers))


def _asked(watch: Watch, fragment: str) -> bool:
    watch.drain()
    return any(fragment in url for url in watch.requests.values())


def test_overview_history_comes_from_usage_events(browser, make_server):
    srv = make_server({"EDGE_USAGE_INTERVAL_S": "1", "EDGE_METRICS_SAMPLE_S": "0.5", "RS_INSTANCE_NAME": INSTANCE},
                      auth=token_auth(INIT))
    site = seed(srv)
    auth = site.auth
    for i in range(12):                              # writes over a few usage windows
        r = requests.post(f"{srv.api}/b/cameras/back?ts={1_000_000 + i}", data=png(160, 120, tint=i * 20),
                          headers={**auth, "content-type": "image/png"}, timeout=5)
        assert r.status_code == 200
        time.sleep(0.25)
    _wait_entries(srv, auth, [f"usage/{INSTANCE}/cameras", f"usage/{INSTANCE}/total"], minimum=3)
    d = browser
    watch = Watch(d, srv.url)
    try:
        emulate(d, *DESKTOP)
        sign_in(d, srv, INIT)
        go(d, "#/overview")
        wait(d, lambda drv: _source(drv)["points"] > 0)
        src = _source(d)
        assert src["kind"] == "events", src
        assert "$system usage records" in src["note"] and "one window every 1 s" in src["note"], src
        assert src["spans"] == ["span-1h"], src                 # minutes of records: 1 h only
        assert src["peak"] > 0 and "stored" in src["label"], src
        assert _asked(watch, f"/b/%24system/usage/{INSTANCE}/cameras/q") or _asked(watch, f"/b/$system/usage/{INSTANCE}/cameras/q")
        assert not _asked(watch, "metrics/history"), "the Overview read metrics/history although $system has the history"
        shot(d, "overview-history-1h")

        # Three days of older windows (10 min each) for the total and the camera bucket.
        now_us = int(time.time() * 1e6)
        start = now_us - 3 * 86400 * 1_000_000
        count = (3 * 86400 - 3600) // 600
        _backfill(srv, auth, f"usage/{INSTANCE}/total", None, start, count, 600, 2500, 1_000_000, 50_000)
        _backfill(srv, auth, f"usage/{INSTANCE}/cameras", "cameras", start, count, 600, 1500, 1_000_000, 50_000)
        go(d, "#/buckets")
        go(d, "#/overview")
        wait(d, lambda drv: _source(drv)["spans"] == ["span-1h", "span-24h", "span-7d"])
        d.find_element(By.NAME, "span-7d").click()
        wait(d, lambda drv: "is read" in _source(drv)["note"] and _source(drv)["points"] > 200)
        src = _source(d)
        assert d.find_element(By.NAME, "span-7d").get_attribute("aria-pressed") == "true"
        assert src["peak"] >= 1400, src                         # the backfilled 1.5 kB/s, three days back
        records = int(src["note"].split("): ")[1].split(" records")[0])
        assert records <= 4 * 1440, src                         # bounded: sampled, not every window
        note = d.find_element(By.ID, "rates-note").text
        assert note.startswith(time.strftime("%Y-%m-%d", time.gmtime(start / 1e6 - 1))), note
        shot(d, "overview-history-7d")
        for width in (360, 390):
            emulate(d, width, 800)
            d.execute_script("window.scrollTo(0, 0)")
            wait(d, lambda drv: drv.execute_script("return window.innerWidth") == width)
            assert overflow(d, width) == []
            if width == 390:
                assert axe(d) == []
                shot(d, "overview-history-7d-390")
        emulate(d, *DESKTOP)

        # A token that may read metrics and the buckets, but not $system: the in-memory samples.
        viewer = requests.post(f"{srv.api}/tokens/viewer", headers=auth, timeout=5, json={
            "permissions": {"full_access": False, "read": ["cameras", "sensors", "$metrics"]}}).json()["value"]
        sign_in(d, srv, viewer)
        go(d, "#/overview")
        wait(d, lambda drv: _source(drv)["points"] > 0)
        src = _source(d)
        assert src["kind"] == "metrics" and "cannot read $system" in src["note"], src
        assert src["spans"] == ["span-15m", "span-24h"], src
        assert _asked(watch, "metrics/history")
        watch.check()
    except BaseException:
        dump(d, watch, srv, "overview-history-failure")
        raise


def test_overview_says_when_events_are_off(browser, make_server):
    srv = make_server({"RS_SYSTEM_EVENTS_ENABLED": "false", "EDGE_METRICS_SAMPLE_S": "0.5"}, auth=token_auth(INIT))
    auth = {"Authorization": f"Bearer {INIT}"}
    assert requests.post(f"{srv.api}/b/line", headers=auth, timeout=5).status_code == 200
    assert requests.get(srv.url + "/ui/features.json", timeout=5).json()["system_events"] is False
    d = browser
    watch = Watch(d, srv.url)
    try:
        sign_in(d, srv, INIT)
        go(d, "#/overview")
        wait(d, lambda drv: "switched off" in _source(drv)["note"])
        assert _source(d)["kind"] == "metrics"
        watch.check()
    except BaseException:
        dump(d, watch, srv)
        raise


_BINS_JS = """
const done = arguments[arguments.length - 1];
import('./js/usage-history.js').then(({ binUsage }) => {
  const S = 1e6, out = {};
  const total = [], bucket = [];
  for (let i = 1; i <= 10; i++) total.push({timestamp: i * 60 * S, duration: 60, write_bytes: 6000, read_bytes: 600, storage_bytes: 100 * i});
  bucket.push({timestamp: 3 * 60 * S, duration: 60, write_bytes: 6000, storage_bytes: 300});
  bucket.push({timestamp: 4 * 60 * S, duration: 60, write_bytes: 12000, storage_bytes: 400});
  const t = binUsage(total, 0, 600 * S, 10, 0);
  const b = binUsage(bucket, 0, 600 * S, 10, 0, t);
  out.total = t.write; out.read = t.read; out.totalStored = t.stored;
  out.bucket = b.write; out.bucketStored = b.stored;
  out.coarse = binUsage(bucket, 0, 600 * S, 5, 0, binUsage(total, 0, 600 * S, 5, 0)).write;
  // the server was down in the second half: gaps, not zeros
  out.down = binUsage(total.slice(0, 5), 0, 600 * S, 10, 0).write;
  // sampled: 1 s windows at 100 B/s, one kept every 10 s, held over the skipped ones
  const kept = [];
  for (let i = 0; i < 100; i += 10) kept.push({timestamp: (i + 1) * S, duration: 1, write_bytes: 100, storage_bytes: 5});
  out.sampled = binUsage(kept, 0, 100 * S, 5, 10 * S).write;
  out.idle = binUsage([], 0, 600 * S, 5, 0, binUsage(total, 0, 600 * S, 5, 0), 777).stored;
  done(out);
}).catch((e) => done({error: String(e)}));
"""


def test_usage_aggregation_in_the_page(browser, make_server):
    srv = make_server({}, auth=token_auth(INIT))
    d = browser
    d.get(srv.url + "/ui/")
    got = d.execute_async_script(_BINS_JS)
    assert "error" not in got, got
    assert got["total"] == [100] * 10 and got["read"] == [10] * 10
    assert got["totalStored"] == [100 * i for i in range(1, 11)]
    assert got["bucket"] == [0, 0, 100, 200, 0, 0, 0, 0, 0, 0]           # idle windows are 0, not gaps
    assert got["bucketStored"] == [None, None, 300] + [400] * 7             # unchanged while idle
    assert got["coarse"] == [0, 150, 0, 0, 0]
    assert got["down"] == [100] * 5 + [None] * 5
    assert got["sampled"] == pytest.approx([100] * 5)
    assert got["idle"] == [777] * 5
