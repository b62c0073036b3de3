"""Queries over real HTTP (spec §6.3, §7.3, §8.5-8.6, §9): creation, reads, TTL, continuous, remove."""

from __future__ import annotations

import threading
import time

import pytest
import requests

EXPIRED = "Query {} not found and it might have expired. Check TTL in your query request."


@pytest.fixture
def api(server, bucket_name):
    url = f"{server.api}/b/{bucket_name}"
    assert requests.post(url).status_code == 200
    return server.api, bucket_name


def write(api, entry, ts, data=b"", labels=None, content_type=None):
    base, bucket = api
    headers = {f"x-reduct-label-{k}": v for k, v in (labels or {}).items()}
    if content_type:
        headers["content-type"] = content_type
    resp = requests.post(f"{base}/b/{bucket}/{entry}?ts={ts}", data=data, headers=headers)
    assert resp.status_code == 200, resp.headers.get("x-reduct-error")


def query(api, entry, body=None, **params):
    base, bucket = api
    if body is None:
        resp = requests.get(f"{base}/b/{bucket}/{entry}/q", params=params)
    else:
        resp = requests.post(f"{base}/b/{bucket}/{entry}/q", json={"query_type": "QUERY", **body})
    assert resp.status_code == 200, resp.headers.get("x-reduct-error")
    return resp.json()["id"]


def io_query(api, body):
    base, bucket = api
    resp = requests.post(f"{base}/io/{bucket}/q", json={"query_type": "QUERY", **body})
    assert resp.status_code == 200, resp.headers.get("x-reduct-error")
    return resp.json()["id"]


def batch(api, entry, qid, method="GET"):
    base, bucket = api
    return requests.request(method, f"{base}/b/{bucket}/{entry}/batch?q={qid}")


def io_read(api, qid, method="GET"):
    base, bucket = api
    return requests.request(method, f"{base}/io/{bucket}/read", headers={"x-reduct-query-id": str(qid)})


def times(resp):
    return sorted(int(k[len("x-reduct-time-"):]) for k in resp.headers if k.lower().startswith("x-reduct-time-"))


def test_read_batched_records_v1_exact_headers(api):
    write(api, "entry", 1000, b"0123456789")
    write(api, "entry", 1100, b"abcdefghij", {"x": "[a,b]"}, "text/plain")
    resp = batch(api, "entry", query(api, "entry", start=0))
    assert resp.status_code == 200
    assert resp.headers["x-reduct-time-1000"] == "10,application/octet-stream"
    assert resp.headers["x-reduct-time-1100"] == '10,text/plain,x="[a,b]"'
    assert resp.headers["content-length"] == "20"
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["x-reduct-last"] == "true"
    assert resp.content == b"0123456789abcdefghij"


def test_head_batch_has_sizes_but_no_body(api):
    write(api, "entry", 1, b"abc")
    write(api, "entry", 2, b"defg")
    resp = batch(api, "entry", query(api, "entry", body={"only_metadata": True}), "HEAD")
    assert resp.status_code == 200
    assert resp.headers["content-length"] == "7" and resp.content == b""
    assert times(resp) == [1, 2]


def test_read_batched_max_header_size(api):
    for i in range(100):
        write(api, "entry", i)
    qid = query(api, "entry", body={})
    first, second = batch(api, "entry", qid), batch(api, "entry", qid)
    assert (len(times(first)), first.headers["x-reduct-last"]) == (85, "false")
    assert (len(times(second)), second.headers["x-reduct-last"]) == (15, "true")
    assert batch(api, "entry", qid).status_code == 204


def test_batched_read_needs_q(api):
    base, bucket = api
    write(api, "entry", 1)
    resp = requests.get(f"{base}/b/{bucket}/entry/batch")
    assert resp.status_code == 422
    assert resp.headers["x-reduct-error"] == "'q' parameter is required for batched reads"
    resp = requests.get(f"{base}/b/{bucket}/entry/batch?q=abc")
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (422, "'query' must be a number")


