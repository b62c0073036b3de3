"""Differential test of our HTTP/1.1 request parser against h11, the parser we replaced.

What it checks, and why: we dropped h11 from the server for speed (bench/parser.py), not to be
laxer. Hypothesis builds valid requests (methods, targets, header fields with obs-text and
inner whitespace, Content-Length or chunked bodies with extensions and trailers, pipelined
followers) and mutates their bytes: inserted, deleted, duplicated or case-flipped bytes and
spliced CR, LF, NUL, HTAB, VT, NBSP, SP, ":" and ";". Both parsers get the same bytes:

* where h11 rejects, we reject (the documented exceptions in docs/http-strictness.md are
  normalised away first: a few leading empty lines, which RFC 9112 2.2 asks a server to skip);
* where both accept, both see the same request: method, target, every header, the body bytes
  and what is left for the next request. A difference here is a request-smuggling primitive;
* where we reject and h11 accepts, we are stricter: allowed (each kind is listed in the doc).

Size: ``EDGE_DIFFERENTIAL_EXAMPLES`` examples per test (default 3,000 in ``./test.sh``, a few
seconds). The longer run:

    EDGE_DIFFERENTIAL_EXAMPLES=200000 python -m pytest tests/props/test_http_differential.py -q
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.server.protocol import (
    DEFAULT_MAX_HEADER_BYTES, MAX_LEADING_EMPTY_LINES, ChunkedDecoder, HeadReader, ProtocolError,
    split_target,
)

h11 = pytest.importorskip("h11")

EXAMPLES = int(os.environ.get("EDGE_DIFFERENTIAL_EXAMPLES", "3000"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

INCOMPLETE, ERROR = "incomplete", "error"

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TARGET_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789/-._~%=&?+:@!$'()*,;"
FIELD_CHARS = [chr(c) for c in range(0x21, 0x100) if c != 0x7F]
FRAMING = {"content-length", "transfer-encoding", "host"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
HOSTS = ["a", "127.0.0.1:8383", "[::1]:8383", "edge.local", ""]
SPLICE = [b"\r", b"\n", b"\r\n", b"\x00", b"\t", b"\x0b", b"\xa0", b" ", b":", b";", b"\x85", b"\x7f", b"\x01"]

# The generators take a random.Random seeded by one hypothesis draw: one draw per example
# instead of ~60 keeps a few thousand examples within seconds (hypothesis' bookkeeping per draw
# dominated); a failure is reproducible from its seed and shows the bytes in the assertion.


def _token(r: random.Random, n: int = 12) -> str:
    return "".join(r.choice(TCHAR) for _ in range(r.randint(1, n)))


def _field_value(r: random.Random) -> str:
    """Visible bytes and obs-text with inner spaces/tabs (field-content), no OWS around."""
    chars = FIELD_CHARS + [" ", "\t"]
    return "".join(r.choice(chars) for _ in range(r.randint(0, 16))).strip(" \t")


def _chunk_ext(r: random.Random) -> str:
    out = ""
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        value = r.choice([None, _token(r, 5), '"' + "".join(r.choice('ab c,;') for _ in range(r.randint(0, 5))) + '"'])
        out += ";" + _token(r, 5) + ("" if value is None else "=" + value)
    return out


def build_requests(r: random.Random) -> bytes:
    """One or two valid HTTP/1.1 (or 1.0) requests, serialized."""
    out = b""
    for _ in range(r.randint(1, 2)):
        version = r.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"])
        method = r.choice(METHODS + [_token(r)])
        target = r.choice(["/" + "".join(r.choice(TARGET_CHARS) for _ in range(r.randint(0, 30))), "*",
                           "http://h:1/a?b", "/api/v1/b/x/e?ts=1"])
        headers = []
        for _ in range(r.randint(0, 6)):
            name = _token(r)
            if name.lower() not in FRAMING:
                headers.append((name, _field_value(r)))
        if version == "HTTP/1.1" or r.random() < 0.5:
            headers.insert(r.randint(0, len(headers)), (r.choice(["Host", "host", "HOST"]), r.choice(HOSTS)))
        framing = r.choice(["none", "length", "chunked"] if version == "HTTP/1.1" else ["none", "length"])
        body = b""
        if framing == "length":
            body = r.randbytes(r.randint(0, 20))
            headers.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", r.choice(["chunked", "Chunked", "CHUNKED"])))
            for _ in range(r.randint(0, 3)):
                piece = r.randbytes(r.randint(1, 10))
                body += f"{len(piece):x}{_chunk_ext(r)}\r\n".encode() + piece + b"\r\n"
            body += b"0" + _chunk_ext(r).encode() + b"\r\n"
            for _ in range(r.choice([0, 0, 1, 2])):
                body += f"{_token(r)}: {_field_value(r)}\r\n".encode("latin-1")
            body += b"\r\n"
        lines = [f"{method} {target} {version}"] + [f"{n}: {v}" for n, v in headers]
        out += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return out


def mutate(r: random.Random, wire: bytes) -> bytes:
    """Bytes inserted, deleted, duplicated, case-flipped; CR/LF/NUL/HTAB/VT/NBSP... spliced."""
    buf = bytearray(wire)
    for _ in range(r.randint(1, 3)):
        if not buf:
            break
        op = r.choice(["insert", "insert", "delete", "duplicate", "flip"])
        pos = r.randrange(len(buf))
        if op == "insert":
            buf[pos:pos] = r.choice(SPLICE) if r.random() < 0.8 else r.randbytes(1)
        elif op == "delete":
            del buf[pos:pos + r.randint(1, 3)]
        elif op == "duplicate":
            buf[pos:pos] = buf[pos:min(len(buf), pos + r.randint(1, 12))]
        else:
            buf[pos:pos + 1] = bytes([buf[pos]]).swapcase()
    return bytes(buf)


seeds = st.integers(0, 2**64 - 1).map(random.Random)
requests_ = seeds.map(build_requests)
mutated = seeds.map(lambda r: mutate(r, build_requests(r)))


def _header(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    # h11 hands Transfer-Encoding back lower-cased; the framing it means is the same.
    return name, value.lower() if name == b"transfer-encoding" else value


def ours(wire: bytes, skipped: list[int] | None = None):
    """Every request our parser takes from ``wire`` until it stops: (requests, outcome).
    ``skipped`` collects the offsets of empty lines we skip before a request line."""
    buf, reader, got = bytearray(wire), HeadReader(), []
    try:
        while buf:
            if skipped is not None:
                at = len(wire) - len(buf)
                n = 0
                while buf[2 * n:2 * n + 2] == b"\r\n" and n < MAX_LEADING_EMPTY_LINES:
                    skipped.append(at + 2 * n)
                    n += 1
            head = reader(buf)
            if head is None:
                return got, INCOMPLETE
            split_target(head.target)  # the front does this before routing
            if head.chunked:
                dec, parts = ChunkedDecoder(), []
                while (data := dec.next_data(buf)) not in (None, b""):
                    parts.append(data)
                if not dec.done:
                    return got, INCOMPLETE
                body = b"".join(parts)
            else:
                if len(buf) < head.content_length:
                    return got, INCOMPLETE
                body = bytes(buf[:head.content_length])
                del buf[:head.content_length]
            headers = [_header(n.encode("latin-1"), v.encode("latin-1")) for n, v in head.headers]
            got.append((head.method.encode(), head.target.encode("latin-1"), headers, body))
            if not head.keep_alive:
                return got, "closed"
    except ProtocolError:
        return got, ERROR
    return got, "done"


def theirs(wire: bytes):
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=DEFAULT_MAX_HEADER_BYTES)
    conn.receive_data(wire)
    got = []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return got, (INCOMPLETE if conn.trailing_data[0] or got == [] or conn.their_state != h11.DONE
                             else "done")
            if event is h11.PAUSED:
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return got, "closed"
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
                continue
            if isinstance(event, h11.Request):
                req, body = event, []
                continue
            if isinstance(event, h11.Data):
                body.append(bytes(event.data))
                continue
            if isinstance(event, h11.EndOfMessage):
                got.append((req.method, req.target, [_header(bytes(n), bytes(v)) for n, v in req.headers],
                            b"".join(body)))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return got, "closed"
    except h11.RemoteProtocolError:
        return got, ERROR


def normalise(wire: bytes) -> bytes:
    """Deliberate disagreement (docs/http-strictness.md): up to MAX_LEADING_EMPTY_LINES empty
    lines before a request line are skipped by us and refused by h11 (RFC 9112 2.2: SHOULD
    ignore at least one). Give h11 the bytes without the ones we skipped."""
    skipped: list[int] = []
    ours(wire, skipped)
    if not skipped:
        return wire
    drop = set()
    for at in skipped:
        drop.update((at, at + 1))
    return bytes(b for i, b in enumerate(wire) if i not in drop)


END_OF_HEAD = b"\r\n\r\n"


def compare(wire: bytes) -> None:
    mine, my_end = ours(wire)
    h11_got, h11_end = theirs(normalise(wire))
    # Requests both parsers took must be the same requests, byte for byte.
    common = min(len(mine), len(h11_got))
    assert mine[:common] == h11_got[:common], (wire, mine, h11_got)
    if len(h11_got) > len(mine):
        # h11 took a request we did not: allowed only if we refused it (stricter), or are still
        # waiting and refuse once the bytes that end any head arrive (h11 also ends a head at
        # "\n\n" or "\r\n\n"; we wait for CRLF CRLF and then find the bare LF). Never may we
        # read that request differently.
        assert my_end in (ERROR, INCOMPLETE), (wire, my_end, mine, h11_got)
        if my_end == INCOMPLETE:
            later, later_end = ours(wire + END_OF_HEAD)
            assert later[:len(mine)] == mine and (later_end == ERROR or later[len(mine):] == h11_got[len(mine):len(later)]), \
                (wire, later, later_end, h11_got)
    elif h11_end == ERROR:
        # h11 rejects the next request: so must we, or still be waiting for bytes (and not
        # accept it once they come, unless h11 would too), or have closed already (HTTP/1.0).
        assert my_end in (ERROR, INCOMPLETE, "closed"), (wire, my_end, mine)
        if my_end == INCOMPLETE:
            later, _ = ours(wire + END_OF_HEAD)
            if len(later) > len(mine):
                more, _ = theirs(normalise(wire + END_OF_HEAD))
                assert later[len(mine):len(mine) + 1] == more[len(mine):len(mine) + 1], (wire, later, more)


@SETTINGS
@given(requests_)
def test_valid_requests_parse_the_same(wire):
    mine, my_end = ours(wire)
    h11_got, _ = theirs(wire)
    assert my_end != ERROR, wire
    assert mine == h11_got[:len(mine)] and len(mine) == len(h11_got), (wire, mine, h11_got)


@SETTINGS
@given(mutated)
@example(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a\rb\r\nx\r\n0\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy")
@example(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
def test_mutated_requests_where_h11_rejects_we_reject(wire):
    compare(wire)
