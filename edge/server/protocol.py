"""HTTP/1.1 wire format, sans-IO: request heads, request body framing, response heads.

Owns: parsing a request head out of a receive buffer (``HeadReader``), the limits on it, the
chunked transfer-coding decoder (``ChunkedDecoder``), response-head serialization
(``serialize_response_head``), target splitting (``split_target``) and ``ProtocolError``.
Must not: touch sockets, import trio, know about routes, buckets or edge errors. You feed it
bytes and get values back; ``front.py`` does the I/O.

Readers follow h11's contract: they consume bytes from the front of a ``bytearray`` and return a
value, return ``None`` when they need more data, or raise ``ProtocolError``. Whatever follows the
thing they read (a body, a pipelined request) stays in the buffer.

Why hand-rolled and not h11: h11 costs 0.2-0.6 ms of CPU per request on this machine (80 record
headers alone add 0.2-0.3 ms; perf-limits.md section 2). Here a head is one ``find``, one latin-1
decode, one ``split`` and a partition per header, all C loops.
"""

from __future__ import annotations

import re
import time
from operator import itemgetter
from email.utils import formatdate
from urllib.parse import parse_qsl, unquote

# Limits. ReductStore (hyper) accepts RS_IO_BATCH_MAX_RECORDS + 15 headers (default 100) in a
# 512,000-byte header block; batches of ~85 records with labels must fit (spec section 1.6).
DEFAULT_MAX_HEADER_BYTES = 512_000
DEFAULT_MAX_HEADER_COUNT = 1_000
# The query of a GET can carry a `when` condition; 64 KiB is generous (nginx: 8 KiB, node: 16 KiB).
DEFAULT_MAX_REQUEST_LINE = 64 * 1024
MAX_CHUNK_LINE = 4096  # "1f;ext=value\r\n": extensions are checked and dropped, but bounded
# RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request-line (some
# clients send a CRLF after a POST body). More than a few is a flood, not a client quirk.
MAX_LEADING_EMPTY_LINES = 4
# A chunked body may spend this many bytes on framing (size lines, extensions, CRLFs, trailers)
# beyond one framing byte per payload byte; a flood of tiny chunks or long extensions is refused.
CHUNK_OVERHEAD_ALLOWANCE = 64 * 1024

_SUPPORTED_VERSIONS = {"HTTP/1.1": True, "HTTP/1.0": False}  # version -> keep-alive by default

# RFC 9110 5.6.2 token; RFC 9112 3 request-line; RFC 9110 5.5 field values (obs-text allowed,
# every CTL but HTAB refused: h11 lets \x01-\x08, \x0e-\x1f and DEL through, we do not).
_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_REQUEST_LINE = re.compile(rf"([{_TCHAR}]+) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
# bytes.translate(None, ALLOWED) deletes the allowed bytes in one C pass (~10x cheaper than a
# regex search): whatever is left over is the offending bytes.
_LINE_BYTES_OK = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F or b == 0x09)
_NAME_BYTES_OK = (b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  b"\n")
# RFC 9110 7.2 / RFC 3986 3.2.2: Host = uri-host [ ":" port ]; an empty value is allowed.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[\w.~!$&'()*+,;=:-]+\]"
                   r"|[\w.~!$&'()*+,;=%-]*)(?::[0-9]*)?", re.ASCII)


class ProtocolError(Exception):
    """The peer broke HTTP/1.1. ``status_hint`` is what to answer before closing."""

    def __init__(self, message: str, status_hint: int = 400):
        super().__init__(message)
        self.message = message
        self.status_hint = status_hint


class RequestHead:
    """One parsed request head. Plain slots object: built once per request, never copied."""

    __slots__ = ("method", "target", "version", "headers", "first", "content_length", "chunked",
                 "keep_alive", "expect_continue")

    def __init__(self, method: str, target: str, version: str, headers: list[tuple[str, str]],
                 first: dict[str, str], content_length: int | None, chunked: bool, keep_alive: bool,
                 expect_continue: bool):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(lower-case name, value)] in wire order
        self.first = first  # lower-case name -> first value
        self.content_length = content_length  # None when chunked; 0 when there is no body
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue

    def __repr__(self) -> str:
        return f"RequestHead({self.method} {self.target} {self.version}, {len(self.headers)} headers)"


