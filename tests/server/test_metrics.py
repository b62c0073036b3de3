"""``GET /metrics``: parsed with prometheus_client's own parser; counters move with writes,
reads and link downloads; access follows EDGE_METRICS_ACCESS."""

from __future__ import annotations

import shutil
import subprocess
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


def test_counters_histograms_and_build_info(make_server):
    """Replication-free part of the exposition: build info, fsync and request latency histograms,
    per-bucket write counters, link downloads under their own route, received = what arrived."""
    import socket

    srv = make_server({}, auth=NO_AUTH)
    api = srv.api
    assert requests.post(f"{api}/b/m").status_code == 200
    for i in range(3):
        assert requests.post(f"{api}/b/m/e?ts={10 + i}", data=b"y" * 1000).status_code == 200
    link = requests.post(f"{api}/links/a.bin", json={
        "bucket": "m", "entry": "e", "record_entry": "e", "record_timestamp": 10,
        "query": {"query_type": "QUERY"}, "expire_at": int(time.time()) + 3600}).json()["link"]
    assert requests.get(link).status_code == 200
    lid = requests.get(f"{api}/links").json()["links"][0]["id"]
    assert requests.get(f"{api}/links/{lid}").status_code == 200
    before = scrape(srv)
    # A client that declares 1 MB and sends 10 bytes before giving up: 10 bytes were received.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /api/v1/b/m/e?ts=99 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789")
        time.sleep(0.3)
    time.sleep(0.5)
    m = scrape(srv)

    build = [ls for (n, ls) in m if n == "edge_build_info"]
    assert len(build) == 1 and dict(build[0])["api_version"] == "1.21" and m[("edge_build_info", build[0])] == 1
    assert value(m, "edge_fsync_duration_seconds_count") >= 3
    assert value(m, "edge_fsync_duration_seconds_bucket", le="+Inf") == value(m, "edge_fsync_duration_seconds_count")
    assert value(m, "edge_bucket_records_written_total", bucket="m") == 3
    assert value(m, "edge_bucket_written_bytes_total", bucket="m") == 3000
    assert value(m, "edge_http_request_duration_seconds_count", route="link_download.download") == 1
    assert value(m, "edge_http_requests_total", route="link_download.download", method="GET", status="200") == 1
    assert value(m, "edge_http_requests_total", route="links.show_link_details", method="GET", status="200") == 1
    assert value(m, "edge_http_sent_bytes_total", route="link_download.download") == 1000
    got = value(m, "edge_http_received_bytes_total", route="records.write_record") - \
        value(before, "edge_http_received_bytes_total", route="records.write_record")
    assert got == 10, got


def test_replication_counters_are_totals(make_server):
    """Records replicated and failed are counters since start (rate() works), by status."""
    dest = make_server({}, auth=NO_AUTH)
    src = make_server({}, auth=NO_AUTH)
    assert requests.post(f"{src.api}/b/src").status_code == 200
    assert requests.post(f"{dest.api}/b/dst").status_code == 200
    body = {"src_bucket": "src", "dst_bucket": "dst", "dst_host": dest.url, "entries": []}
    assert requests.post(f"{src.api}/replications/r1", json=body).status_code == 200
    for i in range(4):
        assert requests.post(f"{src.api}/b/src/e?ts={i + 1}", data=b"z").status_code == 200
    deadline = time.time() + 20
    while time.time() < deadline and value(scrape(src), "edge_replication_records_total", replication="r1") < 4:
        time.sleep(0.2)
    m = scrape(src)
    assert value(m, "edge_replication_records_total", replication="r1") == 4
    # the destination bucket goes away: the next records fail with the destination's 404
    assert requests.delete(f"{dest.api}/b/dst").status_code == 200
    assert requests.post(f"{src.api}/b/src/e?ts=10", data=b"z").status_code == 200
    deadline = time.time() + 20
    while time.time() < deadline and total(scrape(src), "edge_replication_errors_total", replication="r1") < 1:
        time.sleep(0.2)
    m = scrape(src)
    errors = {dict(ls)["status"]: v for (n, ls), v in m.items() if n == "edge_replication_errors_total"}
    assert errors and sum(errors.values()) >= 1, errors


def test_scrape_only_token(make_server):
    """A token with read ["$metrics"] scrapes /metrics and reads nothing else; "*" does not grant it."""
    srv = make_server({}, auth=token_auth("secret-init"))
    admin = {"Authorization": "Bearer secret-init"}
    assert requests.post(f"{srv.api}/b/data", headers=admin).status_code == 200

    def token(name, read):
        r = requests.post(f"{srv.api}/tokens/{name}", json={"permissions": {"full_access": False, "read": read}},
                          headers=admin)
        return {"Authorization": "Bearer " + r.json()["value"]}

    prom = token("prometheus", ["$metrics"])
    scrape(srv, prom)
    assert requests.get(srv.url + "/metrics/history", headers=prom).status_code == 200
    assert requests.get(f"{srv.api}/b/data", headers=prom).status_code == 403
    assert requests.get(f"{srv.api}/b/data/e?ts=1", headers=prom).status_code == 403
    everything = token("reader", ["*"])
    r = requests.get(srv.url + "/metrics", headers=everything)
    assert r.status_code == 403 and "$metrics" in r.headers["x-reduct-error"]


def test_history_per_bucket_and_day_span(make_server):
    srv = make_server({"EDGE_METRICS_SAMPLE_S": "0.2"}, auth=NO_AUTH)
    requests.post(f"{srv.api}/b/h1")
    time.sleep(0.3)
    requests.post(f"{srv.api}/b/h1/e?ts=1", data=b"x" * 5000)
    time.sleep(0.6)
    doc = requests.get(srv.url + "/metrics/history").json()
    assert any(s["buckets"].get("h1", {}).get("bytes_written_per_s", 0) > 0 for s in doc["samples"])
    assert doc["samples"][-1]["buckets"]["h1"]["size"] > 5000
    day = requests.get(srv.url + "/metrics/history?span=24h").json()
    assert day["interval_s"] == 60 and isinstance(day["samples"], list)
    r = requests.get(srv.url + "/metrics/history?span=week")
    assert r.status_code == 422 and "span" in r.headers["x-reduct-error"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_metrics(make_server):
    """The whole exposition, with every family present, passes `promtool check metrics`."""
    srv = make_server({}, auth=NO_AUTH)
    requests.post(f"{srv.api}/b/p")
    requests.post(f"{srv.api}/b/p/e?ts=1", data=b"x")
    requests.get(f"{srv.api}/b/p/e?ts=1")
    text = requests.get(srv.url + "/metrics").text
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr
