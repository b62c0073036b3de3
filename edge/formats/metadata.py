"""What may be stored as a name or as record metadata: the one validation for every write path.

Owns: the rules for bucket and entry names, label names and values, content types (and the
stricter media-type form a client names for an uploaded file), file names (and the download-safe
form of a client's file name, ``sanitize_filename``), their length limits, and the read-side filters that keep anything stored earlier (by an
older version, before these rules) from breaking a response head.
Must not: know HTTP statuses or header names beyond ``x-reduct-label-``, do I/O, import trio.

Why here and once: a label is written by single writes (``x-reduct-label-*`` headers), batch v1
and v2 (v2 label names are percent-decoded, so any byte can arrive), label updates, attachments,
tus ``Upload-Metadata`` (base64: any byte), upload links and replication, and read back as an
HTTP header (``x-reduct-label-<name>: <value>``), inside batch header lists, in JSON. A CR/LF, a
CTL or a non-token name stored once used to turn every later read of the record into a 500. The
store calls ``check_record_metadata`` in ``begin_write`` and ``check_label_update`` in
``update_labels`` (the backstop no path can skip); the doors (tus creation, upload links) call
the same functions so a client hears about it before it sends a byte.

Rules (422 ``InvalidInputError``, the text names the offending part):

* bucket name: ``[A-Za-z0-9_-]``, 1-255 characters (a folder name: NAME_MAX is 255 bytes);
* entry name: ``[A-Za-z0-9_/-]`` segments, no empty segment, optional ``/$meta`` suffix, each
  segment <= 255 characters, the whole name <= 1024 (it is a folder path under the bucket);
* label name: an RFC 9110 token (it becomes a header name), 1-256 bytes;
* label value: UTF-8 text without control characters (HTAB allowed), <= 16 KiB, with no
  leading or trailing whitespace (a header value loses it on the wire, so it could not be read
  back as written);
* content type: visible ASCII and inner spaces, <= 256 characters (a header value); where a
  client names the type of a file it uploads (attachments), a media type proper:
  ``type/subtype[; name=value]*`` of RFC 6838 names (``check_media_type``);
* file name: UTF-8 text without control characters (C0 and C1), bidirectional-text controls
  (which make ``evil\u202egnp.exe`` display as ``evilexe.png``), ``/`` or ``\\`` (share-link
  names may hold ``/``), not ``.``/``..``, 1-255 bytes. A name a client sends for a file it
  uploads is first made download-safe by ``sanitize_filename`` (its last path segment, no
  quotes or shell-special characters, no control or format characters, no leading dots, at
  most 200 characters and 255 bytes): what is stored then always passes ``check_file_name``;
* all metadata of one record (content type + labels) <= 512,000 bytes, the request-head limit
  a client reading it back must accept (spec 1.6).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from edge.errors import InvalidInputError

MAX_BUCKET_NAME = 255
MAX_ENTRY_SEGMENT = 255
MAX_ENTRY_NAME = 1024
MAX_LABEL_NAME_BYTES = 256
MAX_LABEL_VALUE_BYTES = 16 * 1024
MAX_CONTENT_TYPE = 256
MAX_FILE_NAME_BYTES = 255
MAX_METADATA_BYTES = 512_000

BUCKET_NAME_ERROR = "Bucket or entry name can contain only letters, digests and [-,_] symbols"
ENTRY_NAME_ERROR = "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'"

_BUCKET_RE = re.compile(r"[A-Za-z0-9_-]+")
_ENTRY_RE = re.compile(r"[A-Za-z0-9_/-]+")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # C0 controls but HTAB, and DEL
_CONTENT_TYPE_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_MEDIA_NAME = r"[A-Za-z0-9!#$&^_.+-]+"  # RFC 6838 4.2 restricted-name characters
_MEDIA_TYPE_RE = re.compile(rf"{_MEDIA_NAME}/{_MEDIA_NAME}(?:\s*;\s*{_MEDIA_NAME}=(?:{_MEDIA_NAME}|\"[ -~]*\"))*")
# C0 and C1 controls, DEL, and the bidirectional-text controls (LRM/RLM, ALM, embeddings,
# overrides, isolates): none belongs in a file name anyone will read.
_FILE_NAME_BAD_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _short(text: str, limit: int = 64) -> str:
    """``text`` for an error message: cut, and with controls shown escaped (never raw CR/LF)."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return shown.encode("unicode_escape").decode("ascii") if _CTL_RE.search(shown) or not shown.isascii() \
        else shown