def test_query_ttl_zero_is_404_at_once(api):
    write(api, "entry", 1)
    qid = query(api, "entry", body={"ttl": 0})
    resp = batch(api, "entry", qid)
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, EXPIRED.format(qid))


def test_single_reads_by_query_then_204_then_expiry(api):
    base, bucket = api
    write(api, "entry", 1000, b"one", {"k": "v"})
    write(api, "entry", 2000, b"two")
    qid = query(api, "entry", ttl=1)
    first = requests.get(f"{base}/b/{bucket}/entry?q={qid}")
    assert (first.status_code, first.content, first.headers["x-reduct-time"]) == (200, b"one", "1000")
    assert first.headers["x-reduct-label-k"] == "v"
    head = requests.head(f"{base}/b/{bucket}/entry?q={qid}")
    assert (head.status_code, head.headers["x-reduct-time"], head.headers["content-length"]) == (200, "2000", "3")
    assert requests.get(f"{base}/b/{bucket}/entry?q={qid}").status_code == 204
    assert requests.get(f"{base}/b/{bucket}/entry?q={qid}").status_code == 204
    time.sleep(1.1)
    resp = requests.get(f"{base}/b/{bucket}/entry?q={qid}")
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, EXPIRED.format(qid))


def test_continuous_batched_query(api):
    write(api, "entry", 1000, b"x")
    qid = query(api, "entry", body={"ttl": 1, "continuous": True})
    first = batch(api, "entry", qid)
    assert (first.status_code, first.headers["x-reduct-last"]) == (200, "true")
    assert batch(api, "entry", qid).status_code == 204
    time.sleep(1.1)
    assert batch(api, "entry", qid).status_code == 404


def test_continuous_query_after_the_only_record(api):
    write(api, "entry", 1000)
    qid = query(api, "entry", body={"start": 2000, "continuous": True})
    assert batch(api, "entry", qid).status_code == 204
    assert batch(api, "entry", qid).status_code == 204


def test_waiting_continuous_read_is_woken_by_a_write(api):
    qid = io_query(api, {"entries": ["live"], "continuous": True, "ttl": 10,
                         "when": {"#record_timeout": 5, "#batch_timeout": 5}})
    result = {}

    def reader():
        started = time.monotonic()
        result["resp"] = io_read(api, qid)
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.3)
    write(api, "live", 5, b"new")
    thread.join(10)
    assert result["resp"].status_code == 200 and result["resp"].content == b"new"
    assert result["elapsed"] < 2.0   # the write woke it; no 5 s timeout, no fixed poll


def test_io_read_v2_order_and_headers(api):
    write(api, "x-0", 1010, b"AA", content_type="text/plain")
    write(api, "x-1", 1000, b"BBB", content_type="text/plain")
    resp = io_read(api, io_query(api, {"entries": ["x-0", "x-1"]}))
    assert resp.status_code == 200
    assert resp.headers["x-reduct-entries"] == "x-1,x-0"
    assert resp.headers["x-reduct-start-ts"] == "1000"
    assert resp.headers["x-reduct-0-0"].startswith("3,text/plain")
    assert resp.headers["x-reduct-1-10"].startswith("2,text/plain")
    assert resp.headers["x-reduct-last"] == "true"
    assert resp.content == b"BBBAA"


def test_io_read_errors(api):
    base, bucket = api
    resp = requests.get(f"{base}/io/{bucket}/read")
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (
        422, "x-reduct-query-id header is required for batched reads")
    resp = requests.get(f"{base}/io/{bucket}/read", headers={"x-reduct-query-id": "x"})
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (422, "Invalid query id")
    resp = requests.get(f"{base}/io/{bucket}/read", headers={"x-reduct-query-id": "999999"})
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, EXPIRED.format(999999))


def test_entry_ids_are_unknown_to_io_read(api):
    write(api, "entry", 1)
    qid = query(api, "entry", body={})
    assert io_read(api, qid).status_code == 404


def test_no_matching_entry_gives_204(api):
    assert io_read(api, io_query(api, {"entries": ["nothing-*"]})).status_code == 204


