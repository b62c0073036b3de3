"""A streaming tar layout for ``.tar`` links: every record of a query as ``<entry>/<ts>.<ext>``.

Owns: member names (extension from the content type), the exact header/padding/end bytes of a
POSIX (pax) tar whose member sizes are known up front, the total length (so ``Content-Length``
is exact) and slicing the archive by byte offsets (so ``Range`` resume works on archives too).
Must not: read records (it yields *where* record bytes go; the handler streams them from the
store), do I/O, import trio, edge.store or edge.http.

The layout is deterministic: the same members give the same bytes (mtime = record time, fixed
owner/mode), which is what makes ranges over an archive meaningful across requests.
"""

from __future__ import annotations

import mimetypes
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

# Preferred extensions where mimetypes' choice is surprising or missing.
EXTENSIONS = {
    "application/octet-stream": "bin",
    "text/plain": "txt",
    "image/jpeg": "jpg",
    "application/json": "json",
    "text/csv": "csv",
    "image/png": "png",
    "image/webp": "webp",
    "text/html": "html",
    "application/xml": "xml",
    "text/xml": "xml",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "application/x-protobuf": "pb",
    "application/protobuf": "pb",
    "application/mcap": "mcap",
    "application/x-mcap": "mcap",
}
# An instance with no files uses Python's built-in table only: the same answer on every host
# (reading /etc/mime.types would make archive names, and so their bytes, depend on the machine).
_MIME = mimetypes.MimeTypes(filenames=())


def ext_for(content_type: str) -> str:
    """File extension (no dot) for a content type; ``bin`` when unknown."""
    base = content_type.split(";", 1)[0].strip().lower()
    ext = EXTENSIONS.get(base)
    if ext is None:
        guessed = _MIME.guess_extension(base, strict=False)
        ext = guessed.lstrip(".") if guessed else "bin"
    ext = re.sub(r"[^a-z0-9]", "", ext.lower())
    return ext or "bin"


def member_name(entry: str, ts_us: int, content_type: str) -> str:
    """``<entry>/<timestamp>.<ext>``; refuses names that would escape the extraction folder."""
    parts = entry.split("/")
    if not entry or entry.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"entry name {entry!r} cannot be an archive path")
    return f"{entry}/{ts_us}.{ext_for(content_type)}"


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    mtime: int = 0          # seconds; record timestamp // 1e6 for links

    def header(self) -> bytes:
        """The header block(s): a pax extended header first if the name or size needs one."""
        info = tarfile.TarInfo(self.name)
        info.size = self.size
        info.mtime = self.mtime
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")

    def padding(self) -> bytes:
        return b"\0" * (-self.size % BLOCK)


@dataclass(frozen=True)
class MemberSlice:
    """``length`` bytes of member ``index``'s content starting at ``offset`` (read from the store)."""

    index: int
    offset: int
    length: int


class TarLayout:
    """The archive as a sequence of pieces: literal ``bytes`` (headers, padding, end) and member bodies."""

    def __init__(self, members: Iterable[Member]):
        self.members = tuple(members)
        # Headers are built once: their length is needed for the total and again when streaming.
        self._heads = tuple(m.header() for m in self.members)
        self.total = sum(len(h) + m.size + len(m.padding()) for h, m in zip(self._heads, self.members)) \
            + len(END_OF_ARCHIVE)

    def pieces(self) -> Iterator[bytes | MemberSlice]:
        """The whole archive in order."""
        for i, (head, m) in enumerate(zip(self._heads, self.members)):
            yield head
            if m.size:
                yield MemberSlice(i, 0, m.size)
            pad = m.padding()
            if pad:
                yield pad
        yield END_OF_ARCHIVE

    def slice(self, start: int, end: int) -> Iterator[bytes | MemberSlice]:
        """Bytes ``start..end`` (inclusive, as in a Range span) of the archive, as pieces."""
        if start < 0 or end >= self.total or start > end:
            raise ValueError("slice outside the archive")
        pos = 0
        for piece in self.pieces():
            size = len(piece) if isinstance(piece, bytes) else piece.length
            lo, hi = max(start, pos), min(end + 1, pos + size)
            if lo < hi:
                if isinstance(piece, bytes):
                    yield piece[lo - pos:hi - pos]
                else:
                    yield MemberSlice(piece.index, piece.offset + lo - pos, hi - lo)
            pos += size
            if pos > end:
                return

    def render(self, contents: list[bytes]) -> bytes:
        """The whole archive in memory (tests, tiny bundles)."""
        return b"".join(p if isinstance(p, bytes) else contents[p.index][p.offset:p.offset + p.length]
                        for p in self.pieces())