class HeadReader:
    """Takes one request head from the front of a receive buffer.

    ``reader(buf)`` returns a ``RequestHead`` (and deletes the head from ``buf``), ``None`` when
    the head is incomplete, or raises ``ProtocolError`` (431/414 once the incomplete head is over
    a limit, 400/501/505 for a malformed one). The reader remembers how far it has searched, so a
    head dribbled in byte by byte costs O(n), not O(n^2); use one reader per connection and it
    resets itself after each head. Up to ``MAX_LEADING_EMPTY_LINES`` empty lines before the
    request line are skipped; they count as the start of the head (``started``), so they run
    against the head deadline like any other byte of it.
    """

    __slots__ = ("max_header_bytes", "max_header_count", "max_request_line", "_scanned",
                 "_empty_lines")

    def __init__(self, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
                 max_request_line: int = DEFAULT_MAX_REQUEST_LINE):
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.max_request_line = max_request_line
        self._scanned = 0
        self._empty_lines = 0

    def __call__(self, buf: bytearray) -> RequestHead | None:
        end = self.find(buf)
        return None if end < 0 else self.take(buf, end)

    def find(self, buf: bytearray) -> int:
        """Where the complete head in ``buf`` ends (before its blank line), or -1 (needs more).

        Cheap (one incremental search); the front charges the head's size against the
        connection's fairness budget between this and ``take``, which does the parsing.
        """
        if buf[:2] == b"\r\n" or buf[:1] == b"\r":
            if not self._skip_empty_lines(buf):
                return -1
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buf)
            self._check_incomplete(buf)
            return -1
        if end > self.max_header_bytes:
            raise ProtocolError("Request header block is too large", 431)
        return end

    def take(self, buf: bytearray, end: int) -> RequestHead:
        """Parse the head ``find`` located, remove it from ``buf``, reset for the next one."""
        self._scanned = 0
        self._empty_lines = 0
        text = buf[:end].decode("latin-1")
        del buf[:end + 4]
        return parse_head(text, self.max_header_count, self.max_request_line)

    def _skip_empty_lines(self, buf: bytearray) -> bool:
        """Drop leading CRLFs (bounded); False when the buffer holds nothing more yet."""
        while buf[:2] == b"\r\n":
            if self._empty_lines >= MAX_LEADING_EMPTY_LINES:
                raise ProtocolError("Too many empty lines before the request line")
            self._empty_lines += 1
            del buf[:2]
            self._scanned = 0
        if buf == b"\r":
            return False  # the LF of this empty line has not arrived yet
        return bool(buf)

    def _check_incomplete(self, buf: bytearray) -> None:
        if len(buf) > self.max_header_bytes:
            raise ProtocolError("Request header block is too large", 431)
        if len(buf) > self.max_request_line and buf.find(b"\r\n", 0, self.max_request_line + 2) < 0:
            raise ProtocolError("Request line is too long", 414)

    @property
    def started(self) -> bool:
        """Whether part of a head (empty lines included) has been seen: the client is not idle."""
        return self._scanned > 0 or self._empty_lines > 0


def _tokens(value: str) -> list[str]:
    """A comma-separated list of tokens, each trimmed of SP/HTAB only and ASCII-lower-cased."""
    return [t.strip(" \t").lower() for t in value.split(",") if t.strip(" \t")]


