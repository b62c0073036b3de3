"""A small Trio HTTP/1.1 client for talking to a destination server (the replication sender).

Owns: one keep-alive connection per client (TCP, or TLS through ``trio.SSLStream`` for https),
writing a request with a bytes body, a streamed body with ``Content-Length``, or a chunked body
(compressed bodies have no length up front), and reading status, headers and a bounded body.
Every connect, send and receive is bounded by ``timeout_s`` (``RS_REPLICATION_TIMEOUT``).
Must not: retry (the sender owns retries and backoff), follow redirects, or know ReductStore.

Why not httpx: it would bring anyio, httpcore and h11 for three verbs on one connection; the
sender needs exactly "send this stream, give me status + headers", which is ~150 lines here and
keeps the dependency list and the start-up time as they are.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import AsyncIterable, Iterable
from urllib.parse import urlsplit

import trio

MAX_RESPONSE_BODY = 16 << 20
MAX_HEAD = 1 << 20
IDLE_REUSE_S = 2.0   # do not reuse a connection idle longer than this: the server may have closed it


class HttpError(Exception):
    """The request did not produce a response (connect, TLS, timeout, reset, malformed reply)."""


class ConnectError(HttpError):
    """No connection could be made (refused, unreachable, connect or TLS handshake timed out)."""


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]   # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class HttpClient:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0, verify_ssl: bool = True, ca_path: str | None = None):
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.verify_ssl = verify_ssl
        self.ca_path = ca_path
        self._stream: trio.abc.Stream | None = None
        self._buf = bytearray()
        self._last_used = 0.0

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    async def _connect(self) -> None:
        await self.aclose()
        try:
            with trio.fail_after(self.timeout_s):
                stream: trio.abc.Stream = await trio.open_tcp_stream(self.host, self.port)
                if self.scheme == "https":
                    context = ssl.create_default_context(cafile=self.ca_path)
                    if not self.verify_ssl:
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                    stream = trio.SSLStream(stream, context, server_hostname=self.host)
                    await stream.do_handshake()
        except (OSError, trio.TooSlowError, ssl.SSLError, trio.BrokenResourceError) as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc or type(exc).__name__}") from None
        self._stream = stream
        self._buf = bytearray()

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass

    async def request(self, method: str, path: str, headers: Iterable[tuple[str, str]] = (),
                      body: bytes | AsyncIterable[bytes | memoryview] = b"", content_length: int | None = None) -> HttpResponse:
        """One request. ``body`` bytes, or an async iterable with ``content_length`` (None: chunked)."""
        if self._stream is None or time.monotonic() - self._last_used > IDLE_REUSE_S:
            await self._connect()
        try:
            response = await self._exchange(method, path, headers, body, content_length)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError,
                ValueError) as exc:
            await self.aclose()
            raise HttpError(f"{method} {path}: {exc or type(exc).__name__}") from None
        except BaseException:
            await self.aclose()   # cancelled or the body iterator failed: the connection is unusable
            raise
        self._last_used = time.monotonic()
        if (response.header("connection") or "").lower() == "close":
            await self.aclose()
        return response

    def _open_stream(self) -> trio.abc.Stream:
        if self._stream is None:   # request() connects first; aclose() ends the exchange
            raise trio.ClosedResourceError("not connected")
        return self._stream

    async def _send(self, data: bytes) -> None:
        with trio.fail_after(self.timeout_s):
            await self._open_stream().send_all(data)

    async def _exchange(self, method: str, path: str, headers: Iterable[tuple[str, str]],
                        body: bytes | AsyncIterable[bytes | memoryview], content_length: int | None) -> HttpResponse:
        lines = [f"{method} {self.base_path}{path} HTTP/1.1", f"Host: {self._host_header()}"]
        lines += [f"{k}: {v}" for k, v in headers]
        fixed = body if isinstance(body, (bytes, bytearray, memoryview)) else None
        stream = None if isinstance(body, (bytes, bytearray, memoryview)) else body
        if fixed is not None:
            lines.append(f"Content-Length: {len(fixed)}")
        elif content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        else:
            lines.append("Transfer-Encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        if fixed is not None:
            await self._send(head + bytes(fixed) if len(fixed) < 65536 else head)
            if len(fixed) >= 65536:
                await self._send(bytes(fixed))
        elif stream is not None:
            await self._send(head)
            async for chunk in stream:
                if not chunk:
                    continue
                if content_length is None:
                    await self._send(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
                else:
                    await self._send(bytes(chunk))
            if content_length is None:
                await self._send(b"0\r\n\r\n")
        return await self._read_response(method)

    async def _receive(self) -> None:
        with trio.fail_after(self.timeout_s):
            data = await self._open_stream().receive_some(1 << 16)
        if not data:
            raise trio.BrokenResourceError("connection closed by the server")
        self._buf += data

    async def _read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                out = bytes(self._buf[:i])
                del self._buf[:i + len(marker)]
                return out
            if len(self._buf) > limit:
                raise ValueError("response head too large")
            await self._receive()

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._receive()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def _read_response(self, method: str) -> HttpResponse:
        while True:
            head = (await self._read_until(b"\r\n\r\n", MAX_HEAD)).decode("latin-1")
            status_line, *header_lines = head.split("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError(f"bad status line {status_line!r}")
            status = int(parts[1])
            if status != 100:   # "100 Continue" precedes the real answer
                break
        headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        resp = HttpResponse(status, headers, b"")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        if (resp.header("transfer-encoding") or "").lower() == "chunked":
            parts_: list[bytes] = []
            total = 0
            while True:
                size = int((await self._read_until(b"\r\n", 1024)).split(b";")[0], 16)
                if size == 0:
                    while await self._read_until(b"\r\n", MAX_HEAD):   # trailers
                        pass
                    break
                total += size
                if total > MAX_RESPONSE_BODY:
                    raise ValueError("response body too large")
                parts_.append(await self._read_exactly(size))
                await self._read_exactly(2)
            resp.body = b"".join(parts_)
        elif (length := resp.header("content-length")) is not None:
            n = int(length)
            if n > MAX_RESPONSE_BODY:
                raise ValueError("response body too large")
            resp.body = await self._read_exactly(n)
        else:   # until the server closes
            try:
                while len(self._buf) <= MAX_RESPONSE_BODY:
                    await self._receive()
            except trio.BrokenResourceError:
                pass
            resp.body = bytes(self._buf)
            self._buf = bytearray()
            resp.headers.append(("connection", "close"))
        return resp
