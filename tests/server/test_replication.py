"""Replication between two real servers on loopback (spec §13): source -> destination (another edge)."""

from __future__ import annotations

import gzip
import os
import time

import pytest
import requests
from tests.helpers import NO_AUTH

pytestmark = pytest.mark.timeout(180)


def wait_until(cond, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def create(src, name, dst, **settings):
    doc = {"src_bucket": "src", "dst_bucket": "dst", "dst_host": dst.url, **settings}
    r = requests.post(f"{src.api}/replications/{name}", json=doc)
    assert r.status_code == 200, r.text


def detail(src, name):
    return requests.get(f"{src.api}/replications/{name}").json()


def dst_count(dst, entry, bucket="dst"):
    r = requests.get(f"{dst.api}/b/{bucket}")
    if r.status_code != 200:
        return 0
    return sum(e["record_count"] for e in r.json()["entries"] if e["name"] == entry)


def write(src, entry, ts, data=b"x" * 10, labels=None, bucket="src"):
    headers = {f"x-reduct-label-{k}": v for k, v in (labels or {}).items()}
    r = requests.post(f"{src.api}/b/{bucket}/{entry}?ts={ts}", data=data, headers=headers)
    assert r.status_code == 200, r.text


@pytest.fixture
def pair(make_server):
    dst = make_server(auth=NO_AUTH)
    src = make_server(auth=NO_AUTH)
    requests.post(f"{src.api}/b/src").raise_for_status()
    return src, dst


def test_records_batches_labels_and_big_blobs_arrive(pair):
    src, dst = pair
    create(src, "r", dst)
    d = detail(src, "r")
    assert d["info"] == {"name": "r", "mode": "enabled", "is_active": True, "is_provisioned": False,
                         "pending_records": 0}
    assert d["diagnostics"] == {"hourly": {"ok": 0, "errored": 0, "errors": {}}}
    assert d["settings"]["dst_token"] is None and d["settings"]["dst_prefix"] == ""
    write(src, "single", 1, b"hello", {"a": "1"})
    batch_headers = {f"x-reduct-time-{ts}": f"3,text/plain,n={ts}" for ts in range(100, 300)}
    r = requests.post(f"{src.api}/b/src/many/batch", data=b"abc" * 200, headers=batch_headers)
    assert r.status_code == 200
    big = os.urandom(20 * 1024 * 1024)
    write(src, "big", 5, big)
    r = requests.patch(f"{src.api}/b/src/single?ts=1", headers={"x-reduct-label-a": "2", "x-reduct-label-b": "x"})
    assert r.status_code == 200
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 60, "pending 0")
    assert dst_count(dst, "many") == 200
    r = requests.get(f"{dst.api}/b/dst/single?ts=1")
    assert r.content == b"hello" and r.headers["x-reduct-label-a"] == "2" and r.headers["x-reduct-label-b"] == "x"
    r = requests.get(f"{dst.api}/b/dst/many?ts=150")
    assert r.content == b"abc" and r.headers["content-type"] == "text/plain" and r.headers["x-reduct-label-n"] == "150"
    r = requests.get(f"{dst.api}/b/dst/big?ts=5")
    assert r.content == big
    assert detail(src, "r")["diagnostics"]["hourly"]["ok"] == 203


def test_destination_down_then_up_receives_everything(pair):
    src, dst = pair
    create(src, "r", dst)
    dst.stop()
    for ts in range(1, 301):
        write(src, "e", ts)
    wait_until(lambda: not detail(src, "r")["info"]["is_active"], 20, "inactive")
    assert detail(src, "r")["info"]["pending_records"] == 300
    time.sleep(1)
    dst.start()
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 60, "caught up")
    assert dst_count(dst, "e") == 300
    assert detail(src, "r")["info"]["is_active"]


def test_catch_up_in_rounds_keeps_updates_after_their_writes(pair):
    """The backlog goes out several batches at a time: interleaved entries, label updates of
    records written earlier in the backlog, all must arrive, the updates applied."""
    src, dst = pair
    create(src, "r", dst)
    dst.stop()
    updated = set()
    for ts in range(1, 401):
        write(src, "a" if ts % 3 else "b", ts, labels={"v": "0"})
        if ts % 50 == 0:  # updates of records written before, in the middle of the writes
            for t in range(ts - 49, ts + 1, 7):
                updated.add(t)
                r = requests.patch(f"{src.api}/b/src/{'a' if t % 3 else 'b'}?ts={t}",
                                   headers={"x-reduct-label-v": f"u{t}"}, timeout=10)
                assert r.status_code == 200
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] > 400, 20, "backlog")
    dst.start()
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 120, "caught up")
    assert dst_count(dst, "a") + dst_count(dst, "b") == 400
    for t in range(1, 401):
        r = requests.get(f"{dst.api}/b/dst/{'a' if t % 3 else 'b'}?ts={t}", timeout=10)
        want = f"u{t}" if t in updated else "0"
        assert r.status_code == 200 and r.headers["x-reduct-label-v"] == want, (t, r.headers)