@pytest.mark.parametrize("params,text", [
    ({"start": "abc"}, "'start' must be an unix timestamp in microseconds"),
    ({"stop": "-5"}, "'stop' must be an unix timestamp in microseconds"),
    ({"ttl": "x"}, "'ttl' must be in seconds as an unsigned integer"),
    ({"continuous": "nope"}, "'continue' must be a bool value"),
    ({"start": "10", "stop": "5"}, "Start time must be before stop time"),
    ({"each_n": "0"}, "'each_n' must be greater than 0"),
])
def test_legacy_query_errors(api, params, text):
    base, bucket = api
    write(api, "entry", 1)
    resp = requests.get(f"{base}/b/{bucket}/entry/q", params=params)
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (422, text)


@pytest.mark.parametrize("body,text", [
    ({"when": {"&a": {"$foo": 1}}}, "Operator '$foo' not supported"),
    ({"when": {"&a": {"$gt": [1]}}}, "Array type is not supported: [1]"),
    ({"start": "yesterday"}, 'Invalid JSON: invalid type: string "yesterday", expected u64'),
    ({"when": {"#batch_size": None}}, "Directive '#batch_size' cannot be null"),
])
def test_bad_query_bodies_are_422(api, body, text):
    base, bucket = api
    write(api, "entry", 1)
    resp = requests.post(f"{base}/b/{bucket}/entry/q", json={"query_type": "QUERY", **body})
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (422, text)


def test_query_on_missing_entry_and_bucket(api, server):
    base, bucket = api
    resp = requests.post(f"{base}/b/{bucket}/nope/q", json={"query_type": "QUERY"})
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, f"Entry 'nope' not found in bucket '{bucket}'")
    resp = requests.post(f"{base}/io/no-such-bucket/q", json={"query_type": "QUERY"})
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, "Bucket 'no-such-bucket' is not found")


def test_strict_query_read_gets_the_evaluation_error(api):
    write(api, "entry", 1, labels={"a": "1"})
    qid = query(api, "entry", body={"strict": True, "when": {"&NOT_EXIST": {"$eq": 2}}})
    resp = batch(api, "entry", qid)
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (404, "Reference 'NOT_EXIST' not found")


def test_when_filters_and_each_n(api):
    for i in range(1, 4):
        write(api, "entry", i, labels={"n": str(i)})
    assert times(batch(api, "entry", query(api, "entry", body={"when": {"&n": {"$gt": 1}}}))) == [2, 3]
    assert times(batch(api, "entry", query(api, "entry", body={"when": {"$each_n": 2}}))) == [2]


def test_unknown_extension(api):
    write(api, "entry", 1)
    base, bucket = api
    resp = requests.post(f"{base}/io/{bucket}/q", json={"query_type": "QUERY", "ext": {"img": {}}})
    assert resp.status_code == 422 and "Unknown extension 'img'" in resp.headers["x-reduct-error"]


def test_remove_queries(api):
    base, bucket = api
    for i in range(10):
        write(api, "entry", i, labels={"odd": str(i % 2)})
    resp = requests.delete(f"{base}/b/{bucket}/entry/q")
    assert (resp.status_code, resp.headers["x-reduct-error"]) == (
        422, "Define at least one query parameter to delete records")
    resp = requests.delete(f"{base}/b/{bucket}/entry/q", params={"start": 0, "stop": 3})
    assert resp.json() == {"removed_records": 3}
    resp = requests.post(f"{base}/b/{bucket}/entry/q",
                         json={"query_type": "REMOVE", "when": {"&odd": {"$eq": 1}}})
    assert resp.json() == {"removed_records": 4}        # 3, 5, 7, 9
    resp = requests.post(f"{base}/io/{bucket}/q", json={"query_type": "REMOVE", "entries": ["entry"], "start": 0})
    assert resp.json() == {"removed_records": 3}        # 4, 6, 8
    assert batch(api, "entry", query(api, "entry", body={})).status_code == 204
