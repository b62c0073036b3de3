"""edge/server/front.py over real sockets on 127.0.0.1:<free port>, with a toy handler.

Raw trio sockets show the exact bytes (keep-alive, pipelining, framing); ``requests`` in a
thread checks that an ordinary client agrees. Every wait is bounded by ``fail_after``.
"""

import functools
import logging
import os

import pytest
import requests
import trio

from edge.errors import EdgeError
from edge.server.front import HttpConfig, serve_http
from edge.server.protocol import encode_chunked
from edge.server.types import FileSegment, Response

BIG = 8 << 20


class Toy:
    """Routes by path; records what it saw."""

    def __init__(self):
        self.seen = []
        self.gate = trio.Event()
        self.started = trio.Event()
        self.file = None

    async def __call__(self, req):
        self.seen.append(req)
        p = req.path
        if p == "/echo":
            try:
                data = await req.body.read_all(1 << 20)
            except EdgeError as exc:
                return Response(400, [("x-reduct-error", exc.message)])
            return Response(200, [("x-q", repr(req.query)), ("x-len", str(req.body.length))], data)
        if p == "/count":  # streams the body through without buffering it
            total, biggest = 0, 0
            while chunk := await req.body.receive_some(1 << 20):
                total += len(chunk)
                biggest = max(biggest, len(chunk))
            return Response(200, [("x-biggest", str(biggest))], str(total).encode())
        if p == "/ignore":  # answers without touching the body
            return Response(200, [], b"ignored")
        if p == "/slow":
            self.started.set()
            await self.gate.wait()
            return Response(200, [], b"finished")
        if p == "/file":
            fd, off, n = self.file

            async def chunks():
                yield b"<"
                yield FileSegment(fd, off, n)
                yield memoryview(b">")
            return Response(200, [], chunks(), content_length=n + 2)
        if p == "/short":
            async def chunks():
                yield b"only this"
            return Response(200, [], chunks(), content_length=100)
        if p == "/boom":
            raise RuntimeError("handler bug")
        if p == "/head":
            return Response(200, [("x-a", "1")], b"", content_length=12345)
        return Response(404, [], b"not found")


@pytest.fixture
async def server(nursery):
    toy = Toy()
    stop = trio.Event()
    cfg = HttpConfig(head_timeout_s=0.5, body_timeout_s=0.3, graceful_timeout_s=2.0, linger_s=0.2)
    bound = await nursery.start(functools.partial(serve_http, toy, host="127.0.0.1", port=0,
                                                  config=cfg, shutdown=stop))
    host, port = bound[0]
    yield toy, (host, port), stop
    stop.set()


async def connect(addr):
    s = trio.socket.socket()
    await s.connect(addr)
    return s


async def read_response(s, buf: bytearray, head_only=False):
    """One response from a raw socket: (status, headers dict, body); leftovers stay in buf."""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in buf:
            data = await s.recv(65536)
            if not data:
                raise EOFError(bytes(buf))
            buf += data
        end = buf.index(b"\r\n\r\n")
        lines = buf[:end].decode("latin-1").split("\r\n")
        del buf[:end + 4]
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if status == 100:
            return status, headers, b""
        n = 0 if head_only else int(headers.get("content-length", 0))
        while len(buf) < n:
            data = await s.recv(65536)
            if not data:
                raise EOFError(bytes(buf))
            buf += data
        body = bytes(buf[:n])
        del buf[:n]
        return status, headers, body


async def is_closed(s):
    with trio.fail_after(5):
        try:
            return await s.recv(10) == b""
        except ConnectionResetError:
            return True


async def test_keep_alive_and_query(server):
    toy, addr, _ = server
    s, buf = await connect(addr), bytearray()
    for i in range(3):
        await s.send(b"GET /echo?a=%d&a=9&b=x+y HTTP/1.1\r\nHost: t\r\n\r\n" % i)
        status, headers, body = await read_response(s, buf)
        assert status == 200 and headers["x-q"] == repr({"a": str(i), "b": "x y"})
        assert "date" in headers and "connection" not in headers
    assert toy.seen[0].query_items == [("a", "0"), ("a", "9"), ("b", "x y")]
    assert toy.seen[0].client[0] == "127.0.0.1"


