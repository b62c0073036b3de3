"""Content type of an uploaded file from its first bytes, when the client named none.

Owns: the signature table (the magic numbers of the common file types an edge device shares:
images, video, archives, documents, JSON and text) and the fallbacks. LiquidFiles runs the
``file`` command here; a one-file binary on a small device cannot count on ``file`` being
installed, and a table of the usual suspects answers the same for them.
Must not: do I/O, trust a file name over the bytes (the name is only a tie-breaker for text).

Also owns ``content_type_or_none``: which client-given content types name a file type at all
(client defaults such as curl's form type do not); the rule for a valid one is
``formats.metadata.check_media_type``, the stored-metadata policy.
"""

from __future__ import annotations

import json

from ..formats.metadata import check_media_type

SNIFF_BYTES = 4096
OCTET = "application/octet-stream"

# (offset, magic, type): first match wins, so longer / more specific signatures come first.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"(\xb5/\xfd", "application/zstd"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (257, b"ustar", "application/x-tar"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"BM", "image/bmp"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"OggS", "application/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"\x89HDF\r\n\x1a\n", "application/x-hdf5"),
)


def sniff(head: bytes, filename: str = "") -> str:
    """The content type of a file starting with ``head`` (``OCTET`` when nothing fits)."""
    for offset, magic, ctype in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return ctype
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    return _text_type(head, filename)


def _text_type(head: bytes, filename: str) -> str:
    if not head:
        return "application/x-empty"
    if b"\x00" in head:
        return OCTET
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:            # not just a character cut at the sniff boundary
            return OCTET
        text = head[:exc.start].decode("utf-8")
    if any(ord(c) < 0x20 and c not in "\t\n\r\f" for c in text):
        return OCTET
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and (len(head) < SNIFF_BYTES and _is_json(head)):
        return "application/json"
    lower = stripped[:256].lower()
    if lower.startswith(("<!doctype html", "<html")):
        return "text/html"
    if lower.startswith("<?xml"):
        return "image/svg+xml" if "<svg" in stripped[:1024].lower() else "application/xml"
    if lower.startswith("<svg"):
        return "image/svg+xml"
    if filename.lower().endswith(".csv"):
        return "text/csv"
    return "text/plain"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def content_type_or_none(value: str | None, what: str) -> str | None:
    """A client-given content type, checked; None when absent or a client default that names no
    file type (curl's ``--data-binary`` sends ``application/x-www-form-urlencoded`` by itself)."""
    if value is None:
        return None
    value = value.strip()
    if not value or value.split(";")[0].strip().lower() in ("application/x-www-form-urlencoded",
                                                             "multipart/form-data"):
        return None
    check_media_type(value, what)
    return value
