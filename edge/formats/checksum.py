"""The one CRC-32 of every on-disk format (record frames, block indexes, journals).

Owns: choosing the implementation of zlib's CRC-32 (polynomial 0xEDB88320, same values).
Must not: do I/O or change the checksum's definition: files written with either
implementation read back with the other.

Why two implementations: on the target machine zlib's crc32 costs ~1.8 ms per 10 MiB and was
~30 % of the server's CPU for large reads; ISA-L's (the ``isal`` package, a dependency with
wheels for x86_64 and aarch64) gives the same values in ~0.1 ms. zlib stays as the fallback for
platforms without an ``isal`` wheel.
"""

from __future__ import annotations

import zlib
from typing import Protocol


class Crc32(Protocol):
    def __call__(self, data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...


_fast_crc32: Crc32 | None
try:
    from isal.isal_zlib import crc32 as _fast_crc32
    _why_not = ""
except ImportError as exc:  # pragma: no cover - depends on the platform's wheels
    _fast_crc32 = None
    _why_not = f" (isal: {exc})"

crc32: Crc32 = _fast_crc32 if _fast_crc32 is not None else zlib.crc32
IMPLEMENTATION = "isal" if _fast_crc32 is not None else "zlib" + _why_not

assert crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value: both implementations agree
