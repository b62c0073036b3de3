"""Single records over real HTTP: write, read, HEAD, labels, update, remove, errors (spec §6)."""

from __future__ import annotations

import os
import socket

import requests


def _bucket(server, name):
    assert requests.post(f"{server.api}/b/{name}").status_code == 200
    return f"{server.api}/b/{name}"


def test_write_read_head_with_labels(server, bucket_name):
    b = _bucket(server, bucket_name)
    r = requests.post(f"{b}/cam?ts=1000", data=b"payload!", headers={
        "Content-Type": "image/jpeg", "x-reduct-label-Kind": "front", "x-reduct-label-n": "1"})
    assert r.status_code == 200, r.headers.get("x-reduct-error")
    r = requests.get(f"{b}/cam?ts=1000")
    assert r.content == b"payload!"
    assert r.headers["x-reduct-time"] == "1000" and r.headers["x-reduct-entry"] == "cam"
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == "attachment"
    assert r.headers["x-reduct-label-kind"] == "front" and r.headers["x-reduct-label-n"] == "1"
    h = requests.head(f"{b}/cam?ts=1000")
    assert h.status_code == 200 and h.headers["content-length"] == "8" and h.content == b""


def test_latest_and_empty_record(server, bucket_name):
    b = _bucket(server, bucket_name)
    requests.post(f"{b}/e?ts=10", data=b"old")
    requests.post(f"{b}/e?ts=30", data=b"")
    requests.post(f"{b}/e?ts=20", data=b"belated")
    r = requests.get(f"{b}/e")
    assert r.headers["x-reduct-time"] == "30" and r.content == b""
    assert r.headers["content-type"] == "application/octet-stream"
    assert requests.get(f"{b}/e?ts=20").content == b"belated"


def test_exact_sizes_of_spec(server, bucket_name):
    b = _bucket(server, bucket_name)
    requests.post(f"{b}/entry_1?ts=1000000", data=b"x" * 8)
    requests.post(f"{b}/entry_2?ts=2000000", data=b"x" * 11)
    doc = requests.get(b).json()
    sizes = {e["name"]: e["size"] for e in doc["entries"]}
    assert sizes == {"entry_1": 40, "entry_2": 43} and doc["info"]["size"] == 83


def test_duplicate_and_bad_timestamps(server, bucket_name):
    b = _bucket(server, bucket_name)
    assert requests.post(f"{b}/e?ts=5", data=b"a").status_code == 200
    r = requests.post(f"{b}/e?ts=5", data=b"b")
    assert r.status_code == 409 and r.headers["x-reduct-error"] == "A record with timestamp 5 already exists"
    assert requests.get(f"{b}/e?ts=5").content == b"a"
    for bad in ("abc", "-1", "1.5", "99999999999999999999999"):
        r = requests.post(f"{b}/e?ts={bad}", data=b"x")
        assert r.status_code == 422, bad
        assert r.headers["x-reduct-error"] == "'ts' must be an unix timestamp in microseconds"
    r = requests.post(f"{b}/e", data=b"x")
    assert r.status_code == 422 and r.headers["x-reduct-error"] == "'ts' parameter is required"
    r = requests.get(f"{b}/e?ts=xyz")
    assert r.status_code == 422


def test_not_found_texts(server, bucket_name):
    b = _bucket(server, bucket_name)
    r = requests.get(f"{b}/nothing")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == f"Entry 'nothing' not found in bucket '{bucket_name}'"
    requests.post(f"{b}/e?ts=1", data=b"a")
    r = requests.get(f"{b}/e?ts=2")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == f"Record 2 not found in entry {bucket_name}/e"
    r = requests.post(f"{server.api}/b/NOTEXIST/e?ts=1", data=b"a")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == "Bucket 'NOTEXIST' is not found"


def test_update_labels(server, bucket_name):
    b = _bucket(server, bucket_name)
    requests.post(f"{b}/e?ts=1", data=b"a", headers={"x-reduct-label-x": "y", "x-reduct-label-a": "b"})
    r = requests.patch(f"{b}/e?ts=1", headers={"x-reduct-label-x": "z", "x-reduct-label-a": "",
                                               "x-reduct-label-1": "2"})
    assert r.status_code == 200
    h = requests.get(f"{b}/e?ts=1").headers
    assert h["x-reduct-label-x"] == "z" and h["x-reduct-label-1"] == "2" and "x-reduct-label-a" not in h
    r = requests.patch(f"{b}/e?ts=99", headers={"x-reduct-label-x": "z"})
    assert r.status_code == 404 and r.headers["x-reduct-error"] == f"Record 99 not found in entry {bucket_name}/e"


def test_remove_record_and_entry(server, bucket_name):
    b = _bucket(server, bucket_name)
    requests.post(f"{b}/e?ts=1", data=b"a")
    requests.post(f"{b}/e?ts=2", data=b"b")
    assert requests.delete(f"{b}/e?ts=1").status_code == 200
    assert requests.get(f"{b}/e?ts=1").status_code == 404
    r = requests.delete(f"{b}/e?ts=1")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == f"Record 1 not found in entry {bucket_name}/e"
    assert requests.delete(f"{b}/e").status_code == 200
    assert requests.get(f"{b}/e").status_code == 404


def test_hierarchical_entries_and_rename(server, bucket_name):
    b = _bucket(server, bucket_name)
    assert requests.post(f"{b}/a/b/c?ts=1", data=b"deep").status_code == 200
    names = [e["name"] for e in requests.get(b).json()["entries"]]
    assert names == ["a", "a/b", "a/b/c"]
    r = requests.put(f"{b}/a/rename", json={"new_name": "renamed"})
    assert r.status_code == 200, r.headers.get("x-reduct-error")
    assert requests.get(f"{b}/renamed/b/c?ts=1").content == b"deep"
    r = requests.post(f"{b}/bad//name?ts=1", data=b"x")
    assert r.status_code == 422


def test_content_length_errors(server, bucket_name):
    b = _bucket(server, bucket_name)
    host, port = "127.0.0.1", server.port
    path = f"/api/v1/b/{bucket_name}/e?ts=77"
    # Body shorter than declared, then the client closes: nothing is stored, no 500.
    with socket.create_connection((host, port)) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort".encode())
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(65536)
    assert not reply.startswith(b"HTTP/1.1 500")
    assert requests.get(f"{b}/e?ts=77").status_code in (404,)
    # A bad x-reduct-content-length
    r = requests.post(f"{b}/e?ts=78", data=b"abc", headers={"x-reduct-content-length": "abc"})
    assert r.status_code == 422 and r.headers["x-reduct-error"] == "content-length header must be a number"


def test_big_record_with_expect_continue(server, bucket_name):
    b = _bucket(server, bucket_name)
    data = os.urandom(12 * 1024 * 1024 + 17)
    r = requests.post(f"{b}/big?ts=1", data=data, headers={"Expect": "100-continue"})
    assert r.status_code == 200, r.headers.get("x-reduct-error")
    r = requests.get(f"{b}/big?ts=1")
    assert r.headers["content-length"] == str(len(data)) and r.content == data


def test_labels_must_be_utf8(server, bucket_name):
    _bucket(server, bucket_name)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(f"POST /api/v1/b/{bucket_name}/e?ts=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                  "x-reduct-label-bad: ".encode() + b"\xff\xfe" + b"\r\n\r\nx")
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 422")
    assert b"Label values for x-reduct-label-bad must be valid UTF-8 strings" in reply
