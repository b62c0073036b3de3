"""Batch protocol v2 writes of the io API over raw HTTP (spec §8.1-§8.4): the spec's literal
examples, the echoed headers reduct-py needs and every error text, against a real server.

Reading back uses single-record GETs (io reads belong to the queries room).
"""

from __future__ import annotations

import pytest
import requests

TIMEOUT = 10


@pytest.fixture
def bucket(server, bucket_name):
    r = requests.post(f"{server.api}/b/{bucket_name}", timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    return bucket_name


def io(server, method, bucket, op, headers, body=b""):
    return requests.request(method, f"{server.api}/io/{bucket}/{op}", headers=headers, data=body,
                            timeout=TIMEOUT)


def get(server, bucket, entry, ts):
    return requests.get(f"{server.api}/b/{bucket}/{entry}", params={"ts": ts}, timeout=TIMEOUT)


def labels_of(r):
    return {k[len("x-reduct-label-"):]: v for k, v in r.headers.items() if k.lower().startswith("x-reduct-label-")}


def errors_of(r):
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("x-reduct-error-")}


def test_write_orders_body_by_entry_then_time(server, bucket):
    # integration test_write_batched_orders_by_entry_then_time
    headers = {
        "x-reduct-entries": "x-0,x-1",
        "x-reduct-start-ts": "1000",
        "x-reduct-1-0": "3,text/plain,",
        "x-reduct-0-10": "2,text/plain,",
    }
    r = io(server, "POST", bucket, "write", headers, b"AA" + b"BBB")
    assert r.status_code == 200, r.headers
    assert r.headers["x-reduct-entries"] == "x-0,x-1"
    assert r.headers["x-reduct-start-ts"] == "1000"
    assert errors_of(r) == {}
    assert get(server, bucket, "x-0", 1010).content == b"AA"
    assert get(server, bucket, "x-1", 1000).content == b"BBB"


def test_write_labels_delta_and_indices(server, bucket):
    headers = {
        "x-reduct-entries": "sensor%2Fa,b",
        "x-reduct-start-ts": "100",
        "x-reduct-labels": "unit,place",
        "x-reduct-0-0": "1,text/csv,0=C,1=\"lab, room 2\"",
        "x-reduct-0-1": "1",                     # same content type and labels
        "x-reduct-0-2": "1,,1=,note=x",          # remove place, add a literal name
        "x-reduct-1-5": "2,,k=v",                # first record of b: octet-stream
    }
    r = io(server, "POST", bucket, "write", headers, b"abcDE")
    assert r.status_code == 200 and errors_of(r) == {}
    assert r.headers["x-reduct-entries"] == "sensor%2Fa,b"
    r0, r1, r2 = (get(server, bucket, "sensor/a", ts) for ts in (100, 101, 102))
    assert (r0.content, r1.content, r2.content) == (b"a", b"b", b"c")
    assert r0.headers["content-type"] == r2.headers["content-type"] == "text/csv"
    assert labels_of(r0) == labels_of(r1) == {"unit": "C", "place": "lab, room 2"}
    assert labels_of(r2) == {"unit": "C", "note": "x"}
    rb = get(server, bucket, "b", 105)
    assert (rb.content, rb.headers["content-type"], labels_of(rb)) == (b"DE", "application/octet-stream", {"k": "v"})


def test_per_record_errors_use_index_and_delta(server, bucket):
    headers = {"x-reduct-entries": "e,bad.name", "x-reduct-start-ts": "1000",
               "x-reduct-0-0": "1,,", "x-reduct-0-2": "1", "x-reduct-1-1": "2,,"}
    assert io(server, "POST", bucket, "write", headers, b"ab" + b"cd").status_code == 200
    headers["x-reduct-0-1"] = "1"
    r = io(server, "POST", bucket, "write", headers, b"aXb" + b"cd")
    assert r.status_code == 200
    assert r.headers["x-reduct-start-ts"] == "1000"
    name_error = "422,Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'"
    assert errors_of(r) == {
        "x-reduct-error-0-0": "409,A record with timestamp 1000 already exists",
        "x-reduct-error-0-2": "409,A record with timestamp 1002 already exists",
        "x-reduct-error-1-1": name_error,
    }
    assert get(server, bucket, "e", 1001).content == b"X"