def test_source_sigkill_loses_no_acknowledged_event(pair):
    src, dst = pair
    create(src, "r", dst)
    dst.stop()   # everything stays in the log while we kill the source
    acked = 0
    for ts in range(1, 201):
        write(src, "e", ts)
        acked += 1
    src.kill()
    dst.start()
    src.start()
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 60, "caught up after restart")
    assert dst_count(dst, "e") == acked


def test_sigkill_during_sending_duplicates_are_harmless(pair):
    src, dst = pair
    create(src, "r", dst)
    for ts in range(1, 2001):
        write(src, "e", ts, b"y" * 1000) if ts % 200 == 0 else None
    headers = {f"x-reduct-time-{ts}": "1000," for ts in range(10_000, 10_080)}
    for i in range(20):
        h = {f"x-reduct-time-{ts + i * 100}": v for ts_, v in headers.items() for ts in [int(ts_.rsplit('-', 1)[1])]}
        requests.post(f"{src.api}/b/src/e/batch", data=b"z" * 80_000, headers=h).raise_for_status()
    src.kill()   # probably mid-way through sending
    src.start()
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 60, "caught up")
    assert dst_count(dst, "e") == 10 + 20 * 80
    assert detail(src, "r")["diagnostics"]["hourly"]["errored"] == 0


def test_paused_queues_and_disabled_ignores(pair):
    src, dst = pair
    create(src, "r", dst, mode="paused")
    write(src, "e", 1)
    write(src, "e", 2)
    time.sleep(0.5)
    assert detail(src, "r")["info"]["pending_records"] == 2 and dst_count(dst, "e") == 0
    requests.patch(f"{src.api}/replications/r/mode", json={"mode": "disabled"}).raise_for_status()
    write(src, "e", 3)
    assert detail(src, "r")["info"]["pending_records"] == 2
    assert detail(src, "r")["info"]["is_active"] is False
    requests.patch(f"{src.api}/replications/r/mode", json={"mode": "enabled"}).raise_for_status()
    wait_until(lambda: dst_count(dst, "e") == 2, 20, "two records")
    write(src, "e", 4)
    wait_until(lambda: dst_count(dst, "e") == 3, 20, "third record")
    assert requests.get(f"{dst.api}/b/dst/e?ts=3").status_code == 404


def test_when_entries_and_prefix_filter(pair):
    src, dst = pair
    create(src, "r", dst, entries=["cam-*"], when={"&keep": {"$eq": 1}}, dst_prefix="/site/a/")
    write(src, "cam-1", 1, labels={"keep": "1"})
    write(src, "cam-1", 2, labels={"keep": "0"})
    write(src, "cam-1", 3)   # no label: the condition cannot match
    write(src, "other", 4, labels={"keep": "1"})
    write(src, "cam-2", 5, labels={"keep": "1"})
    assert detail(src, "r")["info"]["pending_records"] <= 2
    wait_until(lambda: dst_count(dst, "site/a/cam-2") == 1, 20, "cam-2")
    assert dst_count(dst, "site/a/cam-1") == 1
    assert requests.get(f"{dst.api}/b/dst/site/a/cam-1?ts=1").status_code == 200
    assert dst_count(dst, "other") == 0 and dst_count(dst, "site/a/other") == 0


def test_gzip_and_zstd_compression(pair):
    src, dst = pair
    create(src, "g", dst, compression="gzip", entries=["g"])
    create(src, "z", dst, compression="zstd", entries=["z"], dst_bucket="dstz")
    data = b"compress me " * 1000
    for ts in range(1, 51):
        write(src, "g", ts, data)
        write(src, "z", ts, data)
    wait_until(lambda: dst_count(dst, "g") == 50 and dst_count(dst, "z", "dstz") == 50, 30, "both")
    assert requests.get(f"{dst.api}/b/dst/g?ts=7").content == data
    assert requests.get(f"{dst.api}/b/dstz/z?ts=7").content == data


def test_destination_accepts_gzip_body_without_length(server, bucket_name):
    requests.post(f"{server.api}/b/{bucket_name}").raise_for_status()
    body = gzip.compress(b"aaaa" + b"bb")

    def chunks():
        yield body[:5]
        yield body[5:]

    r = requests.post(f"{server.api}/b/{bucket_name}/e/batch", data=chunks(),
                      headers={"content-encoding": "gzip", "x-reduct-time-1": "4,", "x-reduct-time-2": "2,"})
    assert r.status_code == 200, r.text
    assert requests.get(f"{server.api}/b/{bucket_name}/e?ts=1").content == b"aaaa"
    assert requests.get(f"{server.api}/b/{bucket_name}/e?ts=2").content == b"bb"


