"""What a handler sees and returns: Request, Headers, Body, Response, FileSegment.

Owns: these value types and the request-body stream (Content-Length or chunked framing over a
byte source, ``100 Continue``, the per-chunk receive timeout, short-body errors).
Must not: own sockets or the connection loop (``front.py`` implements the byte source), parse
heads (``protocol.py``), know routes or storage.

Why Body reads hand out the bytes objects returned by ``socket.recv`` as they are: a record body is
written to disk as received, and every copy of an 8 MiB batch costs ~1.4 ms (perf-limits.md
section 2, h11 vs raw trio). Bytes left in the head buffer are served first, then the socket is
asked for at most what the body still owes, so a pipelined request is never read into a body.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Protocol, final

import trio

from edge.errors import BadRequestError, PayloadTooLargeError

from .fairness import STEP, Budget, Turns
from .protocol import CONTINUE, ChunkedDecoder, ProtocolError

SHORT_BODY = "Content is shorter than expected: no more data to read"


class Headers:
    """Case-insensitive multi-dict over the request headers, in wire order.

    ``get`` returns the first value of a name; ``get_all`` every value; ``items()`` the
    ``(lower-case name, value)`` pairs. Built from the parser's list without copying it.
    """

    __slots__ = ("_items", "_first")

    def __init__(self, items: list[tuple[str, str]] | None = None,
                 first: dict[str, str] | None = None):
        self._items = items if items is not None else []
        # dict() keeps the last of equal keys; reversing makes that the first one on the wire.
        # The head parser has built this already and passes it in.
        self._first = first if first is not None else dict(reversed(self._items))

    @classmethod
    def from_pairs(cls, pairs) -> Headers:
        """(name, value) pairs or a mapping, names in any case (for tests and internal use)."""
        if hasattr(pairs, "items"):
            pairs = pairs.items()
        return cls([(n.lower(), v) for n, v in pairs])

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._first.get(name)
        if value is None:
            value = self._first.get(name.lower(), default)
        return value

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self._items if n == name]

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._first or name.lower() in self._first)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self):
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class ByteSource(Protocol):
    """What a Body reads from; ``front.py``'s connection implements it.

    ``buf`` holds bytes already received (the tail of the head read). ``recv(n)`` returns at most
    ``n`` fresh bytes, ``b""`` at EOF, and raises ``BadRequestError`` on a timeout or a reset.
    ``send_continue()`` writes the interim ``100 Continue``. ``charge(units)`` counts the work
    a piece of the body caused against the connection's fairness budget (``fairness.py``) and
    waits for a turn once a slice is spent: the one way a body reader yields to others.
    """

    buf: bytearray

    async def recv(self, max_bytes: int) -> bytes: ...

    async def send_continue(self, data: bytes) -> None: ...

    async def charge(self, units: int) -> None: ...


class _MemorySource:
    """A finished body held in memory (tests, internal requests)."""

    def __init__(self, data: bytes):
        self.buf = bytearray(data)
        self._budget = Budget(_NO_DISPATCHER)

    async def recv(self, max_bytes: int) -> bytes:
        return b""

    async def send_continue(self, data: bytes) -> None:
        pass

    async def charge(self, units: int) -> None:
        await self._budget.charge(units)


_NO_DISPATCHER = Turns()  # never run: a turn is a plain checkpoint


class BodyReads:
    """``read_exactly``/``read_all``/``discard`` in terms of ``receive_some``: one implementation
    for every body stream (the socket ``Body`` and decoded ``Content-Encoding`` bodies)."""

    __slots__ = ()

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes (``n`` may be less than the body); a short body raises."""
        parts = [b""]
        got = 0
        while got < n:
            data = await self.receive_some(n - got)
            if not data:
                raise BadRequestError(SHORT_BODY)
            parts.append(data)
            got += len(data)
        return parts[-1] if len(parts) <= 2 else b"".join(parts)

    async def read_all(self, limit: int) -> bytes:
        """The whole (rest of the) body; ``PayloadTooLargeError`` if it exceeds ``limit`` bytes."""
        parts = [b""]
        got = 0
        while data := await self.receive_some():
            got += len(data)
            if got > limit:
                raise PayloadTooLargeError(f"Request body is larger than {limit} bytes")
            parts.append(data)
        return parts[-1] if len(parts) <= 2 else b"".join(parts)

    async def discard(self) -> None:
        """Receive and drop the rest of the body."""
        while await self.receive_some():
            pass