def test_empty_batch_is_a_no_op(server, bucket):
    r = io(server, "POST", bucket, "write", {"x-reduct-entries": "", "x-reduct-start-ts": "0", "content-length": "0"})
    assert r.status_code == 200
    assert r.headers["x-reduct-entries"] == ""
    assert r.headers["x-reduct-start-ts"] == "0"


@pytest.mark.parametrize("headers, message", [
    ({"x-reduct-entries": "e", "x-reduct-0-0": "1,"}, "x-reduct-start-ts header is required"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "abc", "x-reduct-0-0": "1,"}, "Invalid x-reduct-start-ts header"),
    ({"x-reduct-start-ts": "1", "x-reduct-0-0": "1,"}, "x-reduct-entries header is required"),
    ({"x-reduct-entries": "", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,"}, "x-reduct-entries header is required"),
    ({"x-reduct-entries": "a,,b", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,"},
     "x-reduct-entries header must not contain empty entry names"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-time-1000": "1,"},
     "Invalid header 'x-reduct-time-1000': entry index must be a number"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-1-0": "1,"},
     "Invalid header 'x-reduct-1-0': entry index out of range"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1"},
     "Content-type and labels must be provided for the first record of an entry"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "x,"}, "Invalid content length"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-labels": "a", "x-reduct-0-0": "1,,5=x"},
     "Label index '5' is out of range"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,,@a=x"},
     "Label names must not start with '@': reserved for computed labels"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,,novalue"}, "Invalid batched header"),
    ({"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "2,"},
     "content-length header does not match the sum of the content-lengths in the headers"),
    ({"x-reduct-entries": "e%ZZ", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,"},
     "Invalid entry encoding in header name: 'e%ZZ'"),
    ({"x-reduct-entries": "e%FF", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,"},
     "Entry name is not valid UTF-8 in header 'e%FF'"),
])
def test_bad_headers_are_422_and_write_nothing(server, bucket, headers, message):
    r = io(server, "POST", bucket, "write", headers, b"z")
    assert r.status_code == 422, r.headers
    assert r.headers["x-reduct-error"] == message
    assert get(server, bucket, "e", 1).status_code == 404


def test_content_length_required_for_chunked(server, bucket):
    def gen():
        yield b"z"
    r = io(server, "POST", bucket, "write", {"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,"},
           gen())
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == "content-length header is required"


def test_x_reduct_content_length_with_chunked_body(server, bucket):
    def gen():
        yield b"z"
        yield b"y"
    headers = {"x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "1,", "x-reduct-0-1": "1",
               "x-reduct-content-length": "2"}
    r = io(server, "POST", bucket, "write", headers, gen())
    assert r.status_code == 200, r.headers
    assert get(server, bucket, "e", 2).content == b"y"


def test_missing_bucket_is_404(server):
    r = io(server, "POST", "no-such-bucket", "write", {"x-reduct-entries": "e", "x-reduct-start-ts": "1",
                                                      "x-reduct-0-0": "1,"}, b"z")
    assert r.status_code == 404
    assert r.headers["x-reduct-error"] == "Bucket 'no-such-bucket' is not found"


def test_update_accumulates_label_ops(server, bucket):
    # integration example of §8.3
    w = {"x-reduct-entries": "e0,e1", "x-reduct-start-ts": "0",
         "x-reduct-0-0": "1,,a=1,b=2", "x-reduct-0-5": "1", "x-reduct-1-10": "1,,a=1"}
    assert io(server, "POST", bucket, "write", w, b"xyz").status_code == 200
    u = {"x-reduct-entries": "e0,e1", "x-reduct-start-ts": "0", "x-reduct-labels": "a,b",
         "x-reduct-0-0": "0,,0=one,1=,c=3", "x-reduct-0-5": "0", "x-reduct-1-10": "0,,a=two"}
    r = io(server, "PATCH", bucket, "update", u)
    assert r.status_code == 200 and errors_of(r) == {}
    assert r.headers["x-reduct-entries"] == "e0,e1" and r.headers["x-reduct-start-ts"] == "0"
    assert labels_of(get(server, bucket, "e0", 0)) == {"a": "one", "c": "3"}
    assert labels_of(get(server, bucket, "e0", 5)) == {"a": "one", "c": "3"}  # inherited ops
    assert labels_of(get(server, bucket, "e1", 10)) == {"a": "two"}


def test_update_per_record_errors(server, bucket):
    assert io(server, "POST", bucket, "write", {"x-reduct-entries": "e", "x-reduct-start-ts": "1000",
                                                "x-reduct-0-0": "1,"}, b"z").status_code == 200
    u = {"x-reduct-entries": "e,ghost", "x-reduct-start-ts": "1000",
         "x-reduct-0-0": "0,,k=v", "x-reduct-0-2": "0,,k=v", "x-reduct-1-1": "0,,k=v"}
    r = io(server, "PATCH", bucket, "update", u)
    assert r.status_code == 200
    assert errors_of(r) == {
        "x-reduct-error-0-2": f"404,Record 1002 not found in entry {bucket}/e",
        "x-reduct-error-1-1": f"404,Entry 'ghost' not found in bucket '{bucket}'",
    }
    assert labels_of(get(server, bucket, "e", 1000)) == {"k": "v"}


def test_update_missing_bucket_is_404(server):
    r = io(server, "PATCH", "no-such-bucket", "update", {"x-reduct-entries": "e", "x-reduct-start-ts": "1",
                                                        "x-reduct-0-0": "0,,a=b"})
    assert r.status_code == 404


def test_remove(server, bucket):
    w = {"x-reduct-entries": "e0,e1", "x-reduct-start-ts": "1000",
         "x-reduct-0-0": "1,", "x-reduct-1-0": "1,", "x-reduct-1-1": "1"}
    assert io(server, "POST", bucket, "write", w, b"abc").status_code == 200
    r = io(server, "DELETE", bucket, "remove", {
        "x-reduct-entries": "e0,e1,ghost", "x-reduct-start-ts": "1000",
        "x-reduct-0-0": "", "x-reduct-1-1": "", "x-reduct-1-2": "", "x-reduct-2-0": ""})
    assert r.status_code == 200
    assert r.headers["x-reduct-entries"] == "e0,e1,ghost"
    assert errors_of(r) == {
        "x-reduct-error-1-2": f"404,Record 1002 not found in entry {bucket}/e1",
        "x-reduct-error-2-0": f"404,Entry 'ghost' not found in bucket '{bucket}'",
    }
    assert get(server, bucket, "e0", 1000).status_code == 404
    assert get(server, bucket, "e1", 1000).content == b"b"
    assert get(server, bucket, "e1", 1001).status_code == 404


def test_remove_from_meta_entry_is_422(server, bucket):
    r = io(server, "DELETE", bucket, "remove", {"x-reduct-entries": "e,a%2Fx%2Fy%2F$meta", "x-reduct-start-ts": "1",
                                                "x-reduct-0-0": ""})
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == \
        "Can't delete records from system entry 'a/x/y/$meta'; use label update with remove=true"


def test_many_records_one_request(server, bucket):
    n = 80
    headers = {"x-reduct-entries": "many", "x-reduct-start-ts": "1", "x-reduct-0-0": "1024,application/octet-stream,"}
    headers.update({f"x-reduct-0-{i}": "1024" for i in range(1, n)})
    body = b"".join(bytes([i]) * 1024 for i in range(n))
    r = io(server, "POST", bucket, "write", headers, body)
    assert r.status_code == 200 and errors_of(r) == {}
    for i in (0, 41, n - 1):
        assert get(server, bucket, "many", 1 + i).content == bytes([i]) * 1024
