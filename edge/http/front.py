"""The HTTP/1.1 server on Trio: listeners, the per-connection loop, keep-alive, TLS, shutdown.

Owns: binding, accepting (past ``max_connections`` each newcomer sheds the longest-idle
connection, up to a hard limit; past ``max_connections_per_address`` for one address the same
within that address; policy in ``admission.py``), socket I/O for heads, bodies and responses
(``os.sendfile`` for ``FileSegment`` in plaintext), TLS (stdlib ``ssl`` on ``trio.SSLStream``),
every phase's deadline, pipelining, draining unread bodies, the graceful drain on shutdown, and
last-resort 500s.
Must not: route, authenticate, know ReductStore headers or CORS (``app.py`` does), parse bytes
itself (``protocol.py`` does), or catch ``trio.Cancelled``.

No client can starve another (a hostile LAN is the normal case for an appliance):

* every loop over client bytes yields to the scheduler at a bounded cost: the head loop after
  every receive that did not block, bodies by a byte-plus-call budget (``types.Body``), the
  linger loop per receive; the connection loop once per request when nothing blocked;
* every phase has a *total* deadline: the head from its first byte (empty lines included; the
  first head from the accept), the TLS handshake, keep-alive idle, and the body: a per-receive
  timeout (``RS_IO_OPERATION_TIMEOUT``) plus a minimum rate after a grace period, like Apache's
  ``RequestReadTimeout body=20,MinRate=500``;
* an error answer (status >= 400) to a request whose body is still unread goes out at once, and
  the connection is closed unless the rest of the body is small and already declared
  (``error_drain_limit``); a 401 never waits for a body;
* connections per address are capped (``max_connections_per_address``) next to the global cap;
  trusted proxies (``EDGE_TRUSTED_PROXIES``) are exempt, since one proxy carries many clients.

Why not Hypercorn/h11 and trio streams: perf-limits.md section 2 measures ~1 ms of CPU per request
for Hypercorn and 0.2-0.6 ms for h11 on trio, against 0.05-0.15 ms for bare trio sockets. So each
connection drives a plain non-blocking stdlib socket: try the syscall first, and only when it
would block, park in ``trio.lowlevel.wait_readable``/``wait_writable`` (under a timeout scope that
exists only while blocked). A request that needs no waiting therefore yields once, explicitly.

Skeleton after Hypercorn's ``worker_serve``: a nursery for connections around a nursery for
acceptors; ``task_status.started(bound addresses)``; on ``shutdown`` the acceptors stop, idle
keep-alive connections are cancelled, and in-flight requests get ``graceful_timeout_s`` to finish.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import ssl
import struct
import termios
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from edge.errors import BadRequestError

from .admission import IdleQueue, admit
from .client_address import TrustedProxies
from .protocol import (
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_REQUEST_LINE, HeadReader,
    ProtocolError, RequestHead, body_allowed, parse_query, serialize_response_head, split_target,
)
from .types import Body, FileSegment, Headers, Request, Response

logger = logging.getLogger("edge.http")

Handler = Callable[[Request], Awaitable[Response]]

_SMALL = 64 * 1024  # below this a body rides in the same send as the head (one syscall)
_SENDFILE_FALLBACK = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK}
_ACCEPT_TRANSIENT = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN,
                     errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH,
                     errno.EOPNOTSUPP, errno.ENETUNREACH}
_ACCEPT_RESOURCE = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@dataclass
class HttpConfig:
    """Typed defaults, seconds and bytes in the names."""

    graceful_timeout_s: float = 5.0  # in-flight requests may finish this long after shutdown
    keep_alive_timeout_s: float = 75.0  # an idle keep-alive connection is closed after this
    head_timeout_s: float = 30.0  # the whole request head must arrive within this (slowloris)
    body_timeout_s: float = 30.0  # each body receive must make progress within this
    body_grace_s: float = 20.0  # a body may take this long, plus 1 s per body_min_rate bytes
    body_min_rate: float = 500.0  # bytes/s a body must average after the grace (0 = no minimum)
    send_timeout_s: float = 60.0  # each blocked send must make progress within this
    tls_handshake_timeout_s: float = 10.0  # the whole TLS handshake
    max_connections: int = 1024  # above it, each newcomer sheds the longest-idle connection
    max_connections_hard: int = 0  # 0 = 2 x max_connections; above it newcomers are refused
    max_connections_per_address: int = 64  # per client address (trusted proxies exempt); 0 = off
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    ssl_context: ssl.SSLContext | None = None  # set: every connection speaks TLS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_request_line: int = DEFAULT_MAX_REQUEST_LINE
    drain_limit: int = 1 << 20  # unread body left by a handler: drained up to this, else close
    error_drain_limit: int = 64 * 1024  # the same after an error answer (>= 400), else close
    error_drain_s: float = 2.0  # ... and it must arrive within this
    linger_s: float = 2.0  # after an early close, read and drop input this long (avoids RST)
    recv_size: int = 64 * 1024


class _ConnGone(Exception):
    """The peer went away or stopped reading; nothing more can be sent."""


LINGER_BYTES = 64 << 20  # unread body dropped after an early answer, at most (and linger_s)
LINGER_AFTER_PROTOCOL_ERROR = 256 * 1024  # after a framing error: a broken or hostile client
PIPELINE_UNSENT_LIMIT = 256 * 1024  # a client that does not read its answers waits past this
_SCRATCH = bytearray(64 * 1024)  # where lingering input is dropped (one buffer for all)
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)  # same number as SIOCOUTQ on Linux

_BODY_TIMEOUT = "Timeout while receiving data"
_BODY_TOO_SLOW = "Request body is arriving too slowly"


class _Conn:
    """One accepted plaintext socket: the byte source of request bodies and the sink of responses.

    Transport primitives (``_TlsConn`` replaces them): ``poll(n)`` returns bytes without waiting,
    ``None`` if it would block (``b""`` at EOF; ``OSError`` on a reset); ``wait_input()`` parks
    until ``poll`` may have something. Everything else is written in terms of these two.
    """

    __slots__ = ("raw", "fd", "buf", "client", "cfg", "idle_scope", "shed", "waited", "broken",
                 "accepted_at", "body_started_at", "body_bytes")

    def __init__(self, raw: socket.socket, client: tuple[str, int], cfg: HttpConfig):
        self.raw = raw
        self.fd = raw.fileno()
        self.buf = bytearray()
        self.client = client
        self.cfg = cfg
        # Set while parked with nothing of a request received (new, or between requests):
        # cancelling it closes the connection, and nothing else may be cut from outside.
        self.idle_scope: trio.CancelScope | None = None
        self.shed = False  # closed to make room (or for shutdown) while idle
        self.waited = False  # blocked since the last explicit checkpoint
        self.broken = False  # input is unusable (reset, timeout, EOF mid-body)
        self.accepted_at = trio.current_time()
        self.body_started_at = -1.0  # first body receive of the current request (-1: none yet)
        self.body_bytes = 0  # body bytes received for the current request

    # --- transport primitives

    def poll(self, max_bytes: int) -> bytes | None:
        try:
            return self.raw.recv(max_bytes)
        except BlockingIOError:
            return None

    async def wait_input(self) -> None:
        await trio.lowlevel.wait_readable(self.fd)

    # --- ByteSource for Body

    def begin_request(self) -> None:
        """A new head is in: the body's minimum-rate clock starts at its first receive (after a
        ``100 Continue``, or once the handler is ready for it: our own delays are not the
        client's)."""
        self.body_started_at = -1.0
        self.body_bytes = 0

    def _body_deadline(self) -> float:
        cfg = self.cfg
        if cfg.body_min_rate <= 0:
            return float("inf")
        if self.body_started_at < 0:
            self.body_started_at = trio.current_time()
        return self.body_started_at + cfg.body_grace_s + self.body_bytes / cfg.body_min_rate

    async def recv(self, max_bytes: int) -> bytes:
        cfg = self.cfg
        while True:
            rate_deadline = self._body_deadline()
            if trio.current_time() > rate_deadline:
                self.broken = True
                raise BadRequestError(_BODY_TOO_SLOW)
            try:
                data = self.poll(max_bytes)
            except OSError:
                self.broken = True
                raise BadRequestError("Connection reset while receiving data") from None
            if data is not None:
                self.body_bytes += len(data)
                return data
            with trio.move_on_at(min(trio.current_time() + cfg.body_timeout_s, rate_deadline)) as cs:
                await self.wait_input()
            self.waited = True
            if cs.cancelled_caught:
                self.broken = True
                raise BadRequestError(_BODY_TIMEOUT if trio.current_time() < rate_deadline
                                      else _BODY_TOO_SLOW)

    async def send_continue(self, data: bytes) -> None:
        try:
            await self.send_all(data)
        except _ConnGone:
            self.broken = True
            raise BadRequestError("Connection closed while sending 100 Continue") from None

    # --- output

    async def _wait_writable(self) -> None:
        with trio.move_on_after(self.cfg.send_timeout_s) as cs:
            await trio.lowlevel.wait_writable(self.fd)
        self.waited = True
        if cs.cancelled_caught:
            raise _ConnGone("send timeout")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raw = self.raw
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise _ConnGone(str(exc)) from None
        total = len(data) if not isinstance(data, memoryview) else data.nbytes
        if sent == total:
            return
        with memoryview(data) as view:
            view = view.cast("B")
            while sent < total:
                await self._wait_writable()
                try:
                    sent += raw.send(view[sent:])
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise _ConnGone(str(exc)) from None

    async def sendfile(self, seg: FileSegment, limit: int) -> int:
        """Send up to ``limit`` bytes of ``seg``; returns the count (less if the file is short)."""
        offset, left = seg.offset, min(seg.length, limit)
        start = left
        while left > 0:
            try:
                n = os.sendfile(self.fd, seg.fd, offset, left)
            except BlockingIOError:
                await self._wait_writable()
                continue
            except OSError as exc:
                if exc.errno in _SENDFILE_FALLBACK:
                    return start - left + await self._pread_send(seg.fd, offset, left)
                if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                    raise _ConnGone(str(exc)) from None
                raise
            if n == 0:
                break  # the file ended before the segment did
            offset += n
            left -= n
        return start - left

    async def _pread_send(self, fd: int, offset: int, left: int) -> int:
        sent = 0
        while left > 0:
            # 1 MiB reads are the fastest copying path measured (perf-limits.md section 4c).
            data = os.pread(fd, min(left, 1 << 20), offset)
            if not data:
                break
            await self.send_all(data)
            offset += len(data)
            left -= len(data)
            sent += len(data)
        return sent

    async def linger_close(self, limit: int = LINGER_BYTES) -> None:
        """Half-close, then drop input for a while: closing with unread input sends an RST,
        which can destroy the response the client has not read yet. At most ``limit`` bytes
        and ``linger_s`` seconds: after a framing error (a likely attacker) only a little."""
        try:
            self.raw.shutdown(socket.SHUT_WR)
        except OSError:
            return
        await self._drop_input(limit)

    async def _drop_input(self, limit: int) -> None:
        dropped = 0
        scratch = _SCRATCH
        with trio.move_on_after(self.cfg.linger_s):
            while dropped < limit:
                try:
                    n = self.raw.recv_into(scratch)  # into one shared buffer: no allocation
                except BlockingIOError:
                    await self.wait_input()
                    continue
                except OSError:
                    return
                if not n:
                    return
                dropped += n
                await trio.lowlevel.checkpoint()  # a fast sender must not hold the loop

    def unsent_bytes(self) -> int:
        """Response bytes the kernel still holds for this peer (Linux SIOCOUTQ); 0 if unknown."""
        try:
            return struct.unpack("i", fcntl.ioctl(self.fd, _SIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    async def handshake(self) -> bool:
        return True

    def close(self) -> None:
        trio.lowlevel.notify_closing(self.raw)
        self.raw.close()


_TLS_SEND_PIECE = 256 * 1024  # one SSL write: bounded memory, and a send timeout per piece


class _TlsConn(_Conn):
    """A TLS connection: the same interface over ``trio.SSLStream`` (stdlib ``ssl``).

    ``wait_input`` performs the receive and keeps what it got for the next ``poll``, so the head
    and body loops above run unchanged. A receive or send cut by a timeout leaves the TLS state
    unknown; the connection is always closed after one. ``sendfile`` cannot be zero-copy here:
    the kernel would have to do the encryption (kTLS), which Python's ``ssl`` does not offer with
    a memory BIO, so segments are read with ``pread`` and encrypted in user space.
    """

    __slots__ = ("stream", "_pending")

    def __init__(self, raw: socket.socket, client: tuple[str, int], cfg: HttpConfig,
                 stream: trio.SSLStream):
        super().__init__(raw, client, cfg)
        self.stream = stream
        self._pending: bytes | None = None

    async def handshake(self) -> bool:
        with trio.move_on_after(self.cfg.tls_handshake_timeout_s):
            try:
                await self.stream.do_handshake()
                return True
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return False
        return False

    def poll(self, max_bytes: int) -> bytes | None:
        data, self._pending = self._pending, None
        if data is not None and len(data) > max_bytes:
            data, self._pending = data[:max_bytes], data[max_bytes:]
        return data

    async def wait_input(self) -> None:
        if self._pending is not None:
            return
        try:
            self._pending = await self.stream.receive_some(self.cfg.recv_size)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._pending = b""
            self.broken = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        total = len(data) if not isinstance(data, memoryview) else data.nbytes
        with memoryview(data) as view:
            view = view.cast("B")
            for pos in range(0, total, _TLS_SEND_PIECE):
                with trio.move_on_after(self.cfg.send_timeout_s) as cs:
                    try:
                        await self.stream.send_all(view[pos:pos + _TLS_SEND_PIECE])
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                        raise _ConnGone(str(exc)) from None
                if cs.cancelled_caught:
                    raise _ConnGone("send timeout")
        self.waited = True

    async def sendfile(self, seg: FileSegment, limit: int) -> int:
        return await self._pread_send(seg.fd, seg.offset, min(seg.length, limit))

    async def linger_close(self, limit: int = LINGER_BYTES) -> None:
        dropped = 0
        with trio.move_on_after(self.cfg.linger_s):
            while dropped < limit:
                data = self.poll(self.cfg.recv_size)
                if data is None:
                    await self.wait_input()
                    continue
                if not data:
                    return
                dropped += len(data)

    def unsent_bytes(self) -> int:
        return 0  # the TLS layer buffers too; pipelining under TLS is bounded by send_all waits

    def close(self) -> None:
        self.stream.transport_stream.socket.close()  # notifies trio, then closes the fd once


_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            b"Too many connections")
_REFUSED_ADDRESS = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: 38\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                    b"Too many connections from this address")


