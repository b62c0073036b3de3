"""Entry attachments (``$meta`` entries, spec §12) over raw HTTP: the write rules, upsert by key,
tombstones by label update, refused direct deletes, in single-record, v1 and v2 writes.

Every write (single-record, batched, tus) goes through ``services.attachments.before_write``, called
by ``StorageService.write_record`` and the batch writer.
"""

from __future__ import annotations

import json

import pytest
import requests

TIMEOUT = 10
NO_KEY = "System entry '{e}' records must contain label 'key'"
NO_REMOVE = ("System entry '{e}' does not support writing records with label 'remove=true'; "
             "use record update")
NO_DELETE = "Can't delete records from system entry '{e}'; use label update with remove=true"


@pytest.fixture
def bucket(server, bucket_name):
    r = requests.post(f"{server.api}/b/{bucket_name}", timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    return bucket_name


def io_write(server, bucket, entries, records, start=0):
    """records: [(entry index, ts, body, labels dict)] in body order."""
    headers = {"x-reduct-entries": ",".join(e.replace("/", "%2F") for e in entries),
               "x-reduct-start-ts": str(start)}
    body = b""
    for index, ts, data, labels in records:
        items = ",".join(f"{k}={v}" for k, v in labels.items())
        headers[f"x-reduct-{index}-{ts - start}"] = f"{len(data)},application/json,{items}"
        body += data
    return requests.post(f"{server.api}/io/{bucket}/write", headers=headers, data=body, timeout=TIMEOUT)


def single_write(server, bucket, entry, ts, data, labels):
    headers = {f"x-reduct-label-{k}": v for k, v in labels.items()}
    return requests.post(f"{server.api}/b/{bucket}/{entry}", params={"ts": ts}, headers=headers, data=data,
                         timeout=TIMEOUT)


def get(server, bucket, entry, ts):
    return requests.get(f"{server.api}/b/{bucket}/{entry}", params={"ts": ts}, timeout=TIMEOUT)


def errors_of(r):
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("x-reduct-error-")}


def test_io_write_creates_parent_and_hides_meta(server, bucket):
    doc = json.dumps({"a": 1}).encode()
    r = io_write(server, bucket, ["cam/$meta"], [(0, 1000, doc, {"key": "calib"})])
    assert r.status_code == 200 and errors_of(r) == {}, r.headers
    assert r.headers["x-reduct-entries"] == "cam%2F$meta"
    assert get(server, bucket, "cam/$meta", 1000).content == doc
    info = requests.get(f"{server.api}/b/{bucket}", timeout=TIMEOUT).json()
    names = [e["name"] for e in info["entries"]]
    assert "cam" in names and "cam/$meta" not in names


def test_top_level_meta_entry(server, bucket):
    r = io_write(server, bucket, ["$meta"], [(0, 5, b"{}", {"key": "k"})])
    assert r.status_code == 200 and errors_of(r) == {}
    assert get(server, bucket, "$meta", 5).content == b"{}"


def test_key_required_per_record_in_batches(server, bucket):
    r = io_write(server, bucket, ["e/$meta", "e"], [(0, 1, b"{}", {"other": "x"}), (1, 2, b"ab", {})])
    assert r.status_code == 200
    assert errors_of(r) == {"x-reduct-error-0-1": "422," + NO_KEY.format(e="e/$meta")}
    assert get(server, bucket, "e", 2).content == b"ab"  # the record after the skipped one

    r = requests.post(f"{server.api}/b/{bucket}/v1/$meta/batch", headers={"x-reduct-time-1": "2,,k=v"},
                      data=b"{}", timeout=TIMEOUT)
    assert r.status_code == 200
    assert errors_of(r) == {"x-reduct-error-1": "422," + NO_KEY.format(e="v1/$meta")}


def test_remove_true_refused_on_write(server, bucket):
    r = io_write(server, bucket, ["e/$meta"], [(0, 1, b"{}", {"key": "k", "remove": "true"})])
    assert errors_of(r) == {"x-reduct-error-0-1": "422," + NO_REMOVE.format(e="e/$meta")}
    assert get(server, bucket, "e/$meta", 1).status_code == 404


