"""Request bodies with ``Content-Encoding: gzip`` or ``zstd`` (what a 1.21 replication sends).

Owns: ``wrap_body(req)``: the request body as a stream of *decoded* bytes, with the ``Body``
interface handlers use (``length`` None, ``receive_some``, ``read_exactly``, ``read_all``,
``discard``). Identity bodies are returned unchanged (no cost on the common path).
Must not: touch the connection (the front keeps the original ``Body`` for draining and
keep-alive), or decode all of a body into memory: output is produced ``max_bytes`` at a time
(gzip exactly bounded via ``max_length``; zstd per input slice of ``ZSTD_SLICE`` bytes).

Decoded bodies have no length up front, so batch writes take the sum of the record headers as
their length (spec §7.2: "if Content-Length is absent, e.g. compressed replication bodies").
Dependency: ``zstandard`` (PyPI, python-zstandard by Gregory Szorc) for zstd; gzip is stdlib.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol

from ..errors import BadRequestError
from .types import Body, BodyReads, Request

IN_CHUNK = 64 * 1024
ZSTD_SLICE = 8 * 1024


def wrap_body(req: Request) -> Any:
    # Untyped: it replaces ``req.body`` (typed ``Body``) and handlers use only the ``Body`` reads of it
    # (``length``, ``receive_some``, ``read_*``, ``discard``, ``failed``); a ``DecodedBody`` has no
    # ``done``/``drain``, which only the front calls, on the socket's ``Body`` it kept.
    encoding = (req.headers.get("content-encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return req.body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return DecodedBody(req.body, _Gzip())
    if encoding == "zstd":
        return DecodedBody(req.body, _Zstd())
    raise BadRequestError(f"Unsupported content encoding '{encoding}'")


class _Decoder(Protocol):
    def feed(self, data: bytes, max_out: int) -> tuple[bytes, bytes]: ...
    def finish(self) -> bytes: ...


class _Gzip:
    def __init__(self) -> None:
        self._d = zlib.decompressobj(47)   # 32 + 15: gzip or zlib header, detected

    def feed(self, data: bytes, max_out: int) -> tuple[bytes, bytes]:
        """-> (output, input left over for the next call)."""
        try:
            out = self._d.decompress(data, max_out)
        except zlib.error as exc:
            raise BadRequestError(f"Invalid gzip body: {exc}") from None
        return out, self._d.unconsumed_tail

    def finish(self) -> bytes:
        try:
            return self._d.flush()
        except zlib.error as exc:
            raise BadRequestError(f"Invalid gzip body: {exc}") from None


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        self._d = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes, max_out: int) -> tuple[bytes, bytes]:
        # No max_length in zstandard's decompressobj: feed small slices to bound each output.
        piece, rest = data[:ZSTD_SLICE], data[ZSTD_SLICE:]
        try:
            return self._d.decompress(piece), rest
        except self._error as exc:
            raise BadRequestError(f"Invalid zstd body: {exc}") from None

    def finish(self) -> bytes:
        return b""


class DecodedBody(BodyReads):
    length = None

    def __init__(self, inner: Body, decoder: _Decoder):
        self._inner = inner
        self._decoder = decoder
        self._pending = b""    # compressed input not yet fed
        self._out = b""        # decoded output not yet returned
        self._eof = False

    @property
    def failed(self) -> bool:
        return self._inner.failed

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        while not self._out:
            if self._pending:
                self._out, self._pending = self._decoder.feed(self._pending, max_bytes)
                continue
            if self._eof:
                return b""
            data = await self._inner.receive_some(IN_CHUNK)
            if not data:
                self._eof = True
                self._out = self._decoder.finish()
                continue
            self._pending = data
        out, self._out = self._out[:max_bytes], self._out[max_bytes:]
        return out

    async def discard(self) -> None:
        await self._inner.discard()