def test_api_errors(pair):
    src, dst = pair
    api = src.api
    create(src, "r", dst)
    r = requests.post(f"{api}/replications/r", json={"src_bucket": "src", "dst_bucket": "d", "dst_host": dst.url})
    assert (r.status_code, r.headers["x-reduct-error"]) == (409, "Replication 'r' already exists")
    r = requests.post(f"{api}/replications/x", json={"src_bucket": "nope", "dst_bucket": "d", "dst_host": dst.url})
    assert (r.status_code, r.headers["x-reduct-error"]) == (404, "Source bucket 'nope' for replication 'x' does not exist")
    r = requests.post(f"{api}/replications/x", json={"src_bucket": "src", "dst_bucket": "d", "dst_host": "not a url"})
    assert (r.status_code, r.headers["x-reduct-error"]) == (422, "Invalid destination host 'not a url'")
    r = requests.post(f"{api}/replications/x", json={"src_bucket": "src", "dst_bucket": "src", "dst_host": src.url})
    assert (r.status_code, r.headers["x-reduct-error"]) == (422, "Source and destination buckets must be different")
    r = requests.post(f"{api}/replications/x", json={"src_bucket": "src", "dst_bucket": "d", "dst_host": dst.url,
                                                      "when": {"$bad": 1}})
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid replication condition: ")
    r = requests.post(f"{api}/replications/x", data=b"{")
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid JSON: ")
    for method in ("GET", "DELETE", "PUT"):
        r = requests.request(method, f"{api}/replications/nope", json={})
        assert (r.status_code, r.headers["x-reduct-error"]) == (404, "Replication 'nope' does not exist")
    r = requests.patch(f"{api}/replications/nope/mode", json={"mode": "paused"})
    assert r.status_code == 404
    assert [x["name"] for x in requests.get(f"{api}/replications").json()["replications"]] == ["r"]
    r = requests.put(f"{api}/replications/r", json={"src_bucket": "src", "dst_bucket": "d2", "dst_host": dst.url,
                                                     "dst_token": None})
    assert r.status_code == 200
    assert detail(src, "r")["settings"]["dst_bucket"] == "d2"
    assert requests.delete(f"{api}/replications/r").status_code == 200
    assert requests.get(f"{api}/replications/r").status_code == 404


def test_provisioned_replication(make_server):
    dst = make_server(auth=NO_AUTH)
    src = make_server({"RS_BUCKET_A_NAME": "src", "RS_REPLICATION_X_NAME": "prov",
                       "RS_REPLICATION_X_SRC_BUCKET": "src", "RS_REPLICATION_X_DST_BUCKET": "dst",
                       "RS_REPLICATION_X_DST_HOST": dst.url, "RS_REPLICATION_X_INCLUDE_keep": "yes"}, auth=NO_AUTH)
    info = requests.get(f"{src.api}/replications/prov").json()["info"]
    assert info["is_provisioned"] is True
    r = requests.delete(f"{src.api}/replications/prov")
    assert (r.status_code, r.headers["x-reduct-error"]) == (409, "Can't remove provisioned replication 'prov'")
    r = requests.put(f"{src.api}/replications/prov", json={"src_bucket": "src", "dst_bucket": "d", "dst_host": dst.url})
    assert (r.status_code, r.headers["x-reduct-error"]) == (409, "Can't update provisioned replication 'prov'")
    write(src, "e", 1, labels={"keep": "yes"})
    write(src, "e", 2, labels={"keep": "no"})
    wait_until(lambda: dst_count(dst, "e") == 1, 20, "one record")


def test_unreachable_destination_is_probed_every_second_and_logged_once(make_server):
    """A destination that takes no connection is tried again within 1 s however long it has been
    down (a connect attempt costs it nothing; a catch-up starts soon after it is back), while
    one that answers with errors still backs off up to 10 s. The retries of one failure are
    logged once at info level, the repeats at debug level."""
    import re

    dst = make_server(auth=NO_AUTH)
    src = make_server({"RS_LOG_LEVEL": "DEBUG"}, auth=NO_AUTH)
    requests.post(f"{src.api}/b/src").raise_for_status()
    create(src, "r", dst)
    dst.stop()
    write(src, "e", 1)
    # Long enough for the doubling backoff (0.2, 0.4, 0.8, 1.6, 3.2 s) to pass 1 s.
    wait_until(lambda: len(re.findall(r"replication 'r': cannot connect.*retrying in", src.log_path.read_text(errors="replace"))) >= 6, 30,
               "six connect retries")
    waits = [float(w) for w in re.findall(r"replication 'r': cannot connect.*retrying in ([0-9.]+) s", src.log_path.read_text(errors="replace"))]
    assert max(waits) <= 1.0 and waits[-1] == 1.0, waits
    levels = re.findall(r" (INFO|DEBUG) +edge\.replication: replication 'r': cannot connect", src.log_path.read_text(errors="replace"))
    assert levels[0] == "INFO" and set(levels[1:]) == {"DEBUG"}, levels
    dst.start()
    wait_until(lambda: detail(src, "r")["info"]["pending_records"] == 0, 30, "caught up")
    assert dst_count(dst, "e") == 1