class _Server:
    def __init__(self, handler: Handler, cfg: HttpConfig):
        self.handler = handler
        self.cfg = cfg
        self.hard_limit = max(cfg.max_connections_hard or 2 * cfg.max_connections,
                              cfg.max_connections)
        self.conns: set[_Conn] = set()  # open and counted: accepted, not yet closed nor shed
        self.idle: IdleQueue[_Conn] = IdleQueue()  # the sheddable ones, longest-idle first
        # Counted connections per client address (peers that are not trusted proxies).
        self.by_address: dict[str, set[_Conn]] = {}
        self.closing = False
        self.refused_logged_at = -1e9

    def begin_shutdown(self) -> None:
        self.closing = True
        while (conn := self.idle.pop_oldest()) is not None:
            self._shed(conn)

    def _count(self, conn: _Conn) -> None:
        self.conns.add(conn)
        if self.cfg.max_connections_per_address and conn.client[0] not in self.cfg.trusted_proxies:
            self.by_address.setdefault(conn.client[0], set()).add(conn)

    def _uncount(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        mine = self.by_address.get(conn.client[0])
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_address[conn.client[0]]

    def _shed(self, conn: _Conn) -> None:
        """Close an idle connection by ending its wait (its task closes the socket). A request
        that raced in before the wait ended is still served: see ``_read_head``."""
        conn.shed = True
        self.idle.unpark(conn)
        self._uncount(conn)
        if conn.idle_scope is not None:
            conn.idle_scope.cancel()

    async def accept_loop(self, lsock: trio.socket.SocketType, conns: trio.Nursery) -> None:
        while True:
            try:
                tsock, addr = await lsock.accept()  # a checkpoint even when it does not block
            except OSError as exc:
                if exc.errno in _ACCEPT_RESOURCE:
                    logger.error("accept failed (%s); retrying in 100 ms", exc)
                    await trio.sleep(0.1)
                elif exc.errno not in _ACCEPT_TRANSIENT:
                    raise
                continue
            conn = self._admit(tsock, addr)
            if conn is not None:
                conns.start_soon(self.serve_conn, conn)

    def _refuse(self, raw: socket.socket, answer: bytes, why: str) -> None:
        now = trio.current_time()
        if now - self.refused_logged_at > 10:
            self.refused_logged_at = now
            logger.warning("%s: refusing new connections (503)", why)
        try:
            raw.setblocking(False)
            if self.cfg.ssl_context is None:
                raw.send(answer)  # best effort: one try, never waits (no TLS handshake for it)
        except OSError:
            pass
        raw.close()

    def _admit(self, tsock: trio.socket.SocketType, addr: tuple) -> _Conn | None:
        """Take over an accepted socket: make room by shedding idle connections past
        ``max_connections`` (or past the per-address cap, that address's own), or refuse it at
        the hard limit; the ``_Conn`` to serve, or None."""
        try:
            raw = socket.socket(fileno=tsock.detach())
        except OSError:
            return None
        cfg = self.cfg
        client = (str(addr[0]), int(addr[1])) if len(addr) >= 2 else ("", 0)
        mine = self.by_address.get(client[0])
        if cfg.max_connections_per_address and mine is not None \
                and len(mine) >= cfg.max_connections_per_address:
            idle_mine = [c for c in mine if c in self.idle]
            if not idle_mine:
                self._refuse(raw, _REFUSED_ADDRESS,
                             f"{len(mine)} connections from {client[0]}, none idle")
                return None
            self._shed(idle_mine[0])
        decision = admit(len(self.conns), len(self.idle), cfg.max_connections, self.hard_limit)
        for _ in range(decision.shed):
            oldest = self.idle.pop_oldest()
            if oldest is not None:
                self._shed(oldest)
        if not decision.keep:
            self._refuse(raw, _REFUSED, f"{len(self.conns)} connections open, none idle")
            return None
        try:
            raw.setblocking(False)
            if raw.family in (socket.AF_INET, socket.AF_INET6):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            raw.close()
            return None
        conn: _Conn
        if cfg.ssl_context is not None:
            stream = trio.SSLStream(trio.SocketStream(trio.socket.from_stdlib_socket(raw)),
                                    cfg.ssl_context, server_side=True, https_compatible=True)
            conn = _TlsConn(raw, client, cfg, stream)
        else:
            conn = _Conn(raw, client, cfg)
        self._count(conn)
        return conn

    async def serve_conn(self, conn: _Conn) -> None:
        try:
            if await self._handshake(conn):
                linger = await self._conn_loop(conn)
                if linger and not conn.broken:
                    await conn.linger_close(linger)
        except _ConnGone:
            pass
        except Exception:
            logger.exception("connection from %s failed", conn.client)
        finally:
            self._uncount(conn)
            self.idle.unpark(conn)
            conn.close()

    async def _handshake(self, conn: _Conn) -> bool:
        """TLS: the handshake, under its own deadline; sheddable like an idle connection (a
        half-open handshake holds nothing of a request). Plaintext: nothing to do."""
        if self.cfg.ssl_context is None:
            return True
        with trio.CancelScope() as cs:
            conn.idle_scope = cs
            self.idle.park(conn)
            ok = await conn.handshake()
        conn.idle_scope = None
        self.idle.unpark(conn)
        return ok and not cs.cancelled_caught and not self.closing

    async def _conn_loop(self, conn: _Conn) -> int:
        """Serve requests until the connection ends; how many bytes of input that may still be
        coming to drop before closing (0: none)."""
        cfg = self.cfg
        reader = HeadReader(cfg.max_header_bytes, cfg.max_header_count, cfg.max_request_line)
        first = True
        while True:
            if self.closing:
                return 0
            if not conn.waited:
                # Nothing blocked since the last request (pipelining, instant handler): yield once
                # so one busy connection cannot starve the others.
                await trio.lowlevel.checkpoint()
            conn.waited = False
            if conn.buf and conn.unsent_bytes() > PIPELINE_UNSENT_LIMIT:
                # Pipelined requests from a client that does not read its answers: serve the next
                # only once it has read some, so it cannot make us work at full speed for nothing.
                if not await self._wait_drained(conn):
                    return 0
            try:
                head = reader(conn.buf) if conn.buf else None
                if head is None:
                    head = await self._read_head(conn, reader, first)
                    if head is None:
                        return 0
                first = False
                path, query = split_target(head.target)
                query_first, query_items = parse_query(query)
            except ProtocolError as exc:
                logger.debug("protocol error from %s: %s", conn.client, exc.message)
                await self._send_simple(conn, exc.status_hint, exc.message)
                return LINGER_AFTER_PROTOCOL_ERROR
            conn.begin_request()
            body = Body(conn, None if head.chunked else head.content_length,
                        expect_continue=head.expect_continue)
            request = Request(head.method, head.target, path, query_first, query_items,
                              Headers(head.headers, head.first), conn.client, body)
            keep = await self._respond(conn, head, request)
            if not keep:
                return 0 if body.done else LINGER_BYTES

    async def _wait_drained(self, conn: _Conn) -> bool:
        """Wait (polling, backing off to 100 ms) until the peer has read its answers down to
        ``PIPELINE_UNSENT_LIMIT``; False if it does not within ``send_timeout_s``."""
        deadline = trio.current_time() + self.cfg.send_timeout_s
        pause = 0.005
        while conn.unsent_bytes() > PIPELINE_UNSENT_LIMIT:
            if trio.current_time() > deadline or self.closing:
                return False
            await trio.sleep(pause)
            pause = min(pause * 2, 0.1)
        conn.waited = True
        return True

    async def _read_head(self, conn: _Conn, reader: HeadReader, first: bool) -> RequestHead | None:
        """Receive until a head is complete; None on EOF or timeout (408 sent if a head had begun).

        The deadline runs from the accept for the first head and from the first byte (an empty
        line counts) for later ones; it is checked after every receive, and every receive that
        did not block is followed by a checkpoint, so a flood of bytes cannot hold the loop.
        """
        cfg = self.cfg
        buf = conn.buf
        deadline = conn.accepted_at + cfg.head_timeout_s if first else None
        if deadline is None and (reader.started or buf):
            deadline = trio.current_time() + cfg.head_timeout_s
        while True:
            try:
                data = conn.poll(cfg.recv_size)
            except OSError:
                return None
            if data is None:
                if deadline is None:
                    wait_until = trio.current_time() + cfg.keep_alive_timeout_s
                else:
                    wait_until = deadline
                # Nothing of a request received: may be shed to make room.
                idle = not buf and not reader.started
                if idle and self.closing:
                    return None
                with trio.move_on_at(wait_until) as cs:
                    if idle:
                        conn.idle_scope = cs
                        self.idle.park(conn)
                    await conn.wait_input()
                if idle:
                    conn.idle_scope = None
                    self.idle.unpark(conn)
                    if conn.shed and not cs.cancelled_caught:
                        # Input arrived just before the shedding: serve it; count it again.
                        conn.shed = False
                        self._count(conn)
                conn.waited = True
                if cs.cancelled_caught:
                    if buf or reader.started:
                        await self._send_simple(conn, 408, "Request head timeout")
                    return None
                continue
            if not data:
                return None
            now = trio.current_time()
            if deadline is None:
                deadline = now + cfg.head_timeout_s
            buf += data
            head = reader(buf)
            if head is not None:
                return head
            if now > deadline:
                await self._send_simple(conn, 408, "Request head timeout")
                return None
            if not conn.waited:
                await trio.lowlevel.checkpoint()  # bytes keep coming without a wait: yield
            conn.waited = False

    async def _respond(self, conn: _Conn, head: RequestHead, request: Request) -> bool:
        """Run the handler and send its response; True if the connection stays open."""
        body = request.body
        try:
            response = await self.handler(request)
        except Exception:
            if conn.broken:
                logger.debug("handler failed after the client went away", exc_info=True)
                return False
            logger.exception("unhandled error in handler for %s %s", head.method, head.target.split("?", 1)[0])
            await self._send_simple(conn, 500, "Internal Server Error")
            return False
        close = not head.keep_alive or self.closing or body.failed or conn.broken
        if not close and not body.done:
            close = not await self._drain(body, response.status)
        keep_alive_1_0 = not close and head.version == "HTTP/1.0"
        close |= await self._send_response(conn, response, head.method == "HEAD", close,
                                           keep_alive_1_0)
        return not close

    async def _drain(self, body: Body, status: int) -> bool:
        """Read and drop what the handler left of the body; False if the connection must close.

        After an error answer only a small declared rest is drained, within a short deadline:
        the client gets its 401/404/413 at once, and no one keeps us reading a body we refused.
        """
        if body.continue_pending:
            return False  # the client holds its body back until 100 Continue; it will not come now
        cfg = self.cfg
        if status < 400:
            limit, seconds = cfg.drain_limit, None
        else:
            remaining = body.remaining
            if remaining is None or remaining > cfg.error_drain_limit:
                return False
            limit, seconds = cfg.error_drain_limit, cfg.error_drain_s
        try:
            if seconds is None:
                return await body.drain(limit)
            with trio.move_on_after(seconds):
                return await body.drain(limit)
            return False
        except BadRequestError:
            return False

    async def _send_response(self, conn: _Conn, response: Response, is_head: bool, close: bool,
                             keep_alive_1_0: bool) -> bool:
        """Send a handler's response; True if the connection must close afterwards."""
        status, body = response.status, response.body
        if isinstance(body, (bytes, bytearray, memoryview)):
            length = len(body) if not isinstance(body, memoryview) else body.nbytes
            declared = length if response.content_length is None else response.content_length
            try:
                head = serialize_response_head(status, response.headers, declared, close,
                                               keep_alive_1_0)
            except (ValueError, TypeError):  # CR/LF inside, or a value that is not a str
                logger.exception("invalid response headers: %r", response.headers)
                await self._send_simple(conn, 500, "Internal Server Error")
                return True
            if is_head or not body_allowed(status) or not length:
                await conn.send_all(head)
            elif length <= _SMALL:
                await conn.send_all(head + body)
            else:
                await conn.send_all(head)
                await conn.send_all(body)
            # A bytes body shorter than its declared length (outside HEAD) leaves the client waiting.
            return length != declared and not is_head and body_allowed(status)
        return await self._send_iterable(conn, response, is_head, close, keep_alive_1_0)

    async def _send_iterable(self, conn: _Conn, response: Response, is_head: bool, close: bool,
                             keep_alive_1_0: bool) -> bool:
        body = response.body
        try:
            declared = response.content_length
            if declared is None:
                logger.error("iterable response body without content_length (status %d)",
                             response.status)
                await self._send_simple(conn, 500, "Internal Server Error")
                return True
            try:
                head = serialize_response_head(response.status, response.headers, declared, close,
                                               keep_alive_1_0)
            except (ValueError, TypeError):  # CR/LF inside, or a value that is not a str
                logger.exception("invalid response headers: %r", response.headers)
                await self._send_simple(conn, 500, "Internal Server Error")
                return True
            if is_head or not body_allowed(response.status):
                await conn.send_all(head)
                return False
            pending: bytes | None = head  # held back so a small first chunk joins it
            sent = 0
            try:
                async for chunk in body:
                    if type(chunk) is FileSegment:
                        if pending is not None:
                            await conn.send_all(pending)
                            pending = None
                        n = await conn.sendfile(chunk, declared - sent)
                        if n < chunk.length:
                            sent += n
                            break  # short file or too long for the declared length
                    else:
                        n = len(chunk) if not isinstance(chunk, memoryview) else chunk.nbytes
                        if sent + n > declared:
                            break
                        if pending is not None:
                            if n <= _SMALL:
                                await conn.send_all(pending + chunk)
                            else:
                                await conn.send_all(pending)
                                await conn.send_all(chunk)
                            pending = None
                        elif n:
                            await conn.send_all(chunk)
                    sent += n
            except _ConnGone:
                raise
            except Exception:  # a store iterator failing mid-body (corrupt record, I/O error)
                logger.exception("response body failed after %d of %d bytes", sent, declared)
                if pending is not None:
                    await self._send_simple(conn, 500, "Internal Server Error")
                return True
            if pending is not None:
                await conn.send_all(pending)
            if sent != declared:
                # The only way to tell the client the body is bad once the head is out.
                logger.warning("response body ended at %d of %d bytes; closing", sent, declared)
                return True
            return False
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_simple(self, conn: _Conn, status: int, text: str) -> None:
        """A small text response that ends the connection; a gone peer is ignored."""
        data = text.encode() + b"\n"
        head = serialize_response_head(status, [("content-type", "text/plain; charset=utf-8")],
                                       len(data), close=True)
        try:
            await conn.send_all(head + data)
        except _ConnGone:
            conn.broken = True


async def serve_http(handler: Handler, *, host: str | Sequence[str] | None, port: int,
                     config: HttpConfig | None = None, shutdown: trio.Event,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``handler`` over HTTP/1.1 until ``shutdown`` is set, then drain gracefully.

    ``host`` is one address or name (IPv4 or IPv6; ``None``/``""`` = all interfaces) or a list of
    them; ``port`` may be 0. ``task_status.started`` receives the ``(host, port)`` pairs actually
    bound. On shutdown: listeners close, idle connections are cancelled, requests in flight get
    ``graceful_timeout_s`` (their responses carry ``Connection: close``), then the rest is cancelled.
    """
    cfg = config or HttpConfig()
    hosts = [host] if host is None or isinstance(host, str) else list(host)
    listeners = []
    try:
        for h in hosts:
            listeners += await trio.open_tcp_listeners(port, host=h or None)
        bound = [tuple(ln.socket.getsockname()[:2]) for ln in listeners]
        server = _Server(handler, cfg)
        async with trio.open_nursery() as conns:
            async with trio.open_nursery() as acceptors:
                for ln in listeners:
                    acceptors.start_soon(server.accept_loop, ln.socket, conns)
                task_status.started(bound)
                logger.info("listening on %s", ", ".join(f"{h}:{p}" for h, p in bound))
                await shutdown.wait()
                acceptors.cancel_scope.cancel()
            for ln in listeners:
                ln.socket.close()  # new connections are refused from here on
            server.begin_shutdown()
            conns.cancel_scope.deadline = trio.current_time() + cfg.graceful_timeout_s
    finally:
        for ln in listeners:
            ln.socket.close()