def parse_head(text: str, max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
               max_request_line: int = DEFAULT_MAX_REQUEST_LINE) -> RequestHead:
    """Parse a head (latin-1 text, without the final blank line) into a ``RequestHead``.

    RFC 9112 at least as strictly as h11 (``docs/http-strictness.md`` lists where we refuse
    more): the method and every field name are tokens, the target is visible ASCII, no CTL but
    HTAB anywhere, CRLF only, no obs-fold, one valid ``Host`` on HTTP/1.1, ``Transfer-Encoding``
    exactly ``chunked`` and never on HTTP/1.0 nor together with ``Content-Length``.
    """
    # At most one line more than allowed is split off, so a head of 100,000 tiny lines costs
    # no more than one of max_header_count lines before it is refused.
    lines = text.split("\r\n", max_header_count + 1)
    if len(lines) > max_header_count + 1:
        raise ProtocolError("Too many request headers", 431)
    # A bare CR or LF is where request smuggling lives (proxies disagree on line ends); the other
    # CTLs are never valid in a head (HTAB is, inside values). Once split on CRLF, any CR or LF
    # left is a bare one: one C pass over the joined lines finds both kinds.
    if "".join(lines).encode("latin-1").translate(None, _LINE_BYTES_OK):
        raise ProtocolError("Invalid line ending or control character in request head")
    request_line = lines[0]
    if len(request_line) > max_request_line:
        raise ProtocolError("Request line is too long", 414)
    m = _REQUEST_LINE.fullmatch(request_line)
    if m is None:
        raise ProtocolError("Malformed request line")
    method, target, version = m.groups()
    keep_alive = _SUPPORTED_VERSIONS.get(version)
    if keep_alive is None:
        raise ProtocolError("HTTP version not supported", 505)

    # Bulk form: comprehensions and C-level checks over all headers instead of a per-header
    # Python loop with branches (this halves the cost for an 80-record batch head).
    parts = [line.partition(":") for line in lines[1:]]
    headers = [(name.lower(), value.strip(" \t")) for name, _, value in parts]
    names = list(map(_first_item, headers))
    # Every name a token: covers "Name : v", obs-fold lines (RFC 9112 5.1/5.2 say reject) and an
    # empty name; a line without a colon is malformed too.
    if ("\n".join(names).encode("latin-1").translate(None, _NAME_BYTES_OK) or "" in names
            or "" in map(_second_item, parts)):
        raise ProtocolError("Malformed request header")
    first = dict(reversed(headers))  # first value per name: dict() keeps the last of equal keys

    host = first.get("host")
    if host is None:
        if version == "HTTP/1.1":
            raise ProtocolError("Missing Host header")
    elif names.count("host") > 1:
        raise ProtocolError("More than one Host header")
    elif _HOST.fullmatch(host) is None:
        raise ProtocolError("Invalid Host header")

    content_length = None
    value = first.get("content-length")
    if value is not None:
        values = [value] if names.count("content-length") == 1 else _all(headers, "content-length")
        for text in values:
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                raise ProtocolError("Invalid Content-Length")
            if text != values[0]:  # "5" and "05" conflict, as for h11: one spelling per message
                raise ProtocolError("Conflicting Content-Length headers")
        content_length = int(values[0])
    transfer_encoding = first.get("transfer-encoding")
    if transfer_encoding is not None and names.count("transfer-encoding") > 1:
        transfer_encoding = ",".join(_all(headers, "transfer-encoding"))
    connection = first.get("connection")
    if connection is not None and names.count("connection") > 1:
        connection = ",".join(_all(headers, "connection"))
    expect = first.get("expect")

    chunked = False
    if transfer_encoding is not None:
        if version != "HTTP/1.1":
            # RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding must be treated as faulty.
            raise ProtocolError("Transfer-Encoding is not allowed in HTTP/1.0")
        if _tokens(transfer_encoding) != ["chunked"]:
            raise ProtocolError("Unsupported Transfer-Encoding", 501)
        if content_length is not None:
            # RFC 9112 6.3 allows either; refusing both is the smuggling-safe choice.
            raise ProtocolError("Both Transfer-Encoding and Content-Length")
        chunked = True
    elif content_length is None:
        content_length = 0
    if connection is not None:
        tokens = _tokens(connection)
        if "close" in tokens:
            keep_alive = False
        elif "keep-alive" in tokens:
            keep_alive = True
    expect_continue = (expect is not None and version == "HTTP/1.1"
                       and expect.lower() == "100-continue")
    return RequestHead(method, target, version, headers, first, content_length, chunked,
                       keep_alive, expect_continue)


