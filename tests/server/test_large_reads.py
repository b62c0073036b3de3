"""Large records over real HTTP (issue 8): a 12 MB payload goes out with sendfile while its crc is
checked in a worker thread; it reads back byte-identical through every whole-record path (GET,
batched v1, batched v2 via reduct-py, link download, .tar link), and once a byte in the middle is
damaged on disk no path ever delivers a complete 200 body: the tail is held back and the
connection cut, and the server keeps serving other records."""

from __future__ import annotations

import asyncio
import io
import random
import tarfile
import time

import pytest
import requests

pytest.importorskip("reduct")
from reduct import Client  # noqa: E402
from tests.helpers import NO_AUTH

SIZE = 12 * 1024 * 1024
BIG_TS = 3_000
SMALL = {1_000: b"small-one", 2_000: b"x" * 200_000, 4_000: b"small-four"}


def _payload() -> bytes:
    return random.Random(8).randbytes(SIZE)


def _seed(api: str, bucket: str, big: bytes) -> None:
    # small blocks: the big record's block is sealed (indexed) by the next write, so a restart
    # trusts its index instead of rescanning (and truncating) it
    assert requests.post(f"{api}/b/{bucket}", json={"max_block_size": 1 << 20}).status_code == 200
    for ts, data in sorted([*SMALL.items(), (BIG_TS, big)]):
        r = requests.post(f"{api}/b/{bucket}/big?ts={ts}", data=data,
                          headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.headers


def _v1_all(api: str, bucket: str) -> list[tuple[int, bytes]]:
    """Every record of entry ``big`` through the v1 batched read (GET .../batch?q=)."""
    r = requests.post(f"{api}/b/{bucket}/big/q", json={"query_type": "QUERY"})
    assert r.status_code == 200, r.headers
    qid = r.json()["id"]
    out = []
    while True:
        r = requests.get(f"{api}/b/{bucket}/big/batch?q={qid}")
        if r.status_code == 204:
            return out
        assert r.status_code == 200, r.headers
        assert int(r.headers["content-length"]) == len(r.content)
        sizes = sorted((int(k[len("x-reduct-time-"):]), int(v.split(",")[0]))
                       for k, v in r.headers.items() if k.lower().startswith("x-reduct-time-"))
        pos = 0
        for ts, size in sizes:
            out.append((ts, r.content[pos:pos + size]))
            pos += size
        assert pos == len(r.content)
        if r.headers.get("x-reduct-last") == "true":
            return out


def _v2_all(url: str, bucket: str) -> list[tuple[int, bytes]]:
    async def main():
        async with Client(url) as client:
            b = await client.get_bucket(bucket)
            return [(rec.timestamp, await rec.read_all()) async for rec in b.query("big")]

    return asyncio.run(asyncio.wait_for(main(), 60))


def _link(api: str, bucket: str, name: str, **extra) -> str:
    body = {"bucket": bucket, "entry": "big", "record_entry": "big", "record_timestamp": BIG_TS,
            "query": {"query_type": "QUERY", "entries": ["big"]}, "expire_at": int(time.time()) + 3600}
    body.update(extra)
    r = requests.post(f"{api}/links/{name}", json=body)
    assert r.status_code == 200, r.headers
    return r.json()["link"]


def _corrupt_middle(data_path, payload: bytes) -> None:
    blocks = [p for p in (data_path / "lr").rglob("*.blk") if payload[:64] in p.read_bytes()]
    assert len(blocks) == 1
    raw = bytearray(blocks[0].read_bytes())
    start = raw.find(payload[:64])
    raw[start + SIZE // 2] ^= 0xFF
    blocks[0].write_bytes(bytes(raw))


def _never_complete(url: str, damaged: bytes, **kw) -> None:
    """A GET of ``url`` must not deliver ``damaged`` (or any full-length body) as a good 200."""
    try:
        r = requests.get(url, timeout=30, **kw)
    except requests.exceptions.RequestException:
        return  # cut mid-body: urllib3 sees fewer bytes than Content-Length
    if r.status_code != 200:
        assert r.status_code >= 500
        return
    assert len(r.content) < int(r.headers["content-length"])
    assert damaged not in r.content


@pytest.mark.parametrize("sendfile", ["0", "1"])
def test_large_record_all_paths_then_corruption(make_server, tmp_path, sendfile):
    env = {"EDGE_READ_SENDFILE": sendfile}
    data_path = tmp_path / "data"
    srv = make_server(env, data_path=data_path, auth=NO_AUTH)
    api, bucket = srv.api, "lr"
    big = _payload()
    _seed(api, bucket, big)
    expected = sorted([*SMALL.items(), (BIG_TS, big)])

    r = requests.get(f"{api}/b/{bucket}/big?ts={BIG_TS}")
    assert r.status_code == 200 and r.headers["content-length"] == str(SIZE)
    assert r.content == big
    assert requests.head(f"{api}/b/{bucket}/big?ts={BIG_TS}").headers["content-length"] == str(SIZE)
    r = requests.get(f"{api}/b/{bucket}/big?ts=4000")
    assert r.content == SMALL[4_000]

    assert _v1_all(api, bucket) == expected
    assert _v2_all(srv.url, bucket) == expected

    link = _link(api, bucket, "big.bin")
    r = requests.get(link)
    assert r.status_code == 200 and r.content == big
    r = requests.get(link, headers={"Range": f"bytes={SIZE - 100}-"})
    assert r.status_code == 206 and r.content == big[-100:]
    tar_link = _link(api, bucket, "all.tar", record_entry=None, record_timestamp=None)
    r = requests.get(tar_link)
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert tar.extractfile(f"big/{BIG_TS}.bin").read() == big

    # many concurrent large reads: the verification threads are bounded, every body is whole
    async def many():
        async with Client(srv.url) as client:
            b = await client.get_bucket(bucket)

            async def one():
                async with b.read("big", timestamp=BIG_TS) as rec:
                    return await rec.read_all()

            return await asyncio.gather(*(one() for _ in range(8)))

    assert all(body == big for body in asyncio.run(asyncio.wait_for(many(), 120)))

    old_url = srv.url
    srv.stop()
    _corrupt_middle(data_path, big)
    damaged = bytearray(big)
    damaged[SIZE // 2] ^= 0xFF
    damaged = bytes(damaged)
    srv = make_server(env, data_path=data_path, auth=NO_AUTH)
    api = srv.api

    for _ in range(2):  # the second read finds the pages cached
        _never_complete(f"{api}/b/{bucket}/big?ts={BIG_TS}", damaged)
    _never_complete(link.replace(old_url, srv.url), damaged)      # links carry the old port
    # A Range of the damaged record is refused before any byte: the whole payload is verified.
    r = requests.get(link.replace(old_url, srv.url), headers={"Range": f"bytes={SIZE // 2 - 10}-{SIZE // 2 + 10}"})
    assert r.status_code == 500 and "Record 3000" in r.headers["x-reduct-error"], (r.status_code, r.headers)
    _never_complete(tar_link.replace(old_url, srv.url), damaged)
    with pytest.raises(Exception):
        _v1_all(api, bucket)
    with pytest.raises(Exception):
        _v2_all(srv.url, bucket)

    # the server is up and serves the other records
    for ts, data in SMALL.items():
        r = requests.get(f"{api}/b/{bucket}/big?ts={ts}")
        assert r.status_code == 200 and r.content == data
    assert requests.get(f"{api}/alive").status_code == 200
    log = srv.log_path.read_text(errors="replace")
    assert log.count("edge.errors.CorruptRecordError: Record 3000") == 6, log  # GET x2, links x2, v1, v2


@pytest.mark.parametrize("sendfile", ["0", "1"])
def test_abandoned_large_reads_leak_no_fds(make_server, tmp_path, sendfile):
    """Clients that hang up mid-body (while the prefix is being sent or the check still runs)
    leave no fd behind: the body closes its fd, each verification thread closes its own."""
    import os
    import socket

    srv = make_server({"EDGE_READ_SENDFILE": sendfile}, auth=NO_AUTH)
    big = _payload()
    _seed(srv.api, "lr", big)
    fd_dir = f"/proc/{srv.proc.pid}/fd"
    assert requests.get(f"{srv.api}/b/lr/big?ts={BIG_TS}").content == big  # warm up
    before = len(os.listdir(fd_dir))
    host, port = srv.url.removeprefix("http://").split(":")
    for i in range(10):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(f"GET /api/v1/b/lr/big?ts={BIG_TS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.recv(1 << 16 if i % 2 else 10)
    assert requests.get(f"{srv.api}/b/lr/big?ts={BIG_TS}").content == big
    deadline = time.monotonic() + 10
    while len(os.listdir(fd_dir)) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(fd_dir)) <= before


def test_concurrent_large_reads_do_not_share_buffers(make_server):
    """Large bodies read into pooled, reused buffers: bodies streaming at the same time (slow
    and fast readers, two records, several connections) each get their own bytes."""
    from concurrent.futures import ThreadPoolExecutor

    srv = make_server({"EDGE_READ_SENDFILE": "0"}, auth=NO_AUTH)
    big = _payload()
    other = random.Random(9).randbytes(3 * 1024 * 1024 + 17)
    _seed(srv.api, "lr", big)
    r = requests.post(f"{srv.api}/b/lr/big?ts=5000", data=other,
                      headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200

    def read(i: int) -> bool:
        ts, want = (BIG_TS, big) if i % 2 else (5000, other)
        with requests.get(f"{srv.api}/b/lr/big?ts={ts}", stream=True, timeout=60) as resp:
            got = bytearray()
            for part in resp.iter_content(1 << 16 if i % 3 else 1 << 20):
                got += part
                if i % 3 == 0:
                    time.sleep(0.001)  # a slow reader keeps its body suspended mid-way
        return bytes(got) == want

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(read, range(12)))