def _utf8_size(text: str, error: str) -> int:
    """Bytes of ``text`` in UTF-8; lone surrogates (from a lax decoder upstream) are ``error``."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(error) from None


# --- names that become folders ------------------------------------------------------------------


def check_bucket_name(name: str) -> None:
    if not name or _BUCKET_RE.fullmatch(name) is None:
        raise InvalidInputError(BUCKET_NAME_ERROR)
    if len(name) > MAX_BUCKET_NAME:
        raise InvalidInputError(f"Bucket name is too long: {len(name)} characters, at most {MAX_BUCKET_NAME}")


META_ENTRY = "$meta"  # attachments: ``<entry>/$meta`` holds those of ``<entry>`` (spec §12)


def is_meta_entry(name: str) -> bool:
    """An attachment (``$meta``) entry: the one test of every layer (store, query, services, HTTP)."""
    return name == META_ENTRY or name.endswith("/" + META_ENTRY)


def check_entry_name(name: str) -> None:
    base = name
    if name == META_ENTRY:
        return
    if is_meta_entry(name):
        base = name[: -len("/" + META_ENTRY)]
    if not base or base.startswith("/") or base.endswith("/") or "//" in base:
        raise InvalidInputError("Entry name must be non-empty and must not contain empty path segments")
    if _ENTRY_RE.fullmatch(base) is None:
        raise InvalidInputError(ENTRY_NAME_ERROR)
    if len(name) > MAX_ENTRY_NAME:
        raise InvalidInputError(f"Entry name is too long: {len(name)} characters, at most {MAX_ENTRY_NAME}")
    if len(base) > MAX_ENTRY_SEGMENT and any(len(s) > MAX_ENTRY_SEGMENT for s in base.split("/")):
        raise InvalidInputError(f"Entry name has a path segment longer than {MAX_ENTRY_SEGMENT} characters")


# --- record metadata ----------------------------------------------------------------------------


def check_label_name(name: str) -> None:
    if not name:
        raise InvalidInputError("Label name must not be empty")
    if _TOKEN_RE.fullmatch(name) is None:
        raise InvalidInputError(
            f"Label name '{_short(name)}' is invalid: only letters, digits and !#$%&'*+-.^_`|~ are allowed")
    if len(name) > MAX_LABEL_NAME_BYTES:
        raise InvalidInputError(f"Label name '{_short(name)}' is too long: at most {MAX_LABEL_NAME_BYTES} bytes")


def check_label_value(name: str, value: str) -> None:
    if _CTL_RE.search(value) is not None:
        raise InvalidInputError(f"Label value of '{_short(name)}' must not contain control characters")
    if value != value.strip(" \t"):
        raise InvalidInputError(f"Label value of '{_short(name)}' must not start or end with whitespace")
    size = len(value) if value.isascii() else _utf8_size(value, f"Label values for {_short(name)} must be valid UTF-8 strings")
    if size > MAX_LABEL_VALUE_BYTES:
        raise InvalidInputError(f"Label value of '{_short(name)}' is too long: at most {MAX_LABEL_VALUE_BYTES} bytes")


# A label value that passes check_label_value at a glance: printable ASCII (so its length is
# its UTF-8 size), no control character, no leading or trailing blank (or empty).
_PLAIN_VALUE_RE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")


def check_labels(labels: Mapping[str, str]) -> None:
    for name, value in labels.items():
        # The common case in one pass per string (a batch checks every record's labels); any
        # doubt goes to the full checks, which name the problem.
        if (len(name) <= MAX_LABEL_NAME_BYTES and len(value) <= MAX_LABEL_VALUE_BYTES
                and _TOKEN_RE.fullmatch(name) is not None and _PLAIN_VALUE_RE.fullmatch(value) is not None):
            continue
        check_label_name(name)
        check_label_value(name, value)


def check_content_type(content_type: str) -> None:
    if len(content_type) > MAX_CONTENT_TYPE:
        raise InvalidInputError(f"Content type is too long: at most {MAX_CONTENT_TYPE} characters")
    if _CONTENT_TYPE_RE.fullmatch(content_type) is None:
        raise InvalidInputError(f"Content type '{_short(content_type)}' is invalid: visible ASCII only")


def check_media_type(value: str, what: str = "content type") -> None:
    """A content type a client names for a file: ``check_content_type`` and, stricter, the
    ``type/subtype[; name=value]`` form (it labels a file someone else will open)."""
    if len(value) > MAX_CONTENT_TYPE or _MEDIA_TYPE_RE.fullmatch(value) is None:
        raise InvalidInputError(f"Invalid {what}: a content type is type/subtype[; name=value]")
    check_content_type(value)


def _metadata_size(content_type: str, labels: Mapping[str, str]) -> int:
    return len(content_type) + sum(len(k) + len(v) for k, v in labels.items())


def check_record_metadata(content_type: str, labels: Mapping[str, str]) -> None:
    """Everything a record write stores besides its payload (the store's ``begin_write``)."""
    check_content_type(content_type)
    if labels:
        total = len(content_type)
        for name, value in labels.items():
            total += len(name) + len(value)
            # As check_labels, inline: the common case costs two regex passes per label.
            if (len(name) <= MAX_LABEL_NAME_BYTES and len(value) <= MAX_LABEL_VALUE_BYTES
                    and _TOKEN_RE.fullmatch(name) is not None and _PLAIN_VALUE_RE.fullmatch(value) is not None):
                continue
            check_label_name(name)
            check_label_value(name, value)
        if total > MAX_METADATA_BYTES:
            raise InvalidInputError(f"Record labels are too large: at most {MAX_METADATA_BYTES} bytes in all")


def check_label_update(current: Mapping[str, str], update: Mapping[str, str], content_type: str = "") -> None:
    """A label update (an empty value removes a label); ``current`` is what the record has."""
    for name, value in update.items():
        check_label_name(name)
        if value:
            check_label_value(name, value)
    merged = {k: v for k, v in {**current, **update}.items() if v}
    if _metadata_size(content_type, merged) > MAX_METADATA_BYTES:
        raise InvalidInputError(f"Record labels are too large: at most {MAX_METADATA_BYTES} bytes in all")


def check_file_name(name: str, what: str = "File name", *, path_ok: bool = False) -> None:
    """A file name as a client gives it; ``path_ok``: ``a/b.bin`` is fine (a download keeps
    only the last segment)."""
    if not name:
        raise InvalidInputError(f"{what} must not be empty")
    if _FILE_NAME_BAD_RE.search(name) is not None or name in (".", "..") or (
            not path_ok and ("/" in name or "\\" in name)):
        raise InvalidInputError(f"{what} '{_short(name)}' is invalid: no control characters"
                                + ("" if path_ok else ", '/' or '\\'"))
    if _utf8_size(name, f"{what} must be valid UTF-8") > MAX_FILE_NAME_BYTES:
        raise InvalidInputError(f"{what} is too long: at most {MAX_FILE_NAME_BYTES} bytes")


MAX_FILENAME_CHARS = 200  # a download-safe name is cut to this many characters (and 255 bytes)
_FILE_NAME_FORBIDDEN = set('/\\"\'`;:*?<>|')


def sanitize_filename(name: str, default: str = "download") -> str:
    """A safe download name: no path, quotes, control or format chars, leading dots; capped length.

    ``a/b/c.bin`` -> ``c.bin`` (the last path segment is the name a browser would use anyway).
    Non-ASCII letters are kept (``links.content_disposition`` says how they are sent). The
    result (unless it is ``default``) always passes ``check_file_name``.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    cleaned = "".join(
        "_" if ch in _FILE_NAME_FORBIDDEN else ch
        for ch in name
        if unicodedata.category(ch)[0] != "C"   # Cc/Cf/Cs/Co/Cn: control, bidi overrides, ...
    )
    cleaned = cleaned.strip(" .\t")
    if len(cleaned) > MAX_FILENAME_CHARS or len(cleaned.encode("utf-8")) > MAX_FILE_NAME_BYTES:
        stem, dot, ext = cleaned.rpartition(".")
        if not (dot and 0 < len(ext) <= 16):
            stem, ext = cleaned, ""
        suffix = "." + ext if ext else ""
        stem = stem[:MAX_FILENAME_CHARS - len(suffix)]
        while len((stem + suffix).encode("utf-8")) > MAX_FILE_NAME_BYTES:
            stem = stem[:-1]
        cleaned = (stem + suffix).strip(" .\t")
    return cleaned or default


# --- reading back what older versions stored ----------------------------------------------------


def header_value_ok(text: str) -> bool:
    """True if ``text`` can be sent as (part of) a header value as it is."""
    return _CTL_RE.search(text) is None and text == text.strip(" \t")


def readable_labels(labels: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """The labels that can go out as ``x-reduct-label-<name>: <value>``; the rest (stored before
    these rules existed) is left out of the head rather than breaking the response."""
    for name, value in labels.items():
        if _TOKEN_RE.fullmatch(name) is not None and header_value_ok(value):
            yield name, value


def readable_content_type(content_type: str, default: str = "application/octet-stream") -> str:
    return content_type if content_type and header_value_ok(content_type) else default
