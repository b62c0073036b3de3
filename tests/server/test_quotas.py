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
