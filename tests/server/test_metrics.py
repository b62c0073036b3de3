"""``GET /metrics``: parsed with prometheus_client's own parser; counters move with writes,
reads and link downloads; access follows EDGE_METRICS_ACCESS."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers import NO_AUTH, token_auth


def scrape(server, headers=None) -> dict[tuple[str, tuple], float]:
    r = requests.get(server.url + "/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, name, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def total(m, name, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def test_counters_move_after_writes_reads_and_link_downloads(server, bucket_name):
    api = server.api
    before = scrape(server)
    assert requests.post(f"{api}/b/{bucket_name}", json={"quota_type": "FIFO", "quota_size": 10_000_000}).status_code == 200
    for i in range(3):
        assert requests.post(f"{api}/b/{bucket_name}/cam?ts={1000 + i}", data=b"x" * 100).status_code == 200
    assert requests.get(f"{api}/b/{bucket_name}/cam?ts=1000").content == b"x" * 100
    link = requests.post(f"{api}/links/a.bin", json={
        "bucket": bucket_name, "entry": "cam", "record_entry": "cam", "record_timestamp": 1001,
        "query": {"query_type": "QUERY"}, "expire_at": int(time.time()) + 3600}).json()["link"]
    assert requests.get(link).status_code == 200
    after = scrape(server)

    assert value(after, "edge_records_written_total") - value(before, "edge_records_written_total") == 3
    assert value(after, "edge_record_bytes_written_total") - value(before, "edge_record_bytes_written_total") == 300
    assert value(after, "edge_records_read_total") - value(before, "edge_records_read_total") == 2
    assert value(after, "edge_record_bytes_read_total") - value(before, "edge_record_bytes_read_total") == 200
    assert value(after, "edge_link_downloads_total") - value(before, "edge_link_downloads_total") == 1
    assert value(after, "edge_fsync_total") > value(before, "edge_fsync_total")
    assert value(after, "edge_fsync_seconds_total") >= value(before, "edge_fsync_seconds_total")

    writes = value(after, "edge_http_requests_total", route="records.write_record", method="POST", status="200")
    assert writes - value(before, "edge_http_requests_total", route="records.write_record", method="POST",
                          status="200") == 3
    assert value(after, "edge_http_request_duration_seconds_count", route="records.write_record") >= 3
    assert value(after, "edge_http_request_duration_seconds_bucket", route="records.write_record", le="+Inf") >= 3
    assert value(after, "edge_http_received_bytes_total", route="records.write_record") >= 300
    assert value(after, "edge_http_sent_bytes_total", route="records.read_record") >= 100

    assert value(after, "edge_bucket_size_bytes", bucket=bucket_name) > 300
    assert value(after, "edge_bucket_quota_bytes", bucket=bucket_name, quota_type="FIFO") == 10_000_000
    assert value(after, "edge_disk_total_bytes") > 0
    assert value(after, "process_resident_memory_bytes") > 0
    assert value(after, "process_open_fds") > 0
    assert total(after, "edge_open_queries") >= 0


def test_error_statuses_are_counted(server):
    before = scrape(server)
    assert requests.get(f"{server.api}/b/no-such-bucket-xyz").status_code == 404
    after = scrape(server)
    key = dict(route="buckets.get_bucket", method="GET", status="404")
    assert value(after, "edge_http_requests_total", **key) - value(before, "edge_http_requests_total", **key) == 1


def test_history_for_the_console(make_server):
    srv = make_server({"EDGE_METRICS_SAMPLE_S": "0.2"}, auth=NO_AUTH)
    requests.post(f"{srv.api}/b/h")
    requests.post(f"{srv.api}/b/h/e?ts=1", data=b"12345")
    time.sleep(0.7)
    doc = requests.get(srv.url + "/metrics/history").json()
    assert doc["interval_s"] == pytest.approx(0.2)
    assert doc["samples"] and {"t", "bytes_written_per_s", "records_read_per_s"} <= set(doc["samples"][-1])


def test_token_access_by_default_when_auth_is_on(make_server):
    srv = make_server(auth=token_auth("secret-init"))
    assert requests.get(srv.url + "/metrics").status_code == 401
    r = requests.post(f"{srv.api}/tokens/reader", json={"permissions": {"full_access": False, "read": ["*"]}},
                      headers={"Authorization": "Bearer secret-init"})
    assert requests.get(srv.url + "/metrics", headers={"Authorization": "Bearer " + r.json()["value"]}).status_code == 403
    scrape(srv, {"Authorization": "Bearer secret-init"})


def test_open_access_setting(make_server):
    srv = make_server({"EDGE_METRICS_ACCESS": "open"}, auth=token_auth("secret-init"))
    scrape(srv)
    assert requests.get(srv.url + "/ui/features.json").json()["metrics_open"] is True


def test_bad_access_setting_stops_start_up(tmp_path):
    from tests.helpers import EdgeProcess

    proc = EdgeProcess(tmp_path / "d", {"EDGE_METRICS_ACCESS": "sometimes"}, auth=NO_AUTH)
    with pytest.raises(RuntimeError, match="EDGE_METRICS_ACCESS"):
        proc.start(timeout_s=10)
