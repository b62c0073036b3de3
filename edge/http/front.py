"""The HTTP/1.1 server on Trio: listeners, the per-connection loop, keep-alive, shutdown.

Owns: binding, accepting (past ``max_connections`` each newcomer sheds the longest-idle
connection, up to a hard limit; policy in ``admission.py``), socket I/O for heads, bodies and
responses (``os.sendfile`` for ``FileSegment``), keep-alive/idle/head/body/send timeouts,
pipelining, draining unread bodies, the graceful drain on shutdown, and last-resort 500s.
Must not: route, authenticate, know ReductStore headers or CORS (``app.py`` does), parse bytes
itself (``protocol.py`` does), or catch ``trio.Cancelled``.

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
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from edge.errors import BadRequestError

from .admission import IdleQueue, admit
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
    send_timeout_s: float = 60.0  # each blocked send must make progress within this
    max_connections: int = 1024  # above it, each newcomer sheds the longest-idle connection
    max_connections_hard: int = 0  # 0 = 2 x max_connections; above it newcomers are refused
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_request_line: int = DEFAULT_MAX_REQUEST_LINE
    drain_limit: int = 1 << 20  # unread body left by a handler: drained up to this, else close
    linger_s: float = 2.0  # after an early close, read and drop input this long (avoids RST)
    recv_size: int = 64 * 1024


class _ConnGone(Exception):
    """The peer went away or stopped reading; nothing more can be sent."""


class _Conn:
    """One accepted socket: the byte source of request bodies and the sink of responses."""

    __slots__ = ("raw", "fd", "buf", "client", "cfg", "idle_scope", "shed", "waited", "broken",
                 "accepted_at")

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

    # --- ByteSource for Body

    async def recv(self, max_bytes: int) -> bytes:
        raw = self.raw
        while True:
            try:
                return raw.recv(max_bytes)
            except BlockingIOError:
                pass
            except OSError:
                self.broken = True
                raise BadRequestError("Connection reset while receiving data") from None
            with trio.move_on_after(self.cfg.body_timeout_s) as cs:
                await trio.lowlevel.wait_readable(self.fd)
            self.waited = True
            if cs.cancelled_caught:
                self.broken = True
                raise BadRequestError("Timeout while receiving data")

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

    async def send_all(self, data) -> None:
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

    async def linger_close(self) -> None:
        """Half-close, then drop input for a while: closing with unread input sends an RST,
        which can destroy the response the client has not read yet."""
        try:
            self.raw.shutdown(socket.SHUT_WR)
        except OSError:
            return
        dropped = 0
        with trio.move_on_after(self.cfg.linger_s):
            while dropped < (64 << 20):
                try:
                    data = self.raw.recv(1 << 20)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(self.fd)
                    continue
                except OSError:
                    return
                if not data:
                    return
                dropped += len(data)

    def close(self) -> None:
        trio.lowlevel.notify_closing(self.raw)
        self.raw.close()


_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            b"Too many connections")


class _Server:
    def __init__(self, handler: Handler, cfg: HttpConfig):
        self.handler = handler
        self.cfg = cfg
        self.hard_limit = max(cfg.max_connections_hard or 2 * cfg.max_connections,
                              cfg.max_connections)
        self.conns: set[_Conn] = set()  # open and counted: accepted, not yet closed nor shed
        self.idle: IdleQueue[_Conn] = IdleQueue()  # the sheddable ones, longest-idle first
        self.closing = False
        self.refused_logged_at = -1e9

    def begin_shutdown(self) -> None:
        self.closing = True
        while (conn := self.idle.pop_oldest()) is not None:
            self._shed(conn)

    def _shed(self, conn: _Conn) -> None:
        """Close an idle connection by ending its wait (its task closes the socket). A request
        that raced in before the wait ended is still served: see ``_read_head``."""
        conn.shed = True
        self.conns.discard(conn)
        if conn.idle_scope is not None:
            conn.idle_scope.cancel()

    async def accept_loop(self, lsock, conns: trio.Nursery) -> None:
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

    def _admit(self, tsock, addr) -> _Conn | None:
        """Take over an accepted socket: make room by shedding idle connections past
        ``max_connections``, or refuse it at the hard limit; the ``_Conn`` to serve, or None."""
        try:
            raw = socket.socket(fileno=tsock.detach())
        except OSError:
            return None
        decision = admit(len(self.conns), len(self.idle), self.cfg.max_connections,
                         self.hard_limit)
        for _ in range(decision.shed):
            self._shed(self.idle.pop_oldest())
        if not decision.keep:
            now = trio.current_time()
            if now - self.refused_logged_at > 10:
                self.refused_logged_at = now
                logger.warning("%d connections open, none idle: refusing new ones (503)",
                               len(self.conns))
            try:
                raw.setblocking(False)
                raw.send(_REFUSED)  # best effort: one try, never waits
            except OSError:
                pass
            raw.close()
            return None
        try:
            raw.setblocking(False)
            if raw.family in (socket.AF_INET, socket.AF_INET6):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            raw.close()
            return None
        conn = _Conn(raw, tuple(addr[:2]), self.cfg)
        self.conns.add(conn)
        return conn

    async def serve_conn(self, conn: _Conn) -> None:
        try:
            linger = await self._conn_loop(conn)
            if linger and not conn.broken:
                await conn.linger_close()
        except _ConnGone:
            pass
        except Exception:
            logger.exception("connection from %s failed", conn.client)
        finally:
            self.conns.discard(conn)
            self.idle.unpark(conn)
            conn.close()

    async def _conn_loop(self, conn: _Conn) -> bool:
        """Serve requests until the connection ends; True if it ends with input maybe unread."""
        cfg = self.cfg
        reader = HeadReader(cfg.max_header_bytes, cfg.max_header_count, cfg.max_request_line)
        first = True
        while True:
            if self.closing:
                return False
            if not conn.waited:
                # Nothing blocked since the last request (pipelining, instant handler): yield once
                # so one busy connection cannot starve the others.
                await trio.lowlevel.checkpoint()
            conn.waited = False
            try:
                head = reader(conn.buf) if conn.buf else None
                if head is None:
                    head = await self._read_head(conn, reader, first)
                    if head is None:
                        return False
                first = False
                path, query = split_target(head.target)
                query_first, query_items = parse_query(query)
            except ProtocolError as exc:
                logger.debug("protocol error from %s: %s", conn.client, exc.message)
                await self._send_simple(conn, exc.status_hint, exc.message)
                return True
            body = Body(conn, None if head.chunked else head.content_length,
                        expect_continue=head.expect_continue)
            request = Request(head.method, head.target, path, query_first, query_items,
                              Headers(head.headers, head.first), conn.client, body)
            keep = await self._respond(conn, head, request)
            if not keep:
                return not body.done

    async def _read_head(self, conn: _Conn, reader: HeadReader, first: bool) -> RequestHead | None:
        """Receive until a head is complete; None on EOF or timeout (408 sent if a head had begun)."""
        cfg = self.cfg
        raw, buf = conn.raw, conn.buf
        # The first head is timed from accept; later ones from their first byte.
        deadline = conn.accepted_at + cfg.head_timeout_s if first else None
        if deadline is None and reader.started:
            deadline = trio.current_time() + cfg.head_timeout_s
        while True:
            try:
                data = raw.recv(cfg.recv_size)
            except BlockingIOError:
                data = None
            except OSError:
                return None
            if data is None:
                if deadline is None:
                    wait_until = trio.current_time() + cfg.keep_alive_timeout_s
                else:
                    wait_until = deadline
                idle = not buf  # nothing of a request received: may be shed to make room
                if idle and self.closing:
                    return None
                with trio.move_on_at(wait_until) as cs:
                    if idle:
                        conn.idle_scope = cs
                        self.idle.park(conn)
                    await trio.lowlevel.wait_readable(conn.fd)
                if idle:
                    conn.idle_scope = None
                    self.idle.unpark(conn)
                    if conn.shed and not cs.cancelled_caught:
                        # Input arrived just before the shedding: serve it; count it again.
                        conn.shed = False
                        self.conns.add(conn)
                conn.waited = True
                if cs.cancelled_caught:
                    if buf:
                        await self._send_simple(conn, 408, "Request head timeout")
                    return None
                continue
            if not data:
                return None
            if deadline is None:
                deadline = trio.current_time() + cfg.head_timeout_s
            buf += data
            head = reader(buf)
            if head is not None:
                return head

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
            if body.continue_pending:
                # The client holds its body back until 100 Continue; it will not come now.
                close = True
            else:
                try:
                    close = not await body.drain(self.cfg.drain_limit)
                except BadRequestError:
                    close = True
        keep_alive_1_0 = not close and head.version == "HTTP/1.0"
        close |= await self._send_response(conn, response, head.method == "HEAD", close,
                                           keep_alive_1_0)
        return not close

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
