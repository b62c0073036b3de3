"""The Entry API's query reads as ReductStore's seed words them (issue 18), over raw HTTP.

With ``q``, ``ts`` is ignored (even a malformed one); a one-record read of a query marks the last
record with ``x-reduct-last: true``; ``GET .../q`` on an interval without records is a 204.
``POST .../q`` keeps ReductStore 1.21's answers.
"""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def entry(server, bucket_name):
    assert requests.post(f"{server.api}/b/{bucket_name}", timeout=10).status_code == 200
    for ts in (10, 20, 30):
        r = requests.post(f"{server.api}/b/{bucket_name}/e", params={"ts": ts}, data=f"r{ts}".encode(), timeout=10)
        assert r.status_code == 200
    return f"{server.api}/b/{bucket_name}/e"


def _open(url: str, **params) -> int:
    r = requests.get(f"{url}/q", params=params, timeout=10)
    assert r.status_code == 200, r.headers
    return r.json()["id"]


def test_q_wins_over_ts_even_a_malformed_one(entry):
    qid = _open(entry, start=20)
    r = requests.get(entry, params={"q": qid, "ts": "not-a-number"}, timeout=10)
    assert r.status_code == 200 and r.content == b"r20"
    r = requests.get(entry, params={"q": qid, "ts": 10}, timeout=10)
    assert r.status_code == 200 and r.content == b"r30"          # the query's next, not ts=10
    assert requests.get(entry, params={"ts": "x"}, timeout=10).status_code == 422   # without q ts still counts
    assert requests.get(entry, params={"q": "x", "ts": 10}, timeout=10).status_code == 422   # bad q: 422


def test_one_record_reads_mark_the_last_record(entry):
    qid = _open(entry)
    seen = []
    for _ in range(3):
        r = requests.get(entry, params={"q": qid}, timeout=10)
        assert r.status_code == 200
        seen.append((r.content, r.headers["x-reduct-last"]))
    assert seen == [(b"r10", "false"), (b"r20", "false"), (b"r30", "true")]
    assert requests.get(entry, params={"q": qid}, timeout=10).status_code == 204
    qid = _open(entry, start=30)
    r = requests.head(entry, params={"q": qid}, timeout=10)
    assert r.status_code == 200 and r.headers["x-reduct-last"] == "true" and r.headers["content-length"] == "3"


def test_legacy_query_on_an_empty_interval_is_204(entry):
    r = requests.get(f"{entry}/q", params={"start": 11, "stop": 20}, timeout=10)
    assert r.status_code == 204 and r.content == b""
    r = requests.get(f"{entry}/q", params={"start": 40}, timeout=10)
    assert r.status_code == 204
    assert requests.get(f"{entry}/q", params={"start": 11, "stop": 21}, timeout=10).status_code == 200
    assert requests.get(f"{entry}/q", params={"start": 40, "continuous": "true"}, timeout=10).status_code == 200
    assert requests.get(f"{entry}/q", params={"start": "x"}, timeout=10).status_code == 422
    assert requests.get(f"{entry}-missing/q", params={"start": 1}, timeout=10).status_code == 404


def test_post_q_keeps_reductstore_1_21(entry):
    r = requests.post(f"{entry}/q", json={"query_type": "QUERY", "start": 11, "stop": 20}, timeout=10)
    assert r.status_code == 200 and isinstance(r.json()["id"], int)           # an id, even for nothing
    assert requests.get(f"{entry}/batch", params={"q": r.json()["id"]}, timeout=10).status_code == 204
    r = requests.post(f"{entry}/q", json={"query_type": "QUERY"}, timeout=10)
    batch = requests.get(f"{entry}/batch", params={"q": r.json()["id"]}, timeout=10)
    assert batch.status_code == 200 and batch.content == b"r10r20r30" and batch.headers["x-reduct-last"] == "true"