class Body(BodyReads):
    """The request body as a stream. ``length`` is the Content-Length, ``None`` when chunked.

    One reader at a time (a handler). The first receive sends ``100 Continue`` if the client
    asked for it and has not started sending. Once the body is complete every receive returns
    ``b""``. A premature EOF or a receive timeout raises ``BadRequestError`` and poisons the
    connection (``failed``), so the front closes it after the response.
    """

    __slots__ = ("length", "_src", "_left", "_decoder", "_expect", "failed", "_steps", "received")

    def __init__(self, src: ByteSource, length: int | None, *, expect_continue: bool = False):
        self.length = length
        self._src = src
        self._left = length if length is not None else -1
        self._decoder = ChunkedDecoder() if length is None else None
        self._expect = expect_continue
        self.failed = False
        self._steps = 0  # decoder steps already charged
        self.received = 0  # payload bytes handed out so far (ingress accounting)

    @classmethod
    def from_bytes(cls, data: bytes = b"", *, chunked: bool = False) -> Body:
        """A complete body in memory; with ``chunked`` it is given already chunk-encoded."""
        return cls(_MemorySource(data), None if chunked else len(data))

    @property
    def done(self) -> bool:
        """Whether the whole body has been received (the connection can serve the next request)."""
        return self._left == 0 if self._decoder is None else self._decoder.done

    @property
    def remaining(self) -> int | None:
        """Bytes still owed with Content-Length; ``None`` when chunked and not done."""
        if self._decoder is None:
            return self._left
        return 0 if self._decoder.done else None

    @property
    def continue_pending(self) -> bool:
        """The client waits for ``100 Continue`` before sending, and it was never sent."""
        return self._expect

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        src = self._src
        if self._expect:
            self._expect = False
            if not src.buf and not self.done:
                await src.send_continue(CONTINUE)
        if self._decoder is not None:
            return await self._receive_chunked(self._decoder, max_bytes)
        left = self._left
        if left <= 0:
            return b""
        buf = src.buf
        if buf:
            n = len(buf)
            if n <= left and n <= max_bytes:
                data = bytes(buf)
                buf.clear()
            else:
                n = min(n, left, max_bytes)
                data = bytes(buf[:n])
                del buf[:n]
        else:
            # At most what the body still owes: the next request stays in the kernel buffer.
            data = await src.recv(min(left, max_bytes))
            if not data:
                self._fail()
        self._left = left - len(data)
        self.received += len(data)
        await src.charge(len(data) + STEP)
        return data

    async def _receive_chunked(self, dec: ChunkedDecoder, max_bytes: int) -> bytes:
        src = self._src
        buf = src.buf
        while True:
            try:
                data = dec.next_data(buf, max_bytes)
            except ProtocolError as exc:
                # A handler maps edge errors to statuses; a broken chunk is the client's bad request.
                self.failed = True
                raise BadRequestError(exc.message) from None
            # Every chunk-size line is a step of work, whatever the bytes: 1-byte chunks pay per chunk.
            steps, self._steps = dec.steps - self._steps, dec.steps
            if data is not None:
                self.received += len(data)
                await src.charge(len(data) + STEP * (steps + 1))
                return data
            if dec.in_data and not buf:
                data = await src.recv(min(dec.chunk_left, max_bytes))
                if not data:
                    self._fail()
                dec.consumed_direct(len(data))
                self.received += len(data)
                await src.charge(len(data) + STEP * (steps + 1))
                return data
            more = await src.recv(65536)
            if not more:
                self._fail()
            buf += more
            await src.charge(len(more) + STEP * (steps + 1))

    def _fail(self):
        self.failed = True
        raise BadRequestError(SHORT_BODY)

    async def read_all(self, limit: int) -> bytes:
        """As ``BodyReads.read_all``, refusing a declared length over ``limit`` before reading."""
        if self._decoder is None and self._left > limit:
            raise PayloadTooLargeError(f"Request body is larger than {limit} bytes")
        return await BodyReads.read_all(self, limit)

    async def drain(self, limit: int) -> bool:
        """Drop up to ``limit`` more bytes; True if the body is now complete (used by the front)."""
        if self._decoder is None and self._left > limit:
            return False
        dropped = 0
        while not self.done:
            dropped += len(await self.receive_some())
            if dropped > limit:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request authenticated as: set by ``context.authorize``, read by the audit hook."""

    token_name: str
    client_ip: str | None


@dataclass(slots=True)
class Request:
    method: str  # "GET"
    target: str  # raw request target
    path: str  # percent-decoded path, no query
    query: dict[str, str]  # first value per key, percent-decoded ("+" -> " ")
    query_items: list[tuple[str, str]]
    headers: Headers
    client: tuple[str, int]  # the TCP peer
    body: Body = field(default_factory=Body.from_bytes)
    caller: Caller | None = None
    # The client's address after trusted proxies (``client_address.resolve_client``); the app
    # sets it before routing. Empty: not resolved (then the peer is the client).
    address: str = ""

    @classmethod
    def build(cls, method: str, target: str, headers=(), body: bytes = b"",
              client: tuple[str, int] = ("127.0.0.1", 0)) -> Request:
        """A request without a connection, parsed as the front would (for tests)."""
        from .protocol import parse_query, split_target

        path, query = split_target(target)
        first, items = parse_query(query)
        return cls(method, target, path, first, items, Headers.from_pairs(headers), client,
                   Body.from_bytes(body))


@final  # final: the front tells it apart by ``type(chunk) is FileSegment`` (fast, and mypy narrows)
@dataclass(frozen=True, slots=True)
class FileSegment:
    """``length`` bytes of an open file from ``offset``, sent with ``os.sendfile``.

    The front does not close ``fd``: whoever opened it closes it, typically in the ``finally`` of
    the async generator that yielded the segment (the front always ``aclose()``s body iterators).
    """

    fd: int
    offset: int
    length: int


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | AsyncIterable[bytes | memoryview | FileSegment] = b""
    content_length: int | None = None  # required for iterable bodies (we never chunk responses)
