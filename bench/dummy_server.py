"""Instant-answer ReductStore dummy for the benchmark's ceilings (raw Trio, no HTTP library).

It answers the calls the benchmark workload makes, from memory and at once, with the same
response shapes a real server gives, so that the same client code can run against it:

- ``POST b/{b}`` (create), ``GET|HEAD b/{b}``, ``GET info``, ``GET alive``: small JSON / empty 200s;
- ``POST b/{b}/{e}/batch``: reads and drops the body, counts the ``x-reduct-time-*`` headers;
- ``PATCH b/{b}/{e}/batch``: 200;
- ``POST io/{b}/q``: a query id, or for a remove query ``{"removed_records": written // 2}``;
- ``GET io/{b}/read``: batch-protocol-v2 batches (max 85 records / 8,000,000 B like edge's defaults)
  of pre-made random payloads until every record written to the bucket was returned once.

The state (records per bucket, open queries) exists only so that the client's own checks (counts,
bytes) pass unchanged. Usage: ``python bench/dummy_server.py --port N`` (prints "ready" once
listening). Not a server for anything but measuring clients.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys

import trio

API = b"x-reduct-api: 1.21\r\n"
MAX_RECORDS = 85
MAX_BYTES = 8_000_000
TS0 = 1_000_000
BLOB = os.urandom(10_000_000)
PATH_RE = re.compile(rb"^/api/v1/(b|io)/([^/?]+)(?:/([^?]*))?")


def head(status: bytes, length: int, extra: bytes = b"", ctype: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\n" + API + b"content-type: " + ctype + b"\r\ncontent-length: "
            + str(length).encode() + b"\r\n" + extra + b"\r\n")


def ok_json(doc: object) -> bytes:
    body = json.dumps(doc).encode()
    return head(b"200 OK", len(body)) + body


class State:
    def __init__(self) -> None:
        self.records: dict[bytes, int] = {}     # bucket -> records written
        self.size: dict[bytes, int] = {}        # bucket -> record size
        self.queries: dict[int, list] = {}      # id -> [bucket, records left, next index]
        self.ids = itertools.count(1)
        self.v2_cache: dict[tuple[int, int], bytes] = {}

    def v2_headers(self, n: int, size: int) -> bytes:
        """Headers of a v2 read batch of ``n`` records, made by the reduct-py encoder itself."""
        key = (n, size)
        cached = self.v2_cache.get(key)
        if cached is None:
            from reduct.batch.batch_v2 import RecordBatch, make_headers_v2
            batch = RecordBatch()
            for i in range(n):
                batch.add("e", TS0 + i, b"\0" * size, content_type="application/octet-stream",
                          labels={"key": "value", "index": str(i)})
            _, hs = make_headers_v2(batch)
            hs.pop("Content-Type", None)
            cached = "".join(f"{k}: {v}\r\n" for k, v in hs.items()).encode()
            self.v2_cache[key] = cached
        return cached


async def serve_conn(stream: trio.SocketStream, state: State) -> None:
    buf = bytearray()
    try:
        while True:
            while (end := buf.find(b"\r\n\r\n")) < 0:
                data = await stream.receive_some(1 << 20)
                if not data:
                    return
                buf += data
            req_head = bytes(buf[:end + 2])
            del buf[:end + 4]
            line, _, rest = req_head.partition(b"\r\n")
            method, target, _ = line.split(b" ", 2)
            lower = rest.lower()
            clen = 0
            i = lower.find(b"content-length:")
            if i >= 0:
                clen = int(lower[i + 15:lower.find(b"\r\n", i)])
            body = b""
            if clen:
                if len(buf) >= clen:
                    body = bytes(buf[:clen]) if clen < 65536 else b""
                    del buf[:clen]
                else:
                    small = clen < 65536
                    parts = [bytes(buf)] if small else []
                    left = clen - len(buf)
                    buf.clear()
                    while left > 0:
                        data = await stream.receive_some(min(max(left, 65536), 1 << 20))
                        if not data:
                            return
                        if len(data) > left:
                            buf += data[left:]
                            data = data[:left]
                        if small:
                            parts.append(data)
                        left -= len(data)
                    body = b"".join(parts)
            await respond(stream, state, method, target, lower, clen, body)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def respond(stream, state: State, method: bytes, target: bytes, lower: bytes, clen: int,
                  body: bytes) -> None:
    m = PATH_RE.match(target)
    if m is None:
        if target.startswith(b"/api/v1/info"):
            await stream.send_all(ok_json({"version": "1.21.0", "bucket_count": 0, "usage": 0, "uptime": 1,
                                           "oldest_record": 0, "latest_record": 0, "defaults": {"bucket": {}}}))
        else:
            await stream.send_all(head(b"200 OK", 0))
        return
    kind, bucket, rest = m.group(1), m.group(2), m.group(3)
    if kind == b"b" and rest and rest.endswith(b"batch"):
        if method == b"POST":
            n = lower.count(b"\r\nx-reduct-time-")
            if n:
                state.records[bucket] = state.records.get(bucket, 0) + n
                state.size[bucket] = clen // n
        await stream.send_all(head(b"200 OK", 0))
    elif kind == b"io" and rest == b"q":
        doc = json.loads(body or b"{}")
        written = state.records.get(bucket, 0)
        if doc.get("query_type") == "REMOVE":
            state.records[bucket] = written - written // 2
            await stream.send_all(ok_json({"removed_records": written // 2}))
        else:
            qid = next(state.ids)
            state.queries[qid] = [bucket, written]
            await stream.send_all(ok_json({"id": qid}))
    elif kind == b"io" and rest == b"read":
        i = lower.find(b"x-reduct-query-id:")
        qid = int(lower[i + 18:lower.find(b"\r\n", i)])
        q = state.queries.get(qid)
        if q is None or q[1] <= 0:
            state.queries.pop(qid, None)
            await stream.send_all(b"HTTP/1.1 204 No Content\r\n" + API + b"content-length: 0\r\n\r\n")
            return
        size = state.size.get(bucket, 0)
        n = min(MAX_RECORDS, q[1], max(1, MAX_BYTES // size) if size else MAX_RECORDS)
        q[1] -= n
        last = b"true" if q[1] <= 0 else b"false"
        extra = state.v2_headers(n, size) + b"x-reduct-last: " + last + b"\r\n"
        total = n * size
        await stream.send_all(head(b"200 OK", total, extra, b"application/octet-stream"))
        if total:
            await stream.send_all(memoryview(BLOB)[:total] if total <= len(BLOB) else b"\0" * total)
    elif kind == b"b" and not rest:
        if method in (b"GET", b"HEAD"):
            await stream.send_all(ok_json({"info": {"name": bucket.decode(), "entry_count": 0, "size": 0,
                                                    "oldest_record": 0, "latest_record": 0},
                                           "settings": {}, "entries": []}))
        else:
            await stream.send_all(head(b"200 OK", 0))
    else:
        await stream.send_all(head(b"200 OK", 0))


async def main(port: int) -> None:
    state = State()
    state.v2_headers(1, 1)  # import the encoder before the first measured request
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    print("ready", listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(lambda s: serve_conn(s, state), listeners)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    try:
        trio.run(main, args.port)
    except KeyboardInterrupt:
        sys.exit(0)