async def test_pipelining(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirstGET /echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + encode_chunked(b"third", [2, 3]))
    assert (await read_response(s, buf))[2] == b"first"
    assert (await read_response(s, buf))[1]["x-q"] == "{'x': '1'}"
    assert (await read_response(s, buf))[2] == b"third"


async def test_chunked_body_and_requests_client(server):
    _, addr, _ = server
    url = f"http://{addr[0]}:{addr[1]}/echo"

    def gen():
        yield b"hello "
        yield b"chunked "
        yield b"world"
    r = await trio.to_thread.run_sync(lambda: requests.post(url, data=gen(), timeout=5))
    assert r.status_code == 200 and r.content == b"hello chunked world" and r.headers["x-len"] == "None"


async def test_expect_100_continue(server):
    toy, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    status, _, _ = await read_response(s, buf)
    assert status == 100
    await s.send(b"data")
    assert (await read_response(s, buf))[:3:2] == (200, b"data")
    # Refused before reading: no 100 is sent, and the connection closes (the body never comes).
    await s.send(b"PUT /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    status, headers, body = await read_response(s, buf)
    assert status == 200 and headers["connection"] == "close" and await is_closed(s)


async def test_head_sends_headers_only(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, _ = await read_response(s, buf, head_only=True)
    assert status == 200 and headers["content-length"] == "12345" and headers["x-a"] == "1"
    status, headers, _ = await read_response(s, buf, head_only=True)
    assert status == 200 and headers["content-length"] == "0"
    status, _, body = await read_response(s, buf)
    assert status == 404 and body == b"not found"  # no stray body bytes came before it


async def test_big_body_is_streamed(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % BIG)
    chunk = os.urandom(1 << 20)
    for _ in range(BIG // len(chunk)):
        await send_all(s, chunk)
    status, headers, body = await read_response(s, buf)
    assert status == 200 and body == str(BIG).encode() and int(headers["x-biggest"]) <= 1 << 20
    await s.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")  # still in sync
    assert (await read_response(s, buf))[0] == 200


async def send_all(s, data):
    view = memoryview(data)
    while view:
        n = await s.send(view)
        view = view[n:]


async def test_unread_bodies_are_drained_or_close(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000 + b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, _ = await read_response(s, buf)
    assert status == 200 and "connection" not in headers
    assert (await read_response(s, buf))[0] == 200  # the small body was drained
    await s.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
    status, headers, _ = await read_response(s, buf)
    assert headers["connection"] == "close" and await is_closed(s)


async def test_short_body_and_body_timeout(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
    s.shutdown(trio.socket.SHUT_WR)
    status, headers, _ = await read_response(s, buf)
    assert status == 400 and headers["x-reduct-error"] == "Content is shorter than expected: no more data to read"
    assert headers["connection"] == "close"
    s, buf = await connect(addr), bytearray()
    await s.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")  # ... and nothing more
    status, headers, _ = await read_response(s, buf)
    assert status == 400 and headers["x-reduct-error"] == "Timeout while receiving data"
    assert await is_closed(s)


async def test_sendfile_segment(server, tmp_path):
    toy, addr, _ = server
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        toy.file = (fd, 1000, len(data) - 2000)
        url = f"http://{addr[0]}:{addr[1]}/file"
        r = await trio.to_thread.run_sync(lambda: requests.get(url, timeout=5))
        assert r.status_code == 200 and r.content == b"<" + data[1000:-1000] + b">"
    finally:
        os.close(fd)


async def test_short_iterable_body_closes(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await s.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
    with trio.fail_after(5):
        while len(buf) < 20 or not buf.endswith(b"only this"):
            buf += await s.recv(65536)
    assert b"content-length: 100" in buf and await is_closed(s)


async def test_handler_exception_is_500(server, caplog):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    with caplog.at_level(logging.ERROR, logger="edge.http"):
        await s.send(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = await read_response(s, buf)
    assert status == 500 and headers["connection"] == "close" and await is_closed(s)
    assert "handler bug" in caplog.text


async def test_oversize_headers_431(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    await send_all(s, b"GET / HTTP/1.1\r\nHost: t\r\nx-big: " + b"a" * 600_000 + b"\r\n\r\n")
    status, headers, _ = await read_response(s, buf)
    assert status == 431 and await is_closed(s)


async def test_hundred_record_headers_fit(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    hdrs = b"".join(b"x-reduct-time-%d: 1024,text/plain,label=%s\r\n" % (i, b"v" * 3000) for i in range(120))
    await send_all(s, b"GET /echo HTTP/1.1\r\nHost: t\r\n" + hdrs + b"\r\n")
    assert (await read_response(s, buf))[0] == 200


async def test_bad_request_and_unsupported_te(server):
    _, addr, _ = server
    for wire, status in ((b"GARBAGE\r\n\r\n", 400),
                         (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501)):
        s, buf = await connect(addr), bytearray()
        await s.send(wire)
        assert (await read_response(s, buf))[0] == status and await is_closed(s)


async def test_slow_head_times_out(server):
    _, addr, _ = server
    s, buf = await connect(addr), bytearray()
    with trio.fail_after(3):
        await s.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        await trio.sleep(0.3)
        await s.send(b"X-A: 1\r\n")  # progress does not extend the head deadline (0.5 s)
        status, _, _ = await read_response(s, buf)
    assert status == 408 and await is_closed(s)
    s2 = await connect(addr)  # a silent connection is closed without a word
    assert await is_closed(s2)


async def test_graceful_shutdown_finishes_in_flight(server):
    toy, addr, stop = server
    busy, idle, buf = await connect(addr), await connect(addr), bytearray()
    await busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    await idle.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(idle, bytearray()))[0] == 200
    with trio.fail_after(5):
        await toy.started.wait()
    stop.set()
    assert await is_closed(idle)  # idle keep-alive connections go at once
    with pytest.raises(OSError):
        await connect(addr)  # no new connections
    toy.gate.set()
    status, headers, body = await read_response(busy, buf)
    assert (status, body, headers["connection"]) == (200, b"finished", "close")
    assert await is_closed(busy)


async def test_graceful_deadline_cancels_stragglers(nursery):
    toy, stop = Toy(), trio.Event()
    cfg = HttpConfig(graceful_timeout_s=0.2)
    done = trio.Event()

    async def run(task_status):
        await serve_http(toy, host="127.0.0.1", port=0, config=cfg, shutdown=stop, task_status=task_status)
        done.set()
    (addr,) = await nursery.start(run)
    s = await connect(addr)
    await s.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    with trio.fail_after(5):
        await toy.started.wait()
        stop.set()
        await done.wait()  # the handler never returns; the deadline ends it
    assert await is_closed(s)


async def test_ipv6_and_max_connections(nursery):
    stop = trio.Event()
    toy = Toy()
    try:
        bound = await nursery.start(functools.partial(
            serve_http, toy, host="::1", port=0, config=HttpConfig(max_connections=1), shutdown=stop))
    except OSError:
        pytest.skip("no IPv6 loopback")
    (host, port) = bound[0]
    assert host == "::1"
    s1 = trio.socket.socket(trio.socket.AF_INET6)
    await s1.connect((host, port))
    await s1.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(s1, bytearray()))[0] == 200
    await trio.sleep(0.05)  # s1 is parked idle
    s2 = trio.socket.socket(trio.socket.AF_INET6)
    await s2.connect((host, port))  # the only slot is idle: s1 is shed to make room
    await s2.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    with trio.fail_after(1):
        assert (await read_response(s2, bytearray()))[0] == 200
    assert await is_closed(s1)
    stop.set()


async def start_small(nursery, **cfg):
    toy, stop = Toy(), trio.Event()
    config = HttpConfig(head_timeout_s=5, keep_alive_timeout_s=60, linger_s=0.2, **cfg)
    (addr,) = await nursery.start(functools.partial(serve_http, toy, host="127.0.0.1", port=0,
                                                    config=config, shutdown=stop))
    return toy, addr, stop


async def test_full_slots_shed_the_longest_idle_never_a_request(nursery):
    """Three slots: one request in flight, one head begun, one idle keep-alive connection. Each
    newcomer sheds the longest-idle connection and is served at once; the other two are untouched."""
    toy, addr, stop = await start_small(nursery, max_connections=3)
    busy, partial, kept = await connect(addr), await connect(addr), await connect(addr)
    await busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    with trio.fail_after(5):
        await toy.started.wait()
    await partial.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n")  # head not finished
    await kept.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(kept, bytearray()))[0] == 200
    await trio.sleep(0.05)  # kept is parked idle
    silent = await connect(addr)  # never sends a byte: sheds kept, and is idle itself
    await trio.sleep(0.05)
    assert await is_closed(kept)
    newcomer, buf = await connect(addr), bytearray()
    with trio.fail_after(1):
        await newcomer.send(b"GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = await read_response(newcomer, buf)
    assert status == 200 and headers["x-q"] == "{'n': '1'}"
    assert await is_closed(silent)
    # The request in flight and the begun head were left alone and complete normally.
    await partial.send(b"\r\nabcd")
    assert (await read_response(partial, bytearray()))[:3:2] == (200, b"abcd")
    toy.gate.set()
    assert (await read_response(busy, bytearray()))[:3:2] == (200, b"finished")
    stop.set()


async def test_hard_limit_refuses_with_503_when_nothing_is_idle(nursery):
    toy, addr, stop = await start_small(nursery, max_connections=1, max_connections_hard=2)
    busy = await connect(addr)
    await busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    with trio.fail_after(5):
        await toy.started.wait()
    partial = await connect(addr)  # busy is mid-request by now: never shed
    await partial.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n")
    await trio.sleep(0.05)
    refused, buf = await connect(addr), bytearray()
    status, headers, body = await read_response(refused, buf)
    assert (status, headers["connection"], body) == (503, "close", b"Too many connections")
    assert await is_closed(refused)
    toy.gate.set()
    assert (await read_response(busy, bytearray()))[0] == 200  # now idle: the next one sheds it
    await trio.sleep(0.05)
    late, buf = await connect(addr), bytearray()
    await late.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(late, buf))[0] == 200
    assert await is_closed(busy)
    stop.set()


async def test_a_tls_upload_reaches_the_handler_in_pieces_larger_than_a_record(nursery, tmp_path):
    """The TLS connection decrypts every record the kernel holds in one receive: a 4 MB upload
    arrives in pieces far larger than one 16 KiB TLS record (trio.SSLStream handed out one
    record per scheduler trip, and the store paid its per-call cost per record)."""
    import socket
    import ssl

    from edge.server.tls import server_context
    from tests.tls_material import make_pki

    pki = make_pki(tmp_path / "pki")
    toy, addr, stop = await start_small(nursery, ssl_context=server_context(str(pki.cert), str(pki.key)))
    payload = os.urandom(4 << 20)

    def upload() -> bytes:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        with socket.create_connection(addr, timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"POST /count HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    reply = await trio.to_thread.run_sync(upload)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == str(len(payload)).encode()
    biggest = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.startswith(b"x-biggest")))
    assert biggest > 64 * 1024, biggest
    stop.set()


async def test_large_heads_share_bounded_memory_and_wait_for_it(nursery):
    """One reservation for heads over 64 KiB: a second large head waits, unread, until the first
    is complete; small heads never wait."""
    toy, addr, stop = await start_small(nursery, max_header_bytes=200_000, large_head_memory=200_000)
    filler = b"".join(b"X-F-%d: %s\r\n" % (i, b"v" * 900) for i in range(100))  # ~91 KB
    first, second, small = await connect(addr), await connect(addr), await connect(addr)
    await first.send(b"GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n" + filler)  # holds the one reservation
    await trio.sleep(0.2)
    await second.send(b"GET /echo?n=2 HTTP/1.1\r\nHost: t\r\n" + filler + b"\r\n")
    await small.send(b"GET /echo?n=3 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(small, bytearray()))[0] == 200  # a small head never waits
    with trio.move_on_after(0.5) as cs:
        await read_response(second, bytearray())
    assert cs.cancelled_caught  # waiting for the memory, not read any further
    await first.send(b"\r\n")
    status, headers, _ = await read_response(first, bytearray())
    assert status == 200 and headers["x-q"] == "{'n': '1'}"
    status, headers, _ = await read_response(second, bytearray())
    assert status == 200 and headers["x-q"] == "{'n': '2'}"
    stop.set()
