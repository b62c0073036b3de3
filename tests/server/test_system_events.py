"""``$system`` events against a real server (spec: /work/shared/spec/system-events.md, §15.5).

The upstream integration tests (``test__system_bucket_*``) in spirit: the bucket appears lazily
with entries after an authenticated call, is hidden from a read wildcard, 403 for tokens
without exact ``$system`` permission, 200 with it; then audit, usage, lifecycle, replication
and log events read back with reduct-py, durability across ``kill -9``, protection, the
dropped-event counter.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import requests

from tests.helpers import NO_AUTH, ClosedPort, token_auth

reduct = pytest.importorskip("reduct")

INIT = "system-events-init-secret"
FAST = {"EDGE_AUDIT_FLUSH_S": "0.3", "EDGE_USAGE_INTERVAL_S": "1", "RS_INSTANCE_NAME": "cam-7"}
H = {"Authorization": f"Bearer {INIT}"}


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def wait_for(check, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def system_entries(api: str) -> list[str]:
    r = requests.get(f"{api}/b/$system", headers=H, timeout=5)
    return [e["name"] for e in r.json()["entries"]] if r.status_code == 200 else []


def make_token(api: str, name: str, read: list[str]) -> str:
    r = requests.post(f"{api}/tokens/{name}", headers=H, timeout=5,
                      json={"permissions": {"full_access": False, "read": read, "write": []}})
    assert r.status_code == 200, r.text
    return r.json()["value"]


async def read_events(url: str, entry: str, token: str = INIT) -> list[tuple[dict, dict]]:
    """The events of one ``$system`` entry, oldest first ([] while the bucket or entry is not there)."""
    async with reduct.Client(url, api_token=token) as client:
        out = []
        try:
            bucket = await client.get_bucket("$system")
            async for record in bucket.query(entry):
                out.append((json.loads(await record.read_all()), dict(record.labels)))
        except reduct.ReductError as exc:
            if exc.status_code != 404:
                raise
        return out


def test_system_bucket_is_created_lazily_and_guarded_like_upstream(make_server):
    srv = make_server({"EDGE_AUDIT_FLUSH_S": "0.3", "RS_INSTANCE_NAME": "cam-7"}, auth=token_auth(INIT))
    api = srv.api
    assert "$system" not in [b["name"] for b in requests.get(f"{api}/list", headers=H, timeout=5).json()["buckets"]]
    assert requests.post(f"{api}/b/cam", headers=H, timeout=5).status_code == 200   # an audited call
    entries = wait_for(lambda: system_entries(api), 6.0)      # upstream waits about 6 s
    assert "audit/cam-7/init-token" in entries

    nothing = make_token(api, "no-permissions", [])
    wildcard = make_token(api, "reads-everything", ["*"])
    exact = make_token(api, "reads-system", ["$system"])
    for secret, status in ((nothing, 403), (wildcard, 403), (exact, 200)):
        r = requests.get(f"{api}/b/$system", headers={"Authorization": f"Bearer {secret}"}, timeout=5)
        assert r.status_code == status, (secret, r.text)
    assert r.json()["info"]["is_provisioned"] is True
    assert r.json()["settings"]["quota_type"] == "FIFO" and r.json()["settings"]["quota_size"] == 10_000_000_000

    def listed(secret: str) -> list[str]:
        doc = requests.get(f"{api}/list", headers={"Authorization": f"Bearer {secret}"}, timeout=5).json()
        return [b["name"] for b in doc["buckets"]]

    assert "$system" in listed(INIT) and "$system" in listed(exact)
    assert "$system" not in listed(wildcard) and "cam" in listed(wildcard)
    # Provisioned: the API can neither remove, change nor rename it.
    assert requests.delete(f"{api}/b/$system", headers=H, timeout=5).status_code == 409
    assert requests.put(f"{api}/b/$system", headers=H, json={"quota_size": 1}, timeout=5).status_code == 409
    assert requests.put(f"{api}/b/$system/rename", headers=H, json={"new_name": "mine"}, timeout=5).status_code == 409
    assert requests.post(f"{api}/b/$system2", headers=H, timeout=5).status_code == 422   # `$` names are the server's


def test_audit_records_are_aggregated_per_token_and_readable_with_reduct_py(make_server):
    srv = make_server(FAST, auth=token_auth(INIT))
    api = srv.api
    for _ in range(5):
        assert requests.get(f"{api}/info", headers=H, timeout=5).status_code == 200
    for _ in range(3):
        assert requests.get(f"{api}/info", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    assert requests.get(f"{api}/alive", timeout=5).status_code == 200      # never audited

    def info_calls():
        return [body for body, _ in run(read_events(srv.url, "audit/cam-7/init-token")) if body["path"] == "/api/v1/info"]

    calls = wait_for(info_calls)
    assert sum(b["call_count"] for b in calls) == 5 and len(calls) <= 2     # aggregated, not one per call
    body = calls[0]
    assert body["token_name"] == "init-token" and body["method"] == "GET" and body["client_ip"] == "127.0.0.1"
    assert body["type"] == "api_call" and body["instance"] == "cam-7" and body["status"] == 200
    assert 0 <= body["duration"] < 5 and isinstance(body["timestamp"], int)
    failed = wait_for(lambda: run(read_events(srv.url, "audit/cam-7/unauthorized")))
    assert sum(b["call_count"] for b, _ in failed) == 3
    assert {labels["status"] for _, labels in failed} == {"401"}
    assert not any("alive" in name for name in system_entries(api))


def test_usage_statistics_total_and_per_bucket(make_server):
    srv = make_server(FAST, auth=token_auth(INIT))

    async def traffic():
        async with reduct.Client(srv.url, api_token=INIT) as client:
            bucket = await client.create_bucket("line", exist_ok=True)
            for i in range(10):
                await bucket.write("sensor", b"x" * 100, timestamp=1_000_000 + i)
            n = 0
            async for record in bucket.query("sensor"):
                await record.read_all()
                n += 1
            assert n == 10

    run(traffic())

    def line_usage():
        docs = [b for b, _ in run(read_events(srv.url, "usage/cam-7/line"))]
        return [d for d in docs if d["records_written"] or d["records_read"]] if docs else None

    docs = wait_for(line_usage)
    assert sum(d["records_written"] for d in docs) == 10 and sum(d["write_bytes"] for d in docs) == 1000
    assert sum(d["records_read"] for d in docs) == 10 and sum(d["read_bytes"] for d in docs) >= 1000
    last = docs[-1]
    assert last["bucket"] == "line" and last["record_count"] == 10 and last["entry_count"] == 1
    assert last["block_count"] >= 1 and last["storage_bytes"] > 1000 and last["type"] == "usage_stats"
    assert max(d["written_entries"] for d in docs) == 1
    # Once $system exists (the first window's snapshot may precede it), total counts it and "line".
    total = wait_for(lambda: [b for b, _ in run(read_events(srv.url, "usage/cam-7/total")) if b["bucket_count"] >= 2])
    assert total[-1]["bucket"] is None and total[-1]["record_count"] >= 10
    assert all(0.5 < d["duration"] < 30 for d in total)


def test_lifecycle_runs_are_recorded(make_server):
    srv = make_server({**FAST, "EDGE_LIFECYCLE_MIN_INTERVAL_S": "0.5"}, auth=token_auth(INIT))
    api = srv.api
    requests.post(f"{api}/b/old", headers=H, timeout=5).raise_for_status()
    hour_ago = int((time.time() - 7200) * 1_000_000)
    for i in range(3):
        requests.post(f"{api}/b/old/e?ts={hour_ago + i}", data=b"d", headers=H, timeout=5).raise_for_status()
    doc = {"type": "delete", "bucket": "old", "older_than": "1h", "interval": "1h"}
    assert requests.post(f"{api}/lifecycles/tidy", json=doc, headers=H, timeout=5).status_code == 200
    runs = wait_for(lambda: run(read_events(srv.url, "lifecycle/cam-7/tidy")))
    body, labels = runs[0]
    assert body["policy_name"] == "tidy" and body["action_type"] == "delete" and body["bucket"] == "old"
    assert body["processed_records"] == 3 and body["processed_blocks"] == 1 and body["caught_up"] is True
    assert body["last_processed_ts"] == hour_ago + 2 and labels["status"] == "200"


def test_replication_diagnostics_and_log_lines(make_server):
    closed = ClosedPort()                 # a destination that refuses connections (for the whole test)
    dead_port = closed.port
    srv = make_server({**FAST, "RS_SYSTEM_EVENTS_LOG_LEVEL": "INFO"}, auth=token_auth(INIT))
    api = srv.api
    requests.post(f"{api}/b/src", headers=H, timeout=5).raise_for_status()
    doc = {"src_bucket": "src", "dst_bucket": "dst", "dst_host": f"http://127.0.0.1:{dead_port}", "entries": []}
    assert requests.post(f"{api}/replications/ship", json=doc, headers=H, timeout=5).status_code == 200
    requests.post(f"{api}/b/src/e?ts=1", data=b"d", headers=H, timeout=5).raise_for_status()
    logs = wait_for(lambda: [b for b, l in run(read_events(srv.url, "logs/cam-7/messages"))
                             if b["target"] == "edge.replication" and l["level"] == "INFO"], 15)
    assert "ship" in logs[0]["message"] and logs[0]["file"].startswith("edge/") and logs[0]["line"] > 0
    events = wait_for(lambda: run(read_events(srv.url, "replications/cam-7/ship")), 20)
    body, _ = events[-1]
    assert body["is_active"] is False and body["pending_records"] >= 1 and "failing" in body["message"]


def test_events_survive_kill_9(make_server, tmp_path):
    data = tmp_path / "events-data"
    srv = make_server(FAST, data_path=data, auth=token_auth(INIT))
    assert requests.get(f"{srv.api}/me", headers=H, timeout=5).status_code == 200
    before = wait_for(lambda: run(read_events(srv.url, "audit/cam-7/init-token")))
    srv.kill()                                  # SIGKILL: no shutdown flush
    srv2 = make_server(FAST, data_path=data, auth=token_auth(INIT))
    after = run(read_events(srv2.url, "audit/cam-7/init-token"))
    assert after[: len(before)] == before


def test_disabled_writes_nothing_and_quota_is_reapplied(make_server, tmp_path):
    data = tmp_path / "d"
    srv = make_server({**FAST, "RS_SYSTEM_EVENTS_QUOTA_SIZE": "50MB"}, data_path=data, auth=token_auth(INIT))
    requests.get(f"{srv.api}/info", headers=H, timeout=5)
    wait_for(lambda: system_entries(srv.api))
    srv.stop()
    srv = make_server({**FAST, "RS_SYSTEM_EVENTS_QUOTA_SIZE": "20MB"}, data_path=data, auth=token_auth(INIT))
    settings = requests.get(f"{srv.api}/b/$system", headers=H, timeout=5).json()["settings"]
    assert settings["quota_size"] == 20_000_000 and settings["quota_type"] == "FIFO"
    srv.stop()

    off = make_server({**FAST, "RS_SYSTEM_EVENTS_ENABLED": "false"}, auth=token_auth(INIT))
    for _ in range(3):
        requests.get(f"{off.api}/info", headers=H, timeout=5)
    time.sleep(1.0)
    assert requests.get(f"{off.api}/b/$system", headers=H, timeout=5).status_code == 404
    # Audit follows authentication by default: no audit records when it is disabled.
    noauth = make_server(FAST, auth=NO_AUTH)
    requests.post(f"{noauth.api}/b/x", timeout=5)
    time.sleep(1.5)
    names = [e["name"] for e in requests.get(f"{noauth.api}/b/$system", timeout=5).json()["entries"]]
    assert names and not any(n.startswith("audit/") for n in names)           # usage only


def test_a_full_queue_drops_and_counts_but_never_fails_a_request(make_server):
    srv = make_server({**FAST, "EDGE_SYSTEM_EVENTS_QUEUE": "2", "EDGE_AUDIT_FLUSH_S": "3"}, auth=token_auth(INIT))
    for i in range(40):                         # 40 distinct paths: 40 audit events in one flush
        assert requests.head(f"{srv.api}/b/missing-{i}", headers=H, timeout=5).status_code == 404

    def dropped() -> float:
        text = requests.get(f"{srv.url}/metrics", headers=H, timeout=5).text
        line = [x for x in text.splitlines() if x.startswith("edge_system_events_dropped_total")][0]
        return float(line.split()[1])

    assert wait_for(lambda: dropped() >= 30)
    assert requests.get(f"{srv.api}/info", headers=H, timeout=5).status_code == 200


def test_bad_settings_stop_start_up(make_server):
    for env, variable in (({"RS_SYSTEM_EVENTS_LOG_LEVEL": "LOUD"}, "RS_SYSTEM_EVENTS_LOG_LEVEL"),
                          ({"RS_SYSTEM_EVENTS_QUOTA_SIZE": "lots"}, "RS_SYSTEM_EVENTS_QUOTA_SIZE"),
                          ({"RS_AUDIT_ENABLED": "maybe"}, "RS_AUDIT_ENABLED")):
        with pytest.raises(RuntimeError) as info:
            make_server(env, auth=NO_AUTH)
        assert variable in str(info.value)
