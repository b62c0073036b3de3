"""The sharing APIs: timing class of the uniform answer, and attachment upload throughput.

``python bench/sharing.py [--rounds 31] [--mb 64] [--piece-mb 8]`` starts a fresh ``edge serve``
(auth on, fdatasync on, on CPU 0 when ``taskset`` is there) and prints two tables, medians of
the same run:

1. **Timing class** of ``GET /link/<id>`` for an anonymous caller, per kind of unusable link
   (missing, revoked, expired, used up, needs sign-in, password, issuer token deleted), without
   and with a (wrong) password, and the ratio to the missing link of the same column. The
   claim: every row of a column is in one class (ratio ~1); the two columns differ by one scrypt.
2. **Upload throughput**: the same bytes as one ``POST /b/<b>/<e>`` record write, as one
   LiquidFiles upload, and as a LiquidFiles upload in ``--piece-mb`` pieces sent in reverse
   order; MB/s and the ratio to the plain record write (an attachment is staged, then written:
   two fsynced copies).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import EdgeServer, cpu_pinning  # noqa: E402

TOKEN = "bench-sharing-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BASIC = (TOKEN, "x")


def _setup(url: str) -> dict[str, str]:
    api = f"{url}/api/v1"
    requests.post(f"{api}/b/cams", headers=ADMIN, timeout=10)
    for ts in range(1, 8):
        requests.post(f"{api}/b/cams/gate", params={"ts": ts}, data=b"frame", headers=ADMIN, timeout=10)

    def lf(ts: int, **fields: object) -> str:
        r = requests.post(f"{url}/link", json={"link": {"attachment": f"cams/gate/{ts}", **fields}}, auth=BASIC,
                          timeout=10)
        return str(r.json()["link"]["id"])

    out = {"missing": "M" * 22, "revoked": lf(1), "expired": lf(2, expires_at="2001-01-01"),
           "needs sign-in": lf(4, require_authentication=True), "password": lf(5, password="right one")}
    requests.delete(f"{url}/link/{out['revoked']}", auth=BASIC, timeout=10)
    used = requests.post(f"{url}/api/v2/shareable_links", headers={"X-API-KEY": TOKEN}, timeout=10, json={
        "expiry_date": "2099-01-01", "limit": 1,
        "payload": {"asset_id": "cams/gate/3", "media_id": 3, "filename": "u"}}).json()["url"]
    host, port = url.split("//")[1].split(":")
    # Another client address: 127.0.0.2 is a trusted proxy by default (127.0.0.0/8) but sends no
    # Forwarded header, so it is its own client (client_address.resolve_client), not 127.0.0.1.
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
    conn.request("GET", "/api/v2/shareable_links/" + used.rsplit("/", 1)[1])    # used up by another address
    conn.getresponse().read()
    out["used up"] = used.rsplit("/", 1)[1]
    value = requests.post(f"{api}/tokens/doomed", headers=ADMIN, json={"permissions": {"read": ["cams"]}},
                          timeout=10).json()["value"]
    body = {"bucket": "cams", "entry": "gate", "record_entry": "gate", "record_timestamp": 6,
            "query": {"query_type": "QUERY"}, "expire_at": int(time.time()) + 3600}
    out["issuer deleted"] = requests.post(f"{api}/links/x", json=body, timeout=10,
                                          headers={"Authorization": f"Bearer {value}"}).json()["id"]
    requests.delete(f"{api}/tokens/doomed", headers=ADMIN, timeout=10)
    return out


def timing(url: str, rounds: int) -> None:
    links = _setup(url)
    plain: dict[str, list[float]] = {k: [] for k in links}
    hashed: dict[str, list[float]] = {k: [] for k in links}
    session = requests.Session()
    order = list(links.items())
    for _ in range(rounds):                       # interleaved, shuffled: drift hits every row alike
        random.shuffle(order)
        for name, link_id in order:
            for store, auth in ((plain, None), (hashed, ("x", "wrong"))):
                t = time.perf_counter()
                r = session.get(f"{url}/link/{link_id}", auth=auth, timeout=10)
                store[name].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 404, (name, r.status_code)
    p0, h0 = statistics.median(plain["missing"]), statistics.median(hashed["missing"])
    print(f"\nTiming class of GET /link/<id>, anonymous ({rounds} rounds, medians)\n")
    print("| link | no password (ms) | ratio | wrong password (ms) | ratio |\n|---|---|---|---|---|")
    for name in links:
        p, h = statistics.median(plain[name]), statistics.median(hashed[name])
        print(f"| {name} | {p:.2f} | {p / p0:.2f} | {h:.1f} | {h / h0:.2f} |")


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def throughput(url: str, mb: int, piece_mb: int, rounds: int = 3) -> None:
    data = os.urandom(mb * 1_000_000)
    piece = piece_mb * 1_000_000
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)]
    rows: dict[str, list[float]] = {"record write (POST /b/...)": [], "attachment, one piece": [],
                                    f"attachment, {len(pieces)} pieces, reverse order": []}
    s = requests.Session()
    for r in range(rounds):
        t = time.perf_counter()
        assert s.post(f"{url}/api/v1/b/cams/raw", params={"ts": 10_000 + r}, data=data, headers=ADMIN,
                      timeout=600).status_code == 200
        rows["record write (POST /b/...)"].append(_mbps(len(data), time.perf_counter() - t))
        t = time.perf_counter()
        assert "attachment" in s.post(f"{url}/link/attachments/upload", params={"filename": f"one{r}"}, data=data,
                                      auth=BASIC, timeout=600).json()
        rows["attachment, one piece"].append(_mbps(len(data), time.perf_counter() - t))
        t = time.perf_counter()
        for i in reversed(range(len(pieces))):
            out = s.post(f"{url}/link/attachments/upload", data=pieces[i], auth=BASIC, timeout=600,
                         params={"filename": f"many{r}", "chunks": len(pieces), "chunk": i}).json()
        assert "attachment" in out
        rows[f"attachment, {len(pieces)} pieces, reverse order"].append(_mbps(len(data), time.perf_counter() - t))
    base = statistics.median(rows["record write (POST /b/...)"])
    print(f"\nUpload of {mb} MB, fdatasync on ({rounds} rounds, medians)\n")
    print("| upload | MB/s | ratio to a record write |\n|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.0f} | {statistics.median(values) / base:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--piece-mb", type=int, default=8)
    args = ap.parse_args()
    prefix, client_cpu = cpu_pinning()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    os.environ.update({"RS_API_TOKEN": TOKEN, "EDGE_AUTH_MAX_FAILURES": "1000000"})
    with EdgeServer(prefix, "always", None) as srv:
        url = f"http://127.0.0.1:{srv.port}"
        timing(url, args.rounds)
        throughput(url, args.mb, args.piece_mb)


if __name__ == "__main__":
    main()
