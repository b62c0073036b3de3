"""Quotas over real HTTP: FIFO keeps usage under quota with the newest data, HARD refuses (spec §15.4)."""

from __future__ import annotations

import os

import requests


def test_fifo_writes_three_times_the_quota(server, bucket_name):
    quota = 200_000
    b = f"{server.api}/b/{bucket_name}"
    assert requests.post(b, json={"quota_type": "FIFO", "quota_size": quota, "max_block_size": 20_000}).status_code == 200
    payloads = {}
    written = 0
    ts = 0
    while written < 3 * quota:
        ts += 1
        payloads[ts] = os.urandom(1000 + ts % 500)
        r = requests.post(f"{b}/e?ts={ts}", data=payloads[ts])
        assert r.status_code == 200, r.headers.get("x-reduct-error")
        written += len(payloads[ts])
        size = requests.get(b).json()["info"]["size"]
        assert size <= quota, (ts, size)
    info = requests.get(b).json()["info"]
    assert info["latest_record"] == ts and info["oldest_record"] > 1
    for t in range(info["oldest_record"], ts + 1):
        r = requests.get(f"{b}/e?ts={t}")
        if r.status_code == 200:
            assert r.content == payloads[t]
    assert requests.get(f"{b}/e?ts={ts}").content == payloads[ts]
    assert requests.get(f"{b}/e?ts=1").status_code == 404


def test_hard_quota_refuses_and_keeps_data(server, bucket_name):
    b = f"{server.api}/b/{bucket_name}"
    requests.post(b, json={"quota_type": "HARD", "quota_size": 5000})
    assert requests.post(f"{b}/e?ts=1", data=b"a" * 3000).status_code == 200
    r = requests.post(f"{b}/e?ts=2", data=b"b" * 3000)
    assert r.status_code == 400 and r.headers["x-reduct-error"] == f"Quota of '{bucket_name}' exceeded"
    assert requests.get(f"{b}/e?ts=1").content == b"a" * 3000


def test_record_larger_than_quota_deletes_nothing(server, bucket_name):
    b = f"{server.api}/b/{bucket_name}"
    requests.post(b, json={"quota_type": "FIFO", "quota_size": 10_000})
    assert requests.post(f"{b}/e?ts=1", data=b"a" * 1000).status_code == 200
    r = requests.post(f"{b}/e?ts=2", data=b"b" * 20_000)
    assert r.status_code == 413 and r.headers["x-reduct-error"]
    assert requests.get(f"{b}/e?ts=1").content == b"a" * 1000


def test_a_batch_is_never_answered_for_records_the_quota_already_took(server, bucket_name):
    # Two entries in one batch (v2): the second entry's records need room the first entry's
    # records of the same batch take. FIFO never evicts a record before its write is answered,
    # so those records are refused with the quota error instead, and every record the answer
    # does not list as failed is there, byte for byte (before: answered 200, already evicted).
    b = f"{server.api}/b/{bucket_name}"
    r = requests.post(b, json={"quota_type": "FIFO", "quota_size": 30_000, "max_block_size": 4000})
    assert r.status_code == 200
    headers = {"x-reduct-entries": "a,b", "x-reduct-start-ts": "1000"}
    body = b""
    want = {}
    for k, entry in enumerate(("a", "b")):
        for delta in range(15):
            data = bytes([65 + k]) * 1000 + str(delta).encode()
            headers[f"x-reduct-{k}-{delta}"] = f"{len(data)},application/octet-stream,"
            body += data
            want[(k, delta)] = (entry, data)
    r = requests.post(f"{server.api}/io/{bucket_name}/write", headers=headers, data=body, timeout=10)
    assert r.status_code == 200, r.headers
    failed = {tuple(int(x) for x in k.lower()[len("x-reduct-error-"):].split("-")): v
              for k, v in r.headers.items() if k.lower().startswith("x-reduct-error-")}
    assert failed and all(v.startswith("500,Failed to keep quota") for v in failed.values()), failed
    for (k, delta), (entry, data) in want.items():
        if (k, delta) not in failed:
            got = requests.get(f"{b}/{entry}?ts={1000 + delta}", timeout=10)
            assert got.status_code == 200 and got.content == data, (entry, delta, got.status_code)
