"""Batch protocol v1 over raw HTTP (spec §7.2, §7.4, §7.5): the spec's literal examples and
every error text, against a real server.

Reading back uses single-record GETs (the v1 batched read belongs to the queries room).
"""

from __future__ import annotations

import socket

import pytest
import requests
from tests.helpers import NO_AUTH

TIMEOUT = 10


@pytest.fixture
def bucket(server, bucket_name):
    r = requests.post(f"{server.api}/b/{bucket_name}", timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    return bucket_name


def post_batch(server, bucket, entry, headers, body, **kw):
    return requests.post(f"{server.api}/b/{bucket}/{entry}/batch", headers=headers, data=body,
                         timeout=TIMEOUT, **kw)


def get(server, bucket, entry, ts):
    return requests.get(f"{server.api}/b/{bucket}/{entry}", params={"ts": ts}, timeout=TIMEOUT)


def labels_of(r):
    return {k[len("x-reduct-label-"):]: v for k, v in r.headers.items() if k.lower().startswith("x-reduct-label-")}


def wire_text(value: str) -> str:
    """A response header value as text: requests decodes latin-1; UTF-8 bytes are read back
    (a server that sends the label latin-1 encoded, when it can be, is accepted as well)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def errors_of(r):
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("x-reduct-error-")}


# --- write -------------------------------------------------------------------------------------


def test_write_three_records_ascending_ts_regardless_of_header_order(server, bucket):
    headers = {
        "x-reduct-time-1002": "3,text/plain,x=\"[a,b]\",y=2",
        "x-reduct-time-1000": "5,application/json,k=v",
        "x-reduct-time-1001": "0,",  # empty record, default content type
        "content-type": "application/octet-stream",
    }
    r = post_batch(server, bucket, "e", headers, b"AAAAA" + b"" + b"CCC")
    assert r.status_code == 200, r.headers
    assert errors_of(r) == {}
    assert r.content == b""

    r = get(server, bucket, "e", 1000)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"AAAAA", "application/json")
    assert labels_of(r) == {"k": "v"}
    r = get(server, bucket, "e", 1001)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "application/octet-stream")
    r = get(server, bucket, "e", 1002)
    assert (r.status_code, r.content) == (200, b"CCC")
    assert labels_of(r) == {"x": "[a,b]", "y": "2"}


def test_write_big_records_like_integration_test(server, bucket):
    # integration test_write_batched_records: 3 x 1 MB, header values "1000000,"
    blobs = [bytes([i]) * 1_000_000 for i in (1, 2, 3)]
    headers = {f"x-reduct-time-{ts}": "1000000," for ts in (1, 2, 3)}
    r = post_batch(server, bucket, "big", headers, b"".join(blobs))
    assert r.status_code == 200 and errors_of(r) == {}
    for ts, blob in zip((1, 2, 3), blobs):
        r = get(server, bucket, "big", ts)
        assert r.status_code == 200 and r.content == blob


def test_unicode_and_quoted_labels(server, bucket):
    value = 'température=21,5°C'  # ends up split: the v1 grammar needs quotes for commas
    headers = {"x-reduct-time-7": ('2,text/plain,city=Zürich,note="a, b",odd=' + value).encode("utf-8")}
    r = post_batch(server, bucket, "u", headers, b"ok")
    assert r.status_code == 200 and errors_of(r) == {}
    r = get(server, bucket, "u", 7)
    labels = {k: wire_text(v) for k, v in labels_of(r).items()}
    assert labels["city"] == "Zürich"
    assert labels["note"] == "a, b"
    assert labels["odd"] == "température=21"


def test_duplicate_is_a_per_record_error_and_rest_succeeds(server, bucket):
    r = post_batch(server, bucket, "d", {"x-reduct-time-1": "1,", "x-reduct-time-2": "1,"}, b"ab")
    assert r.status_code == 200
    r = post_batch(server, bucket, "d", {"x-reduct-time-2": "2,", "x-reduct-time-3": "3,"}, b"XXyyy")
    assert r.status_code == 200
    assert errors_of(r) == {"x-reduct-error-2": "409,A record with timestamp 2 already exists"}
    assert get(server, bucket, "d", 2).content == b"b"  # the old one stays
    assert get(server, bucket, "d", 3).content == b"yyy"  # the bytes after the skipped record line up


def test_bad_entry_name_is_per_record(server, bucket):
    r = post_batch(server, bucket, "bad.name", {"x-reduct-time-1": "1,", "x-reduct-time-2": "1,"}, b"ab")
    assert r.status_code == 200
    message = "422,Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'"
    assert errors_of(r) == {"x-reduct-error-1": message, "x-reduct-error-2": message}


def test_nested_entry_creates_parents(server, bucket):
    r = post_batch(server, bucket, "a/b/c", {"x-reduct-time-1": "1,"}, b"z")
    assert r.status_code == 200 and errors_of(r) == {}
    names = [e["name"] for e in requests.get(f"{server.api}/b/{bucket}", timeout=TIMEOUT).json()["entries"]]
    assert {"a", "a/b", "a/b/c"} <= set(names)


@pytest.mark.parametrize("value, message", [
    ("10", "Invalid batched header"),
    ("x,", "Invalid content length"),
    ("-1,", "Invalid content length"),
])
def test_bad_record_header_is_422(server, bucket, value, message):
    r = post_batch(server, bucket, "h", {"x-reduct-time-1": value}, b"0123456789")
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == message
    assert get(server, bucket, "h", 1).status_code == 404


def test_bad_timestamp_is_422(server, bucket):
    r = post_batch(server, bucket, "h", {"x-reduct-time-abc": "1,"}, b"0")
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == "Invalid header 'x-reduct-time-abc': must be an unix timestamp in microseconds"


def test_content_length_mismatch_is_422_and_writes_nothing(server, bucket):
    r = post_batch(server, bucket, "m", {"x-reduct-time-1": "2,", "x-reduct-time-2": "2,"}, b"abcde")
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == \
        "content-length header does not match the sum of the content-lengths in the headers"
    assert get(server, bucket, "m", 1).status_code == 404


def test_missing_bucket_is_404(server):
    r = post_batch(server, "no-such-bucket", "e", {"x-reduct-time-1": "1,"}, b"a")
    assert r.status_code == 404
    assert r.headers["x-reduct-error"] == "Bucket 'no-such-bucket' is not found"


def test_chunked_body_uses_the_sum(server, bucket):
    def gen():
        yield b"ab"
        yield b"cde"
    r = post_batch(server, bucket, "c", {"x-reduct-time-1": "2,", "x-reduct-time-2": "3,"}, gen())
    assert r.status_code == 200, r.headers
    assert get(server, bucket, "c", 2).content == b"cde"


def test_chunked_body_longer_than_records_is_400(server, bucket):
    def gen():
        yield b"abcdef"
    r = post_batch(server, bucket, "c2", {"x-reduct-time-1": "2,", "x-reduct-time-2": "3,"}, gen())
    assert r.status_code == 400
    assert r.headers["x-reduct-error"] == "Content is bigger than in content-length"
    assert get(server, bucket, "c2", 1).status_code == 404


def raw_request(server, head: bytes, body: bytes) -> bytes:
    """Send a head and a (short) body, half-close, and read the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_short_body_is_400_and_nothing_is_acknowledged(server, bucket):
    head = (f"POST /api/v1/b/{bucket}/short/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            "x-reduct-time-1: 3,\r\nx-reduct-time-2: 7,\r\n\r\n").encode()
    answer = raw_request(server, head, b"abc" + b"de")
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"x-reduct-error: Content is shorter than expected: no more data to read" in answer
    # The first record was complete but the batch was not acknowledged: it is not visible.
    assert get(server, bucket, "short", 1).status_code == 404
    assert get(server, bucket, "short", 2).status_code == 404
    # The entry still takes writes at those timestamps.
    r = post_batch(server, bucket, "short", {"x-reduct-time-1": "3,"}, b"new")
    assert r.status_code == 200 and errors_of(r) == {}


def test_long_batch_is_flushed_as_it_arrives_and_a_broken_one_keeps_whole_records_only(server, bucket):
    """A batch of 100 KB records is flushed every MiB while it arrives (the disk starts on it
    before the last byte): every record reads back intact. When such a batch breaks (short
    body), the records flushed before are complete and readable, as ReductStore keeps the
    records of a broken batch it already wrote; the rest is not visible, and nothing is half
    there. Neither was acknowledged."""
    import os

    blobs = [os.urandom(100_000) for _ in range(40)]
    headers = {f"x-reduct-time-{ts}": f"100000,application/x-{ts}" for ts in range(1, 41)}
    r = post_batch(server, bucket, "long", headers, b"".join(blobs))
    assert r.status_code == 200 and errors_of(r) == {}
    for ts, blob in zip(range(1, 41), blobs):
        r = get(server, bucket, "long", ts)
        assert r.status_code == 200 and r.content == blob and r.headers["content-type"] == f"application/x-{ts}"

    lines = "".join(f"x-reduct-time-{ts}: 100000,\r\n" for ts in range(101, 141))
    head = (f"POST /api/v1/b/{bucket}/broken/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n"
            f"{lines}\r\n").encode()
    answer = raw_request(server, head, b"".join(blobs[:25]) + b"x" * 50_000)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    present = [ts for ts in range(101, 141) if get(server, bucket, "broken", ts).status_code == 200]
    assert present == list(range(101, 101 + len(present))) and 10 <= len(present) < 25, present
    for ts in present:
        assert get(server, bucket, "broken", ts).content == blobs[ts - 101]
    # The rest can be written again; the kept ones are duplicates.
    r = post_batch(server, bucket, "broken", {"x-reduct-time-101": "3,", "x-reduct-time-140": "3,"}, b"abcdef")
    assert set(errors_of(r)) == {"x-reduct-error-101"} and get(server, bucket, "broken", 140).content == b"def"


def test_get_on_batch_path_is_not_ours(server, bucket):
    r = requests.get(f"{server.api}/b/{bucket}/e/batch", timeout=TIMEOUT)
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == "'q' parameter is required for batched reads"


def test_quota_is_per_record(make_server, tmp_path):
    srv = make_server(auth=NO_AUTH)
    settings = {"quota_type": "HARD", "quota_size": 1000}
    assert requests.post(f"{srv.api}/b/q", json=settings, timeout=TIMEOUT).status_code == 200
    r = post_batch(srv, "q", "e", {"x-reduct-time-1": "100,", "x-reduct-time-2": "2000,"}, b"a" * 2100)
    assert r.status_code == 200
    errors = errors_of(r)
    assert list(errors) == ["x-reduct-error-2"]
    assert errors["x-reduct-error-2"].startswith("400,Quota of 'q' exceeded") or \
        errors["x-reduct-error-2"].startswith("413,")
    assert get(srv, "q", "e", 1).content == b"a" * 100


# --- update ------------------------------------------------------------------------------------


def test_update_labels(server, bucket):
    r = post_batch(server, bucket, "p", {"x-reduct-time-1": "1,,x=y,a=b", "x-reduct-time-2": "1,,x=y"}, b"12")
    assert r.status_code == 200
    r = requests.patch(f"{server.api}/b/{bucket}/p/batch", timeout=TIMEOUT, headers={
        "x-reduct-time-1": "0,,x=z,a=,1=2",
        "x-reduct-time-3": "0,,x=z",
        "content-length": "0",
    })
    assert r.status_code == 200
    assert errors_of(r) == {"x-reduct-error-3": f"404,Record 3 not found in entry {bucket}/p"}
    assert labels_of(get(server, bucket, "p", 1)) == {"x": "z", "1": "2"}
    assert labels_of(get(server, bucket, "p", 2)) == {"x": "y"}


def test_update_missing_entry_is_404(server, bucket):
    r = requests.patch(f"{server.api}/b/{bucket}/nope/batch", headers={"x-reduct-time-1": "0,,x=z"},
                       timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.headers["x-reduct-error"] == f"Entry 'nope' not found in bucket '{bucket}'"


# --- remove ------------------------------------------------------------------------------------


def test_remove_records(server, bucket):
    r = post_batch(server, bucket, "r", {"x-reduct-time-1000": "1,", "x-reduct-time-1001": "1,"}, b"ab")
    assert r.status_code == 200
    r = requests.delete(f"{server.api}/b/{bucket}/r/batch", timeout=TIMEOUT,
                        headers={"x-reduct-time-1000": "", "x-reduct-time-1002": ""})
    assert r.status_code == 200
    assert errors_of(r) == {"x-reduct-error-1002": f"404,Record 1002 not found in entry {bucket}/r"}
    assert get(server, bucket, "r", 1000).status_code == 404
    assert get(server, bucket, "r", 1001).content == b"b"


def test_remove_missing_entry_is_404(server, bucket):
    r = requests.delete(f"{server.api}/b/{bucket}/nope/batch", headers={"x-reduct-time-1": ""}, timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.headers["x-reduct-error"] == f"Entry 'nope' not found in bucket '{bucket}'"


def test_remove_from_meta_entry_is_422(server, bucket):
    r = requests.delete(f"{server.api}/b/{bucket}/e/$meta/batch", headers={"x-reduct-time-1": ""},
                        timeout=TIMEOUT)
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == \
        "Can't delete records from system entry 'e/$meta'; use label update with remove=true"
