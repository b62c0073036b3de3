"""The HTTP/1.1 server on Trio: listeners, the per-connection loop, keep-alive, shutdown.

Owns: binding, accepting (past ``max_connections`` each newcomer sheds the longest-idle
connection, up to a hard limit; past ``max_connections_per_address`` for one address the same
within that address; policy in ``admission.py``), the request loop of a connection (heads,
pipelining, handing bodies to handlers, sending responses, ``sendfile`` for ``FileSegment``),
every phase's deadline but the body's, draining unread bodies, the fair-turn dispatcher's
lifetime, the graceful drain on shutdown, and last-resort 500s.
Must not: route, authenticate, know ReductStore headers or CORS (``edge/http/app.py`` does), parse bytes
itself (``protocol.py`` does), do socket or TLS I/O itself (``connection.py`` does), or catch
``trio.Cancelled``.

No client can starve another (a hostile LAN is the normal case for an appliance):

* every step over client bytes is charged to its connection (``fairness.py``): a receive, a
  head (by its size, *before* it is parsed), a chunk-size line, a request of a pipelined burst,
  a lingering receive; past a slice of work the connection waits for a fair turn, and the
  turns go out one per scheduler pass. So fifty flooding connections cost a polite client about
  one slice of waiting per pass, not fifty; a client that sends a request and waits for the
  answer starts every request with a fresh slice and never queues;
* a TLS handshake's expensive step runs on a turn too (a burst of handshakes, one per pass);
* every phase has a *total* deadline: the head from its first byte (empty lines included; the
  first head from the accept), the TLS handshake, keep-alive idle, and the body: a per-receive
  timeout (``RS_IO_OPERATION_TIMEOUT``) plus a minimum rate after a grace period, like Apache's
  ``RequestReadTimeout body=20,MinRate=500``;
* an error answer (status >= 400) to a request whose body is still unread goes out at once, and
  the connection is closed unless the rest of the body is small and already declared
  (``error_drain_limit``); a 401 never waits for a body;
* connections per address are capped (``max_connections_per_address``) next to the global cap;
  trusted proxies (``EDGE_TRUSTED_PROXIES``) are exempt, since one proxy carries many clients;
* a pipelining client that does not read its answers waits once ``PIPELINE_UNSENT_LIMIT`` of
  them are unread, so it cannot make us work at full speed for nothing.

Why not Hypercorn/h11 and trio streams: perf-limits.md section 2 measures ~1 ms of CPU per request
for Hypercorn and 0.2-0.6 ms for h11 on trio, against 0.05-0.15 ms for bare trio sockets. So each
connection drives a plain non-blocking stdlib socket: try the syscall first, and only when it
would block, park in ``trio.lowlevel.wait_readable``/``wait_writable`` (under a timeout scope that
exists only while blocked).

Skeleton after Hypercorn's ``worker_serve``: a nursery for connections around a nursery for
acceptors; ``task_status.started(bound addresses)``; on ``shutdown`` the acceptors stop, idle
keep-alive connections are cancelled, and in-flight requests get ``graceful_timeout_s`` to finish.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence

import trio

from edge.errors import BadRequestError

from .admission import SMALL_HEAD, IdleQueue, LargeHeads, admit
from .connection import (
    LINGER_AFTER_PROTOCOL_ERROR, LINGER_BYTES, Conn, ConnGone, HttpConfig, TlsConn,
)
from .fairness import REQUEST, STEP, Turns
from .protocol import (
    HeadReader, ProtocolError, RequestHead, body_allowed, parse_query, serialize_response_head,
    split_target,
)
from .types import Body, FileSegment, Headers, Request, Response

__all__ = ["HttpConfig", "serve_http"]

logger = logging.getLogger("edge.http")

Handler = Callable[[Request], Awaitable[Response]]

_SMALL = 64 * 1024  # below this a body rides in the same send as the head (one syscall)
PIPELINE_UNSENT_LIMIT = 256 * 1024  # a client that does not read its answers waits past this
_ACCEPT_TRANSIENT = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN,
                     errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH,
                     errno.EOPNOTSUPP, errno.ENETUNREACH}
_ACCEPT_RESOURCE = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


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
        self.conns: set[Conn] = set()  # open and counted: accepted, not yet closed nor shed
        self.idle: IdleQueue[Conn] = IdleQueue()  # the sheddable ones, longest-idle first
        # Counted connections per client address (peers that are not trusted proxies).
        self.by_address: dict[str, set[Conn]] = {}
        self.closing = False
        self.refused_logged_at = -1e9
        self.turns = Turns()  # the fair-turn queue; serve_http runs its dispatcher
        slots = max(1, cfg.large_head_memory // max(cfg.max_header_bytes, 1))
        self.large_heads: LargeHeads[Conn] = LargeHeads(slots, max(1, slots // 4))

    def begin_shutdown(self) -> None:
        self.closing = True
        while (conn := self.idle.pop_oldest()) is not None:
            self._shed(conn)

    def _count(self, conn: Conn) -> None:
        self.conns.add(conn)
        if self.cfg.max_connections_per_address and conn.client[0] not in self.cfg.trusted_proxies:
            self.by_address.setdefault(conn.client[0], set()).add(conn)

    def _uncount(self, conn: Conn) -> None:
        self.conns.discard(conn)
        mine = self.by_address.get(conn.client[0])
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_address[conn.client[0]]

    def _shed(self, conn: Conn) -> None:
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

    def _admit(self, tsock: trio.socket.SocketType, addr: tuple) -> Conn | None:
        """Take over an accepted socket: make room by shedding idle connections past
        ``max_connections`` (or past the per-address cap, that address's own), or refuse it at
        the hard limit; the ``Conn`` to serve, or None."""
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
        conn: Conn
        if cfg.ssl_context is not None:
            try:
                tls = cfg.ssl_context.wrap_socket(raw, server_side=True,
                                                  do_handshake_on_connect=False)
            except (OSError, ValueError):
                raw.close()
                return None
            conn = TlsConn(tls, client, cfg, self.turns)
        else:
            conn = Conn(raw, client, cfg, self.turns)
        self._count(conn)
        return conn

    async def serve_conn(self, conn: Conn) -> None:
        try:
            if await self._handshake(conn):
                linger = await self._conn_loop(conn)
                if linger and not conn.broken:
                    await conn.linger_close(linger)
        except ConnGone:
            pass
        except Exception:
            logger.exception("connection from %s failed", conn.client)
        finally:
            self._uncount(conn)
            self.idle.unpark(conn)
            self.large_heads.release(conn)
            conn.close()

    async def _handshake(self, conn: Conn) -> bool:
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

    async def _conn_loop(self, conn: Conn) -> int:
        """Serve requests until the connection ends; how many bytes of input that may still be
        coming to drop before closing (0: none)."""
        cfg = self.cfg
        reader = HeadReader(cfg.max_header_bytes, cfg.max_header_count, cfg.max_request_line)
        first = True
        while True:
            if self.closing:
                return 0
            if conn.buf and conn.unsent_bytes() > PIPELINE_UNSENT_LIMIT:
                # Pipelined requests from a client that does not read its answers: serve the next
                # only once it has read some, so it cannot make us work at full speed for nothing.
                if not await self._wait_drained(conn):
                    return 0
            try:
                end = reader.find(conn.buf) if conn.buf else -1
                if end < 0:
                    end = await self._read_head(conn, reader, first)
                    if end < 0:
                        return 0
                first = False
                # Parsing costs about a unit per byte, the request itself a fixed share: both
                # are charged before the work, so a flood of big heads or of pipelined requests
                # waits for its turn first (a polite request never reaches the end of a slice).
                await conn.charge(end + REQUEST)
                head = reader.take(conn.buf, end)
                if len(conn.buf) <= SMALL_HEAD:
                    self.large_heads.release(conn)
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
            done = body.done
            # Let the head go before waiting for the next one: a 500 KB head is ~1 MB of strings,
            # and a connection should hold at most its receive buffer while it waits.
            del head, request, body
            if not keep:
                return 0 if done else LINGER_BYTES

    async def _wait_drained(self, conn: Conn) -> bool:
        """Wait (polling, backing off to 100 ms) until the peer has read its answers down to
        ``PIPELINE_UNSENT_LIMIT``; False if it does not within ``send_timeout_s``."""
        deadline = trio.current_time() + self.cfg.send_timeout_s
        pause = 0.005
        while conn.unsent_bytes() > PIPELINE_UNSENT_LIMIT:
            if trio.current_time() > deadline or self.closing:
                return False
            await trio.sleep(pause)
            pause = min(pause * 2, 0.1)
        return True

    async def _read_head(self, conn: Conn, reader: HeadReader, first: bool) -> int:
        """Receive until a head is complete: where it ends in ``conn.buf`` (``reader.find``);
        -1 on EOF or timeout (408 sent if a head had begun).

        The deadline runs from the accept for the first head and from the first byte (an empty
        line counts) for later ones; it is checked after every receive, and every receive is
        charged to the connection's fairness budget, so a flood of bytes cannot hold the loop.
        A real wait for a new request (nothing of it received yet) starts a fresh slice.
        """
        cfg = self.cfg
        buf = conn.buf
        deadline = conn.accepted_at + cfg.head_timeout_s if first else None
        if deadline is None and (reader.started or buf):
            deadline = trio.current_time() + cfg.head_timeout_s
        while True:
            if len(buf) >= SMALL_HEAD and not self.large_heads.holds(conn):
                if not await self._reserve_large_head(conn, deadline):
                    return -1
            try:
                data = conn.poll(cfg.recv_size)
            except OSError:
                return -1
            if data is None:
                if deadline is None:
                    wait_until = trio.current_time() + cfg.keep_alive_timeout_s
                else:
                    wait_until = deadline
                # Nothing of a request received: may be shed to make room.
                idle = not buf and not reader.started
                if idle and self.closing:
                    return -1
                with trio.move_on_at(wait_until) as cs:
                    if idle:
                        conn.idle_scope = cs
                        self.idle.park(conn)
                    await conn.wait_input()
                if idle:
                    conn.idle_scope = None
                    self.idle.unpark(conn)
                    conn.budget.reset()  # it had nothing for us to do: a fresh slice
                    if conn.shed and not cs.cancelled_caught:
                        # Input arrived just before the shedding: serve it; count it again.
                        conn.shed = False
                        self._count(conn)
                if cs.cancelled_caught:
                    if buf or reader.started:
                        await self._send_simple(conn, 408, "Request head timeout")
                    return -1
                continue
            if not data:
                return -1
            now = trio.current_time()
            if deadline is None:
                deadline = now + cfg.head_timeout_s
            buf += data
            await conn.charge(len(data) + STEP)
            end = reader.find(buf)
            if end >= 0:
                return end
            if now > deadline:
                await self._send_simple(conn, 408, "Request head timeout")
                return -1

    async def _reserve_large_head(self, conn: Conn, deadline: float | None) -> bool:
        """Wait (polling, backing off to 100 ms, not reading) for a large-head reservation;
        False, with a 408 sent, if the head deadline passes first."""
        trusted = conn.client[0] in self.cfg.trusted_proxies
        pause = 0.005
        until = deadline if deadline is not None else trio.current_time() + self.cfg.head_timeout_s
        while not self.large_heads.reserve(conn, conn.client[0], trusted):
            if trio.current_time() > until or self.closing:
                await self._send_simple(conn, 408, "Request head timeout")
                return False
            await trio.sleep(pause)
            pause = min(pause * 2, 0.1)
        return True

    async def _respond(self, conn: Conn, head: RequestHead, request: Request) -> bool:
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

    async def _send_response(self, conn: Conn, response: Response, is_head: bool, close: bool,
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
        return await self._send_iterable(conn, response, body, is_head, close, keep_alive_1_0)

    async def _send_iterable(self, conn: Conn, response: Response,
                             body: AsyncIterable[bytes | memoryview | FileSegment], is_head: bool, close: bool,
                             keep_alive_1_0: bool) -> bool:
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
            except ConnGone:
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

    async def _send_simple(self, conn: Conn, status: int, text: str) -> None:
        """A small text response that ends the connection; a gone peer is ignored."""
        data = text.encode() + b"\n"
        head = serialize_response_head(status, [("content-type", "text/plain; charset=utf-8")],
                                       len(data), close=True)
        try:
            await conn.send_all(head + data)
        except ConnGone:
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
        async with trio.open_nursery() as dispatcher:
            # The fair-turn dispatcher outlives every connection (they may wait on it until
            # the last one ends) and is cancelled once they are all gone.
            dispatcher.start_soon(server.turns.run)
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
            dispatcher.cancel_scope.cancel()
    finally:
        for ln in listeners:
            ln.socket.close()
