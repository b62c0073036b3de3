"""The pure half of ``$system`` events: entry paths, bodies, audit aggregation and its bound, usage."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from edge.store.bucket import check_entry_name
from edge.sysevents.audit import MAX_PATH, OVERFLOW_PATH, AuditWindow
from edge.sysevents.records import AUDIT, SystemEvent, segment
from edge.sysevents.usage import BucketUsage, UsageWindow


@given(st.text(max_size=300))
def test_any_name_becomes_a_valid_entry_path(name):
    event = SystemEvent(AUDIT, name, "api_call", 200, "m", 1)
    check_entry_name(event.entry(name))            # raises on an invalid name
    assert len(segment(name)) <= 120


def test_segments_keep_readable_names_and_long_ones_stay_distinct():
    assert segment("init-token") == "init-token" and segment("cam.local") == "cam_local"
    assert segment("") == "unknown"
    a, b = segment("x" * 200 + "a"), segment("x" * 200 + "b")
    assert a != b and len(a) == len(b) == 120


def test_body_is_flat_json_and_labels_carry_status_and_level():
    event = SystemEvent("logs", "messages", "log", 200, "disk almost full", 42,
                        {"level": "WARN", "target": "edge.store", "status": "not overridden"}, level="WARN")
    doc = json.loads(event.body("cam-7"))
    assert doc == {"timestamp": 42, "instance": "cam-7", "status": 200, "message": "disk almost full",
                   "type": "log", "level": "WARN", "target": "edge.store"}
    assert event.labels() == {"status": "200", "level": "WARN"}


def test_identical_calls_are_summed_and_the_window_resets():
    w = AuditWindow()
    for _ in range(3):
        w.add("t", "GET", "/api/v1/info", "10.0.0.1", 200, 0.001)
    w.add("t", "GET", "/api/v1/info", "10.0.0.2", 200, 0.002)   # another client: its own record
    w.add("t", "GET", "/api/v1/info", "10.0.0.1", 404, 0.002)   # another status: its own record
    events = w.drain(99)
    assert len(events) == 3 and len(w) == 0
    first = next(e for e in events if e.payload["client_ip"] == "10.0.0.1" and e.status == 200)
    assert first.payload["call_count"] == 3 and abs(first.payload["duration"] - 0.003) < 1e-9
    assert first.ts_us == 99 and first.name == "t" and first.message == "GET /api/v1/info"


def test_a_flood_of_distinct_paths_is_bounded():
    w = AuditWindow(max_keys=10)
    for i in range(10_000):
        w.add("unauthorized", "GET", f"/scan/{i}" + "x" * 2000, f"10.0.{i % 250}.1", 401, 0.0)
    assert len(w) <= 11
    events = w.drain(1)
    overflow = [e for e in events if e.payload["path"] == OVERFLOW_PATH]
    assert len(overflow) == 1 and overflow[0].payload["client_ip"] is None
    assert sum(e.payload["call_count"] for e in events) == 10_000
    assert all(len(e.payload["path"]) <= MAX_PATH for e in events)


def test_usage_totals_and_per_bucket_events_only_for_changed_buckets():
    u = UsageWindow()
    u.wrote("cam", "front", 100)
    u.wrote("cam", "back", 50)
    u.read("cam", ["front"], 2, 300)
    storage = [BucketUsage("cam", 1000, 2, 2, 10), BucketUsage("idle", 5, 1, 1, 1)]
    first = {e.name: e.payload for e in u.drain(1, 60.0, storage)}
    assert set(first) == {"total", "cam", "idle"}        # first window: everything is new
    assert first["cam"]["write_bytes"] == 150 and first["cam"]["records_written"] == 2
    assert first["cam"]["written_entries"] == 2 and first["cam"]["read_entries"] == 1
    assert first["total"]["storage_bytes"] == 1005 and first["total"]["bucket_count"] == 2
    assert first["total"]["record_count"] == 11 and first["total"]["records_read"] == 2
    second = {e.name: e.payload for e in u.drain(2, 60.0, storage)}
    assert set(second) == {"total"} and second["total"]["records_written"] == 0   # nothing changed
    grown = [BucketUsage("cam", 2000, 2, 3, 20), BucketUsage("idle", 5, 1, 1, 1)]
    assert {e.name for e in u.drain(3, 60.0, grown)} == {"total", "cam"}