def test_single_write_rules(server, bucket):
    r = single_write(server, bucket, "s/$meta", 1, b"{}", {})
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == NO_KEY.format(e="s/$meta")
    r = single_write(server, bucket, "s/$meta", 1, b"{}", {"key": "k", "remove": "true"})
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == NO_REMOVE.format(e="s/$meta")
    assert single_write(server, bucket, "s/$meta", 1000, b"1", {"key": "k"}).status_code == 200
    assert single_write(server, bucket, "s/$meta", 1010, b"2", {"key": "k"}).status_code == 200
    assert get(server, bucket, "s/$meta", 1000).status_code == 404  # upsert by key


def test_upsert_by_key(server, bucket):
    # integration test_meta_entry_upsert_by_key: the second write at 1010 makes 1000 disappear
    assert io_write(server, bucket, ["u/$meta"], [(0, 1000, b"1", {"key": "k"}), (0, 1001, b"x", {"key": "$other"})]
                    ).status_code == 200
    r = io_write(server, bucket, ["u/$meta"], [(0, 1010, b"2", {"key": "k"})])
    assert r.status_code == 200 and errors_of(r) == {}
    assert get(server, bucket, "u/$meta", 1000).status_code == 404
    assert get(server, bucket, "u/$meta", 1010).content == b"2"
    assert get(server, bucket, "u/$meta", 1001).content == b"x"  # other keys stay ($ literally)
    # the same timestamp may be reused by the replacing record
    r = io_write(server, bucket, ["u/$meta"], [(0, 1010, b"3", {"key": "k"})])
    assert r.status_code == 200 and errors_of(r) == {}
    assert get(server, bucket, "u/$meta", 1010).content == b"3"


def test_same_key_twice_in_one_batch_keeps_the_later(server, bucket):
    r = io_write(server, bucket, ["t/$meta"], [(0, 1, b"first", {"key": "k"}), (0, 2, b"second", {"key": "k"})])
    assert r.status_code == 200 and errors_of(r) == {}
    assert get(server, bucket, "t/$meta", 1).status_code == 404
    assert get(server, bucket, "t/$meta", 2).content == b"second"


def test_tombstone_by_update_and_direct_get_still_returns_it(server, bucket):
    assert io_write(server, bucket, ["r/$meta"], [(0, 1, b"{}", {"key": "k"})]).status_code == 200
    r = requests.patch(f"{server.api}/io/{bucket}/update", timeout=TIMEOUT, headers={
        "x-reduct-entries": "r%2F$meta", "x-reduct-start-ts": "1", "x-reduct-0-0": "0,,key=k,remove=true"})
    assert r.status_code == 200 and errors_of(r) == {}
    r = get(server, bucket, "r/$meta", 1)
    assert r.status_code == 200 and r.headers["x-reduct-label-remove"] == "true"


def test_direct_deletes_refused(server, bucket):
    assert io_write(server, bucket, ["d/$meta"], [(0, 1, b"{}", {"key": "k"})]).status_code == 200
    r = requests.delete(f"{server.api}/b/{bucket}/d/$meta", params={"ts": 1}, timeout=TIMEOUT)
    assert r.status_code == 422 and r.headers["x-reduct-error"] == NO_DELETE.format(e="d/$meta")
    r = requests.delete(f"{server.api}/b/{bucket}/d/$meta/batch", headers={"x-reduct-time-1": ""}, timeout=TIMEOUT)
    assert r.status_code == 422 and r.headers["x-reduct-error"] == NO_DELETE.format(e="d/$meta")
    r = requests.delete(f"{server.api}/io/{bucket}/remove", timeout=TIMEOUT, headers={
        "x-reduct-entries": "d%2F$meta", "x-reduct-start-ts": "1", "x-reduct-0-0": ""})
    assert r.status_code == 422 and r.headers["x-reduct-error"] == NO_DELETE.format(e="d/$meta")
    assert get(server, bucket, "d/$meta", 1).status_code == 200
