"""Lifecycles (spec §14): exactly the old records go; none in dry_run; API errors."""

from __future__ import annotations

import time

import pytest
import requests
from tests.helpers import NO_AUTH

pytestmark = pytest.mark.timeout(120)

ENV = {"EDGE_LIFECYCLE_MIN_INTERVAL_S": "0.5"}


def now_us() -> int:
    return int(time.time() * 1_000_000)


def seed(srv, bucket):
    requests.post(f"{srv.api}/b/{bucket}").raise_for_status()
    old = [now_us() - (3 * 3600 + i) * 1_000_000 for i in range(5)]   # 3 h ago
    new = [now_us() - i * 1_000_000 for i in range(1, 4)]             # seconds ago
    for e in ("a", "b"):
        for ts in old + new:
            lab = {"x-reduct-label-keep": "1"} if ts == old[0] else {}
            requests.post(f"{srv.api}/b/{bucket}/{e}?ts={ts}", data=b"d", headers=lab).raise_for_status()
    return old, new


def stamps(srv, bucket, entry):
    r = requests.post(f"{srv.api}/b/{bucket}/{entry}/q", json={"query_type": "QUERY"})
    out = []
    while True:
        b = requests.get(f"{srv.api}/b/{bucket}/{entry}/batch?q={r.json()['id']}")
        if b.status_code == 204:
            return sorted(out)
        out += [int(k.rsplit("-", 1)[1]) for k in b.headers if k.lower().startswith("x-reduct-time-")]
        if b.headers.get("x-reduct-last") == "true":
            return sorted(out)


def wait_run(srv, name, runs=1):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        d = requests.get(f"{srv.api}/lifecycles/{name}").json()
        if d["info"]["last_run"] and d["stats"]["runs"] >= runs and not d["info"]["is_running"]:
            return d
        time.sleep(0.05)
    raise AssertionError("lifecycle did not run")


def test_delete_removes_exactly_the_old_records(make_server):
    srv = make_server(ENV, auth=NO_AUTH)
    old, new = seed(srv, "lc")
    r = requests.post(f"{srv.api}/lifecycles/del", json={"type": "delete", "bucket": "lc", "entries": ["a"],
                                                         "older_than": "1h", "interval": "1h", "when": None})
    assert r.status_code == 200, r.text
    d = wait_run(srv, "del")
    assert d["stats"]["last_removed"] == 5
    assert stamps(srv, "lc", "a") == sorted(new)
    assert stamps(srv, "lc", "b") == sorted(old + new)   # not selected


def test_dry_run_removes_nothing_then_when_filters(make_server):
    srv = make_server(ENV, auth=NO_AUTH)
    old, new = seed(srv, "lc")
    doc = {"type": "delete", "bucket": "lc", "older_than": "2h", "mode": "dry_run",
           "when": {"$not": [{"$has": "keep"}]}}
    assert requests.post(f"{srv.api}/lifecycles/dry", json=doc).status_code == 200
    d = wait_run(srv, "dry")
    assert d["stats"]["last_matched"] == 8 and d["stats"]["last_removed"] == 0
    assert stamps(srv, "lc", "a") == sorted(old + new)
    requests.patch(f"{srv.api}/lifecycles/dry/mode", json={"mode": "enabled"}).raise_for_status()
    wait_run(srv, "dry", runs=2)
    assert stamps(srv, "lc", "a") == sorted([old[0]] + new)
    assert stamps(srv, "lc", "b") == sorted([old[0]] + new)


def test_interval_repeats_and_api_errors(make_server):
    srv = make_server(ENV, auth=NO_AUTH)
    requests.post(f"{srv.api}/b/lc").raise_for_status()
    api = srv.api
    doc = {"type": "delete", "bucket": "lc", "older_than": "1h", "interval": "1s"}
    assert requests.post(f"{api}/lifecycles/x", json=doc).status_code == 200
    wait_run(srv, "x", runs=2)
    r = requests.post(f"{api}/lifecycles/x", json=doc)
    assert (r.status_code, r.headers["x-reduct-error"]) == (409, "Lifecycle 'x' already exists")
    r = requests.post(f"{api}/lifecycles/y", json={**doc, "bucket": "nope"})
    assert (r.status_code, r.headers["x-reduct-error"]) == (404, "Bucket 'nope' for lifecycle 'y' does not exist")
    r = requests.post(f"{api}/lifecycles/y", json={**doc, "older_than": "30m"})
    assert r.headers["x-reduct-error"] == "Lifecycle older_than '30m' is shorter than minimum allowed value of 1h"
    r = requests.post(f"{api}/lifecycles/y", json={**doc, "interval": "0s"})
    assert r.headers["x-reduct-error"] == "Lifecycle interval '0s' is shorter than minimum allowed value of 10m"
    r = requests.post(f"{api}/lifecycles/y", json={**doc, "type": "compress", "when": {"&a": {"$eq": 1}}})
    assert r.headers["x-reduct-error"] == "Lifecycle type 'compress' does not support 'when' condition"
    for method in ("GET", "DELETE"):
        r = requests.request(method, f"{api}/lifecycles/nope")
        assert (r.status_code, r.headers["x-reduct-error"]) == (404, "Lifecycle 'nope' does not exist")
    assert requests.delete(f"{api}/lifecycles/x").status_code == 200
    assert requests.get(f"{api}/lifecycles").json() == {"lifecycles": []}


def test_provisioned_lifecycle(make_server):
    srv = make_server({**ENV, "RS_BUCKET_A_NAME": "lc", "RS_LIFECYCLE_L_NAME": "p", "RS_LIFECYCLE_L_BUCKET": "lc",
                       "RS_LIFECYCLE_L_OLDER_THAN": "1d", "RS_LIFECYCLE_L_TYPE": "delete"}, auth=NO_AUTH)
    info = requests.get(f"{srv.api}/lifecycles/p").json()["info"]
    assert info["is_provisioned"] is True and info["type"] == "delete"
    r = requests.delete(f"{srv.api}/lifecycles/p")
    assert (r.status_code, r.headers["x-reduct-error"]) == (409, "Can't remove provisioned lifecycle 'p'")


def test_lifecycle_info_has_type_and_last_run_as_reduct_js_reads_them(make_server):
    """reduct-js's LifecycleInfo.parse reads name, mode, type, last_run (a date or absent),
    is_provisioned, is_running; FullLifecycleInfo reads settings.type too."""
    import datetime

    srv = make_server(ENV, auth=NO_AUTH)
    requests.post(f"{srv.api}/b/lc").raise_for_status()
    doc = {"type": "compress", "bucket": "lc", "older_than": "1h", "interval": "1h", "mode": "disabled"}
    assert requests.post(f"{srv.api}/lifecycles/zip", json=doc).status_code == 200
    [info] = requests.get(f"{srv.api}/lifecycles").json()["lifecycles"]
    assert info == {"name": "zip", "is_provisioned": False, "is_running": False, "type": "compress",
                    "mode": "disabled", "last_run": None}     # never ran: null, as upstream
    assert requests.patch(f"{srv.api}/lifecycles/zip/mode", json={"mode": "enabled"}).status_code == 200
    d = wait_run(srv, "zip")
    assert d["info"]["type"] == d["settings"]["type"] == "compress"
    last_run = d["info"]["last_run"]
    assert last_run.endswith("Z")
    ran = datetime.datetime.fromisoformat(last_run.replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.timezone.utc) - ran).total_seconds()) < 30
    # It is kept across restarts.
    srv.restart()
    assert requests.get(f"{srv.api}/lifecycles").json()["lifecycles"][0]["last_run"] == last_run