_first_item = itemgetter(0)
_second_item = itemgetter(1)


def _all(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n == name]


def split_target(target: str) -> tuple[str, str]:
    """Request target -> (percent-decoded path, raw query string).

    Handles origin-form ("/a?b"), absolute-form ("http://h/a?b") and "*". Raw non-ASCII bytes in
    the target (latin-1 decoded by the head parser) are read back as UTF-8, as browsers send them.
    """
    if not target.isascii():
        target = target.encode("latin-1").decode("utf-8", "replace")
    path, _, query = target.partition("?")
    if path[:1] != "/":
        if path == "*":
            return path, query
        scheme, sep, rest = path.partition("://")
        if not sep or not scheme.isalpha():
            raise ProtocolError("Malformed request target")
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    if "%" in path:
        path = unquote(path)
    return path, query


def parse_query(query: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Query string -> (first value per key, all pairs), urllib rules with blank values kept."""
    if not query:
        return {}, []
    items = parse_qsl(query, keep_blank_values=True)
    first: dict[str, str] = {}
    for k, v in items:
        if k not in first:
            first[k] = v
    return first, items


# --- chunked transfer-coding -------------------------------------------------------------------

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)

# RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF; chunk-size = 1*HEXDIG (no whitespace
# around it: h11 allows trailing OWS, we do not); chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS
# ( token / quoted-string ) ] ), where h11 takes ";" and anything after it (bare CR included).
_TOKEN_B = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED_B = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})((?:;[ \t]*" + _TOKEN_B + rb"(?:[ \t]*=[ \t]*(?:"
                         + _TOKEN_B + rb"|" + _QUOTED_B + rb"))?[ \t]*)*)")
# A trailer field is a header field (RFC 9112 7.1.2): token ":" OWS value OWS, no CTL but HTAB.
# The whole trailer section is checked by one regex (a C loop), not a Python step per line.
_TRAILER_SECTION = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
# Chunk-size lines decoded per ``next_data`` call at most: bounds the work of one call (the
# caller charges each against its fairness budget, ``fairness.STEP``) while still handing the
# payload of many small chunks over in one piece.
MAX_STEPS_PER_CALL = 64


class ChunkedDecoder:
    """Decodes a chunked request body from the front of a receive buffer.

    ``next_data(buf, max_bytes)`` returns a non-empty ``bytes`` of payload, ``None`` when it
    needs more data, or ``b""`` once the last chunk and the trailers are consumed (trailers are
    checked like header fields and dropped). Payload bytes past ``chunk_left`` are never
    touched, so a pipelined request after the body stays in ``buf``. The payload of consecutive
    chunks already in ``buf`` comes back joined, up to ``max_bytes`` and ``MAX_STEPS_PER_CALL``
    chunks: whoever stores the body sees a few large pieces, not one call per chunk.
    ``steps`` counts the size lines and trailer sections decoded so far (the caller's measure of
    the work spent, beside the bytes).

    Framing bytes (size lines with their extensions, CRLFs, trailers) may exceed the payload by
    at most ``overhead_allowance``: past that the body is a flood of tiny chunks, refused with a
    ``ProtocolError`` (a client that sends 1-byte chunks must not cost us a Python call per byte).

    Zero-copy path: while ``in_data`` is true and the buffer is empty, the caller may receive at
    most ``chunk_left`` bytes straight from the socket and report them with ``consumed_direct``.
    """

    __slots__ = ("state", "chunk_left", "_trailer_scanned", "max_trailer_bytes", "overhead",
                 "payload", "overhead_allowance", "steps")

    def __init__(self, max_trailer_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 overhead_allowance: int = CHUNK_OVERHEAD_ALLOWANCE):
        self.state = _SIZE
        self.chunk_left = 0
        self._trailer_scanned = 0
        self.max_trailer_bytes = max_trailer_bytes
        self.overhead = 0  # framing bytes consumed so far
        self.payload = 0  # payload bytes handed out so far
        self.overhead_allowance = overhead_allowance
        self.steps = 0

    @property
    def done(self) -> bool:
        return self.state == _DONE

    @property
    def in_data(self) -> bool:
        return self.state == _DATA

    def consumed_direct(self, n: int) -> None:
        if n > self.chunk_left or self.state != _DATA:
            raise ValueError("consumed more than the current chunk")
        self.chunk_left -= n
        self.payload += n
        if self.chunk_left == 0:
            self.state = _DATA_END

    def _framing(self, n: int) -> None:
        self.overhead += n
        if self.overhead > self.payload + self.overhead_allowance:
            raise ProtocolError("Chunked body has too much framing overhead (chunks too small)")

    def next_data(self, buf: bytearray, max_bytes: int = 1 << 20) -> bytes | None:
        if self.state == _DATA and buf:
            # The common case of large chunks: one piece straight from the buffer.
            n = min(len(buf), self.chunk_left, max_bytes)
            if n == len(buf):
                data = bytes(buf)
                buf.clear()
            else:
                with memoryview(buf) as view:
                    data = bytes(view[:n])
                del buf[:n]
            self.consumed_direct(n)
            if self.chunk_left or n == max_bytes or len(buf) < 2:
                return data
            return self._gather(buf, max_bytes, data)
        return self._gather(buf, max_bytes, None)

    def _gather(self, buf: bytearray, max_bytes: int, first: bytes | None) -> bytes | None:
        """Walk the buffer from the front (an index, one deletion at the end), joining payload."""
        pieces: list[bytes] = [] if first is None else [first]
        got = 0 if first is None else len(first)
        pos = 0
        steps = 0
        end = len(buf)
        view = memoryview(buf)  # released before the buffer is trimmed (finally)
        try:
            while got < max_bytes:
                state = self.state
                if state == _DATA:
                    if pos >= end:
                        break
                    n = min(end - pos, self.chunk_left, max_bytes - got)
                    pieces.append(bytes(view[pos:pos + n]))
                    pos += n
                    got += n
                    self.consumed_direct(n)
                elif state == _DATA_END:
                    if end - pos < 2:
                        break
                    if buf[pos] != 13 or buf[pos + 1] != 10:
                        raise ProtocolError("Chunk data is not followed by CRLF")
                    pos += 2
                    self._framing(2)
                    self.state = _SIZE
                elif state == _SIZE:
                    if steps >= MAX_STEPS_PER_CALL and got:
                        break
                    i = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)
                    if i < 0:
                        if end - pos > MAX_CHUNK_LINE:
                            raise ProtocolError("Chunk size line is too long")
                        break
                    m = _CHUNK_LINE.fullmatch(buf, pos, i)
                    if m is None:
                        raise ProtocolError("Invalid chunk size line")
                    steps += 1
                    size = int(m.group(1), 16)
                    start = i + 2
                    stop = start + size
                    if size and stop + 2 <= end and got + size <= max_bytes:
                        # The whole chunk is here (the common case for small chunks): no
                        # state round trip per chunk.
                        if buf[stop] != 13 or buf[stop + 1] != 10:
                            raise ProtocolError("Chunk data is not followed by CRLF")
                        self.overhead += start - pos + 2
                        self.payload += size
                        if self.overhead > self.payload + self.overhead_allowance:
                            self._framing(0)
                        pieces.append(bytes(view[start:stop]))
                        got += size
                        pos = stop + 2
                        continue
                    self._framing(start - pos)
                    self.chunk_left = size
                    pos = start
                    self.state = _DATA if size else _TRAILER
                elif state == _TRAILER:
                    if not self._trailers(buf, pos, end):
                        break
                    pos = self._trailer_scanned
                    self._trailer_scanned = 0
                    steps += 1
                    self.state = _DONE
                else:
                    break
        finally:
            view.release()
            self.steps += steps
            if pos:
                del buf[:pos]
        if got:
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return b"" if self.state == _DONE else None

    def _trailers(self, buf: bytearray, pos: int, end: int) -> bool:
        """The trailer section from ``pos``: True once complete and valid (its end is left in
        ``_trailer_scanned``); False if more bytes are needed."""
        if buf[pos:pos + 2] == b"\r\n":
            self._framing(2)
            self._trailer_scanned = pos + 2
            return True
        # Searched from where the last call stopped (relative to pos), so a dribble is O(n).
        start = pos + max(0, self._trailer_scanned - 3)
        i = buf.find(b"\r\n\r\n", start)
        if i < 0:
            if end - pos > self.max_trailer_bytes:
                raise ProtocolError("Chunked trailers are too large", 431)
            if self.overhead + end - pos > self.payload + self.overhead_allowance:
                self._framing(end - pos)  # refused now, not once a flood of them is complete
            self._trailer_scanned = end - pos
            return False
        size = i + 4 - pos
        if size - 2 > self.max_trailer_bytes:
            raise ProtocolError("Chunked trailers are too large", 431)
        self._framing(size)  # refused for overhead before the (bounded) check below runs
        if _TRAILER_SECTION.fullmatch(buf, pos, i + 2) is None:
            raise ProtocolError("Malformed chunked trailer field")
        self._trailer_scanned = i + 4
        return True


def encode_chunked(data: bytes, chunk_sizes: list[int] | None = None) -> bytes:
    """Chunked encoding of ``data`` (for tests and clients); ``chunk_sizes`` splits it."""
    parts = []
    pos = 0
    for size in chunk_sizes or ([len(data)] if data else []):
        piece = data[pos:pos + size]
        pos += len(piece)
        if piece:
            parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    if pos < len(data):
        parts.append(b"%x\r\n%s\r\n" % (len(data) - pos, data[pos:]))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


# --- response heads ------------------------------------------------------------------------------

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Payload Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    422: "Unprocessable Entity", 425: "Too Early", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 460: "Checksum Mismatch",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 505: "HTTP Version Not Supported", 507: "Insufficient Storage",
}
_STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n" for code, reason in REASONS.items()}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# The front owns framing; a handler's copy of these would contradict it.
RESERVED_RESPONSE_HEADERS = frozenset({
    "content-length", "Content-Length", "transfer-encoding", "Transfer-Encoding",
    "connection", "Connection", "date", "Date",
})

_COLON_SPACE_JOIN = ": ".join
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header value, formatted at most once per second."""
    global _date_cache
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def body_allowed(status: int) -> bool:
    """1xx, 204 and 304 responses have neither a body nor a Content-Length (RFC 9110 8.6)."""
    return status >= 200 and status != 204 and status != 304


def serialize_response_head(status: int, headers: list[tuple[str, str]], content_length: int,
                            close: bool = False, keep_alive_1_0: bool = False) -> bytes:
    """One bytes object for the whole head: status line, headers, framing, blank line.

    ``content-length``/``transfer-encoding``/``connection``/``date`` given by the handler are
    dropped: the front decides them. Raises ``ValueError`` when a name or value would split the
    head (CR/LF inside), which is a bug in the handler, never a client's doing.
    """
    status_line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
    if not RESERVED_RESPONSE_HEADERS.isdisjoint(map(_first_item, headers)):
        headers = [h for h in headers if h[0] not in RESERVED_RESPONSE_HEADERS]
    # map(": ".join) formats every header in C: ~3x cheaper than an f-string per header.
    tail = [status_line, "\r\n".join(map(_COLON_SPACE_JOIN, headers)), "\r\n" if headers else "",
            "date: ", http_date(), "\r\n"]
    if body_allowed(status):
        tail.append(f"content-length: {content_length}\r\n")
    if close:
        tail.append("connection: close\r\n")
    elif keep_alive_1_0:
        tail.append("connection: keep-alive\r\n")
    tail.append("\r\n")
    text = "".join(tail)
    nlines = len(headers) + len(tail) - 4  # one LF per header; tail adds status, date, framing, blank
    # UTF-8 on the wire, as upstream sends label values (reduct-py decodes header bytes as UTF-8).
    head = text.encode("utf-8")
    # Each line contributes exactly one LF; anything else is header injection.
    if head.count(b"\n") != nlines or head.count(b"\r") != nlines:
        raise ValueError("CR or LF inside a response header")
    return head
