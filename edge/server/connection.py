"""One accepted connection of the HTTP front: plaintext (``Conn``) or TLS (``TlsConn``).

Owns: the socket I/O of one connection (non-blocking receives and sends, ``sendfile``, TLS
record I/O through a non-blocking ``ssl.SSLSocket``), the body's deadlines (per receive and
minimum rate), the fairness budget of the connection (``fairness.Budget``: every step over its
bytes is charged), lingering close, and ``HttpConfig`` (the typed limits of the front).
Must not: parse HTTP (``protocol.py``), decide what to answer or when to close (``front.py``),
or catch ``trio.Cancelled``.

Transport primitives (``TlsConn`` overrides them): ``poll(n)`` returns bytes without waiting,
``None`` if it would block (``b""`` at EOF; ``OSError`` on a reset); ``wait_input()`` parks
until ``poll`` may have something. Everything else is written in terms of these two.

Why a non-blocking ``ssl.SSLSocket`` and not ``trio.SSLStream`` (measured, ``bench/tls.py``):
``SSLStream`` hands out one 16 KiB TLS record per ``receive_some``, each a full trip through
the scheduler, with a memory-BIO copy in and out; the store then paid its per-call cost per
record too (10 MB writes ran at 0.16x plaintext). Driving the same OpenSSL engine the way the
plaintext socket is driven (try the call, park in ``wait_readable``/``wait_writable`` only when
it would block) drains every record the kernel holds in one go, and OpenSSL reads and writes
the socket itself (no BIO copies). It also makes kernel TLS possible: with
``ssl.OP_ENABLE_KTLS`` (Python 3.12+) and the kernel's ``tls`` module, OpenSSL hands the
record encryption to the kernel, and then ``sendfile`` stays zero-copy over TLS too
(``TlsConn.kernel_encrypts``, asked of the kernel itself, never assumed).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import ssl
import struct
import termios
from dataclasses import dataclass, field

import trio

from edge.errors import BadRequestError

from .client_address import TrustedProxies
from .fairness import STEP, Budget, Turns
from .protocol import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_REQUEST_LINE
from .types import FileSegment


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
    # Request heads over 64 KiB (batch writes with many records) share this much memory while
    # they are incomplete, in reservations of max_header_bytes (at least one; one address at
    # most a quarter unless it is a trusted proxy); past it a connection stops reading until
    # there is room (its head deadline still runs). See admission.LargeHeads.
    large_head_memory: int = 16 << 20
    drain_limit: int = 1 << 20  # unread body left by a handler: drained up to this, else close
    error_drain_limit: int = 64 * 1024  # the same after an error answer (>= 400), else close
    error_drain_s: float = 2.0  # ... and it must arrive within this
    linger_s: float = 2.0  # after an early close, read and drop input this long (avoids RST)
    recv_size: int = 64 * 1024


class ConnGone(Exception):
    """The peer went away or stopped reading; nothing more can be sent."""


LINGER_BYTES = 64 << 20  # unread body dropped after an early answer, at most (and linger_s)
LINGER_AFTER_PROTOCOL_ERROR = 256 * 1024  # after a framing error: a broken or hostile client
_SCRATCH = bytearray(256 * 1024)  # dropped input and TLS records land here (one buffer for all:
# the event loop is one thread and no await happens while it is in use)
_SCRATCH_VIEW = memoryview(_SCRATCH)
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)  # same number as SIOCOUTQ on Linux
_SENDFILE_FALLBACK = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK}
_SOL_TLS, _TLS_TX = 282, 1  # linux/tls.h: set once the kernel holds the transmit keys

_BODY_TIMEOUT = "Timeout while receiving data"
_BODY_TOO_SLOW = "Request body is arriving too slowly"


class Conn:
    """One accepted plaintext socket: the byte source of request bodies and the sink of responses."""

    __slots__ = ("raw", "fd", "buf", "client", "cfg", "idle_scope", "shed", "broken",
                 "accepted_at", "body_started_at", "body_bytes", "budget")

    def __init__(self, raw: socket.socket, client: tuple[str, int], cfg: HttpConfig, turns: Turns):
        self.raw = raw
        self.fd = raw.fileno()
        self.buf = bytearray()
        self.client = client
        self.cfg = cfg
        # Set while parked with nothing of a request received (new, or between requests):
        # cancelling it closes the connection, and nothing else may be cut from outside.
        self.idle_scope: trio.CancelScope | None = None
        self.shed = False  # closed to make room (or for shutdown) while idle
        self.broken = False  # input is unusable (reset, timeout, EOF mid-body)
        self.accepted_at = trio.current_time()
        self.body_started_at = -1.0  # first body receive of the current request (-1: none yet)
        self.body_bytes = 0  # body bytes received for the current request
        self.budget = Budget(turns)

    # --- fairness

    async def charge(self, units: int) -> None:
        """Count work done for this client; past a slice, wait for a turn (``fairness.py``)."""
        await self.budget.charge(units)

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
            if cs.cancelled_caught:
                self.broken = True
                raise BadRequestError(_BODY_TIMEOUT if trio.current_time() < rate_deadline
                                      else _BODY_TOO_SLOW)

    async def send_continue(self, data: bytes) -> None:
        try:
            await self.send_all(data)
        except ConnGone:
            self.broken = True
            raise BadRequestError("Connection closed while sending 100 Continue") from None

    # --- output

    async def _wait_writable(self) -> None:
        with trio.move_on_after(self.cfg.send_timeout_s) as cs:
            await trio.lowlevel.wait_writable(self.fd)
        if cs.cancelled_caught:
            raise ConnGone("send timeout")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raw = self.raw
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ConnGone(str(exc)) from None
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
                    raise ConnGone(str(exc)) from None

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
                    raise ConnGone(str(exc)) from None
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
        with trio.move_on_after(self.cfg.linger_s):
            while dropped < limit:
                try:
                    n = self.raw.recv_into(_SCRATCH)  # into one shared buffer: no allocation
                except BlockingIOError:
                    await self.wait_input()
                    continue
                except OSError:
                    return
                if not n:
                    return
                dropped += n
                await self.charge(n + STEP)  # a fast sender must not hold the loop

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


_TLS_SEND_PIECE = 1 << 20  # one SSL write (a send timeout and a fairness charge per piece)
_TLS_FILE_PIECE = 1 << 20  # file bytes read per pread for a TLS answer without kTLS
# Read buffers of TLS file answers: one per answer in flight (it is held across sends), a few
# kept for reuse; memory stays what one 1 MiB bytes object per answer in flight cost before.
_FILE_BUFFERS: list[bytearray] = []
_FILE_BUFFERS_KEPT = 8
_TLS_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


class TlsConn(Conn):
    """A TLS connection: the same interface over a non-blocking ``ssl.SSLSocket``.

    ``poll`` decrypts every record already in the kernel's buffer (up to the caller's limit and
    256 KiB) into one bytes object; a body reader therefore sees large pieces, as in plaintext.
    ``sendfile`` is ``os.sendfile`` when the kernel encrypts (kTLS), else ``pread`` + encryption
    in user space. Renegotiation is off (``tls.py``), so a read never has to wait for a write.
    """

    __slots__ = ("_eof", "kernel_encrypts")

    raw: ssl.SSLSocket

    def __init__(self, raw: ssl.SSLSocket, client: tuple[str, int], cfg: HttpConfig, turns: Turns):
        super().__init__(raw, client, cfg, turns)
        self._eof = False
        self.kernel_encrypts = False

    async def handshake(self) -> bool:
        """The whole handshake under its deadline. Its expensive step (the server's key share
        and signature) runs on a fair turn, once the ClientHello is here: a burst of handshakes
        costs one at a time per scheduler pass, never all of them in one."""
        raw = self.raw
        took_turn = False
        with trio.move_on_after(self.cfg.tls_handshake_timeout_s):
            while True:
                try:
                    if not took_turn:
                        await trio.lowlevel.wait_readable(self.fd)
                        await self.budget.turns.take()
                        took_turn = True
                    raw.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await trio.lowlevel.wait_readable(self.fd)
                except ssl.SSLWantWriteError:
                    await trio.lowlevel.wait_writable(self.fd)
                except (ssl.SSLError, OSError):
                    return False
            self.kernel_encrypts = _kernel_encrypts(raw)
            return True
        return False

    def poll(self, max_bytes: int) -> bytes | None:
        if self._eof:
            return b""
        raw = self.raw
        limit = min(max_bytes, len(_SCRATCH))
        got = 0
        while got < limit:
            try:
                n = raw.recv_into(_SCRATCH_VIEW[got:limit])
            except _TLS_WANT:
                break
            if not n:  # close_notify, or a bare close (ragged EOFs are suppressed)
                self._eof = True
                break
            got += n
        if got:
            return bytes(_SCRATCH_VIEW[:got])
        return b"" if self._eof else None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raw = self.raw
        total = len(data) if not isinstance(data, memoryview) else data.nbytes
        with memoryview(data) as view:
            view = view.cast("B")
            pos = 0
            while pos < total:
                piece = view[pos:pos + _TLS_SEND_PIECE]
                try:
                    # Without partial writes OpenSSL takes the whole piece or asks to be called
                    # again with the same one (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is set).
                    pos += raw.send(piece)
                except (ssl.SSLWantWriteError, BlockingIOError):
                    await self._wait_writable()
                    continue
                except ssl.SSLWantReadError:
                    await self._wait_writable()  # not with renegotiation off; never a busy loop
                    continue
                except OSError as exc:
                    raise ConnGone(str(exc)) from None
                if total > _TLS_SEND_PIECE:
                    await self.charge(len(piece))  # encryption is CPU: large answers take turns

    async def sendfile(self, seg: FileSegment, limit: int) -> int:
        if self.kernel_encrypts:
            return await Conn.sendfile(self, seg, limit)
        return await self._encrypt_file(seg.fd, seg.offset, min(seg.length, limit))

    async def _encrypt_file(self, fd: int, offset: int, left: int) -> int:
        """``pread`` into a reused buffer, each piece handed whole to OpenSSL: no bytes object
        per piece, one Python call per MiB (OpenSSL cuts it into 16 KiB records itself)."""
        buf = _FILE_BUFFERS.pop() if _FILE_BUFFERS else bytearray(_TLS_FILE_PIECE)
        sent = 0
        try:
            with memoryview(buf) as view:
                while left > 0:
                    n = os.preadv(fd, [view[:min(left, _TLS_FILE_PIECE)]], offset)
                    if not n:
                        break
                    await self.send_all(view[:n])
                    offset += n
                    left -= n
                    sent += n
        finally:
            if len(_FILE_BUFFERS) < _FILE_BUFFERS_KEPT:
                _FILE_BUFFERS.append(buf)
        return sent

    async def linger_close(self, limit: int = LINGER_BYTES) -> None:
        raw = self.raw
        try:
            raw.unwrap()  # sends close_notify; the peer's answer is not waited for
        except (ssl.SSLError, OSError, ValueError):
            pass
        try:
            # Drops the TLS state too: what still comes in is discarded undecrypted.
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            return
        await self._drop_input(limit)


def _kernel_encrypts(sock: ssl.SSLSocket) -> bool:
    """Whether the kernel holds this socket's transmit keys (kTLS): only then may plain
    ``sendfile`` write to it. Asked of the kernel, so a wrong guess cannot leak plaintext."""
    if not getattr(ssl, "OP_ENABLE_KTLS", 0):
        return False
    try:
        socket.socket.getsockopt(sock, _SOL_TLS, _TLS_TX, 64)
    except OSError:
        return False
    return True

