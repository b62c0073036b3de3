"""CPU per request of the HTTP/1.1 head parser (edge/server/protocol.py) beside h11, same run.

    python bench/parser.py [--rounds 7] [--n 20000] [--baseline OLD/protocol.py]

Three request shapes a ReductStore client sends: reduct-py's ``GET /api/v1/info``, a single
record write with three labels, and a v1 batch write head with 80 ``x-reduct-time-*`` headers.
Each is parsed ``n`` times per round by ``HeadReader`` (head + framing, which is all the front
asks of it) and by an ``h11.Connection`` (request event + end of message); the table shows the
median per-request CPU time over the rounds (``time.process_time``) and the ratio h11/edge.
``--baseline`` loads another version of ``protocol.py`` (e.g. ``git show main~5:edge/server/protocol.py
> /tmp/old.py``) and measures it in the same rounds, for before/after figures from one run.
h11 is a test-only dependency (``pip install -e '.[test]'``); without it only edge is measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.server.protocol import HeadReader  # noqa: E402

try:
    import h11
except ImportError:  # pragma: no cover
    h11 = None

UA = "User-Agent: Python/3.11 aiohttp/3.9.5\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
INFO = ("GET /api/v1/info HTTP/1.1\r\nHost: 127.0.0.1:8383\r\n" + UA
        + "Authorization: Bearer init-token-0123456789abcdef0123456789abcdef\r\n\r\n").encode()
WRITE = ("POST /api/v1/b/cam/front?ts=1700000000000000 HTTP/1.1\r\nHost: 127.0.0.1:8383\r\n" + UA
         + "Content-Type: image/jpeg\r\nContent-Length: 1024\r\nx-reduct-label-kind: jpeg\r\n"
         "x-reduct-label-site: north\r\nx-reduct-label-score: 0.93\r\n\r\n").encode()
BATCH = ("POST /api/v1/b/cam/front/batch HTTP/1.1\r\nHost: 127.0.0.1:8383\r\n" + UA
         + "Content-Type: application/octet-stream\r\nContent-Length: 81920\r\n"
         + "".join(f"x-reduct-time-{1700000000000000 + i}: 1024,image/jpeg,kind=jpeg,site=north\r\n"
                   for i in range(80)) + "\r\n").encode()
SHAPES = {"GET /info": INFO, "write, 3 labels": WRITE, "batch head, 80 records": BATCH}


def edge_round(wire: bytes, n: int, reader_class=HeadReader) -> float:
    reader = reader_class()
    t0 = time.process_time()
    for _ in range(n):
        buf = bytearray(wire)
        head = reader(buf)
        assert head is not None
    return (time.process_time() - t0) / n


def h11_round(wire: bytes, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        conn.receive_data(wire)
        event = conn.next_event()
        assert isinstance(event, h11.Request)
    return (time.process_time() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--baseline", help="another protocol.py to measure beside this one")
    args = ap.parse_args()
    old = None
    if args.baseline:
        import importlib.util

        spec = importlib.util.spec_from_file_location("baseline_protocol", args.baseline)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
    cols = ["request", "edge µs/request"] + (["baseline µs/request", "edge / baseline"] if old else [])
    cols += ["h11 µs/request", "h11 / edge"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for name, wire in SHAPES.items():
        n = args.n if len(wire) < 2000 else max(1, args.n // 10)
        ours, base, theirs = [], [], []
        for _ in range(args.rounds):
            ours.append(edge_round(wire, n))
            if old is not None:
                base.append(edge_round(wire, n, old.HeadReader))
            if h11 is not None:
                theirs.append(h11_round(wire, n))
        e = statistics.median(ours) * 1e6
        row = [name, f"{e:.1f}"]
        if base:
            b = statistics.median(base) * 1e6
            row += [f"{b:.1f}", f"{e / b:.2f}"]
        if theirs:
            h = statistics.median(theirs) * 1e6
            row += [f"{h:.1f}", f"{h / e:.1f}x"]
        else:
            row += ["-", "-"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
