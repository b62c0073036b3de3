"""tus 1.0.0 as values: header parsing, Upload-Metadata -> destination, the upload state table.

Owns: the protocol constants (version, extensions, checksum algorithms), parsing of
``Tus-Resumable``, ``Upload-Offset``, ``Upload-Length``, ``Upload-Defer-Length``,
``Upload-Checksum`` and ``Upload-Metadata`` with the client-facing texts, the mapping of metadata
onto a record (bucket, entry, ts, content type, labels) and the legal state transitions.
Must not: do I/O, import trio, know HTTP statuses (errors are raised by meaning; the two tus
statuses the shared table lacks, 412 and 415, are carried by ``status`` on the error types below).

Metadata keys: ``bucket``, ``entry`` (required), ``ts`` (µs; default: creation time),
``filetype`` -> content type, ``filename`` -> label ``filename``, ``label-<name>`` -> label
``<name>``. Other keys are ignored, because browser clients (Uppy) add their own (``name``,
``type``, ``relativePath``) and refusing them would break clients that work unchanged elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.errors import BadRequestError, EdgeError, InvalidInputError
from edge.formats.metadata import (
    check_bucket_name, check_entry_name, check_file_name, check_label_value,
)
from edge.formats.metadata import check_content_type as check_stored_content_type

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "creation-with-upload", "termination", "expiration", "checksum")
CHECKSUM_ALGORITHMS = {"sha1": 20, "sha256": 32}   # name -> digest length in bytes
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
U64_MAX = 2**64 - 1

# The headers a browser must be allowed to read for tus to work across origins.
EXPOSE_HEADERS = ("Upload-Offset", "Location", "Upload-Length", "Tus-Version", "Tus-Resumable",
                  "Tus-Max-Size", "Tus-Extension", "Upload-Metadata", "Upload-Expires",
                  "x-reduct-time", "x-reduct-entry", "x-reduct-bucket")


class TusVersionError(EdgeError):
    """Tus-Resumable missing or not 1.0.0 (tus: 412 Precondition Failed + Tus-Version)."""

    status = 412


class UnsupportedMediaTypeError(EdgeError):
    """PATCH without ``application/offset+octet-stream`` (tus: 415)."""

    status = 415


# --- headers ------------------------------------------------------------------------------------


def check_tus_resumable(value: str | None) -> None:
    if value is None:
        raise TusVersionError(f"Tus-Resumable header is required (supported version: {TUS_VERSION})")
    if value.strip() != TUS_VERSION:
        raise TusVersionError(f"Tus-Resumable '{value.strip()}' is not supported (supported version: {TUS_VERSION})")


def _u64(value: str | None, name: str) -> int:
    if value is None:
        raise BadRequestError(f"{name} header is required")
    text = value.strip()
    if not text or not text.isascii() or not text.isdigit() or int(text) > U64_MAX:
        raise BadRequestError(f"{name} header must be a non-negative integer")
    return int(text)


def parse_offset(value: str | None) -> int:
    return _u64(value, "Upload-Offset")


def parse_length(length: str | None, defer: str | None) -> int:
    """The total size of a new upload; deferring it is an extension we do not offer."""
    if defer is not None:
        if defer.strip() != "1":
            raise BadRequestError("Upload-Defer-Length header must be 1")
        if length is not None:
            raise BadRequestError("Upload-Length and Upload-Defer-Length must not both be set")
        raise BadRequestError("Upload-Defer-Length is not supported: send Upload-Length")
    return _u64(length, "Upload-Length")


def check_content_type(value: str | None) -> None:
    if (value or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaTypeError(f"Content-Type must be {OFFSET_CONTENT_TYPE}")


@dataclass(frozen=True)
class Checksum:
    algorithm: str     # hashlib name: "sha1" | "sha256"
    digest: bytes


def parse_checksum(value: str | None) -> Checksum | None:
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequestError(
            f"Upload-Checksum algorithm '{algorithm}' is not supported (supported: {','.join(CHECKSUM_ALGORITHMS)})")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("Upload-Checksum must be '<algorithm> <base64 digest>'") from None
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]:
        raise BadRequestError(f"Upload-Checksum: a {algorithm} digest has {CHECKSUM_ALGORITHMS[algorithm]} bytes")
    return Checksum(algorithm, digest)


# --- Upload-Metadata ----------------------------------------------------------------------------

_KEY_RE = re.compile(r"^[!-~]+$")                 # printable ASCII without space (tus: no spaces, no commas)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")     # must survive as an x-reduct-label-<name> header


def parse_metadata(value: str | None) -> dict[str, str]:
    """``key b64, key b64, key`` -> {key: text}; every value must decode to UTF-8."""
    pairs: dict[str, str] = {}
    if value is None or not value.strip():
        return pairs
    for item in value.split(","):
        item = item.strip()
        key, _, encoded = item.partition(" ")
        encoded = encoded.strip()
        if not key or not _KEY_RE.match(key) or " " in encoded:
            raise BadRequestError(f"Upload-Metadata: '{item}' is not a 'key base64value' pair")
        if key in pairs:
            raise BadRequestError(f"Upload-Metadata: key '{key}' appears twice")
        try:
            pairs[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequestError(f"Upload-Metadata: value of '{key}' is not base64 of UTF-8 text") from None
    return pairs


@dataclass(frozen=True)
class Destination:
    """Where a finished upload goes: one record of ``bucket``/``entry`` at ``ts_us``."""

    bucket: str
    entry: str
    ts_us: int
    content_type: str
    labels: dict[str, str] = field(default_factory=dict)


def destination(metadata: dict[str, str], now_us: int, default_content_type: str) -> Destination:
    """Map decoded metadata onto a record before any byte is stored: a missing or malformed
    key is a 400; a value the store would refuse (``formats/metadata.py``) is a 422 naming it."""
    for key in ("bucket", "entry"):
        if not metadata.get(key, "").strip():
            raise BadRequestError(f"Upload-Metadata must contain '{key}'")
    ts_us = now_us
    if "ts" in metadata:
        text = metadata["ts"].strip()
        if not text.isascii() or not text.isdigit() or int(text) > U64_MAX:
            raise BadRequestError("Upload-Metadata 'ts' must be an unix timestamp in microseconds")
        ts_us = int(text)
    labels: dict[str, str] = {}
    if metadata.get("filename"):
        _stored_rule("filename", check_file_name, metadata["filename"], "File name")
        labels["filename"] = metadata["filename"]
    for key, text in metadata.items():
        if key.startswith("label-"):
            name = key[len("label-"):].lower()   # label names travel as (case-insensitive) header names
            if not _LABEL_RE.match(name):
                raise InvalidInputError(f"Upload-Metadata '{key}': label name must be letters, digits or [-_.]")
            _stored_rule(key, check_label_value, name, text)
            labels[name] = text
    content_type = metadata.get("filetype", "").strip() or default_content_type
    bucket, entry = metadata["bucket"].strip(), metadata["entry"].strip()
    # The rules every stored record follows (422), checked before the first byte is accepted.
    _stored_rule("bucket", check_bucket_name, bucket)
    _stored_rule("entry", check_entry_name, entry)
    _stored_rule("filetype", check_stored_content_type, content_type)
    return Destination(bucket, entry, ts_us, content_type, labels)


def _stored_rule(key: str, check: Callable[..., None], *args: str) -> None:
    """A ``formats/metadata`` rule, its 422 prefixed with the metadata key it is about."""
    try:
        check(*args)
    except InvalidInputError as exc:
        raise InvalidInputError(f"Upload-Metadata '{key}': {exc.message}") from None


def encode_metadata(metadata: dict[str, str]) -> str:
    """The inverse of ``parse_metadata`` (HEAD echoes it; tests build headers with it)."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


# --- the state table ----------------------------------------------------------------------------


class State(str, enum.Enum):
    CREATED = "CREATED"          # folder exists, no byte yet
    RECEIVING = "RECEIVING"      # some bytes are durable, not all
    COMPLETE = "COMPLETE"        # the record is durable in the store; only a tombstone is left
    TERMINATED = "TERMINATED"    # the client deleted it
    EXPIRED = "EXPIRED"          # the reaper deleted it


class Event(str, enum.Enum):
    CHUNK = "CHUNK"              # a PATCH made bytes durable, the upload is not full yet
    COMMIT = "COMMIT"            # the last byte arrived and the record is durable
    TERMINATE = "TERMINATE"
    EXPIRE = "EXPIRE"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.CREATED, Event.CHUNK): State.RECEIVING,
    (State.CREATED, Event.COMMIT): State.COMPLETE,        # zero-length upload, or all of it with POST
    (State.CREATED, Event.TERMINATE): State.TERMINATED,
    (State.CREATED, Event.EXPIRE): State.EXPIRED,
    (State.RECEIVING, Event.CHUNK): State.RECEIVING,
    (State.RECEIVING, Event.COMMIT): State.COMPLETE,
    (State.RECEIVING, Event.TERMINATE): State.TERMINATED,
    (State.RECEIVING, Event.EXPIRE): State.EXPIRED,
    # A completed upload keeps a tombstone until it expires, so a client whose last PATCH
    # answer was lost sees the full offset on HEAD instead of starting over.
    (State.COMPLETE, Event.TERMINATE): State.TERMINATED,
    (State.COMPLETE, Event.EXPIRE): State.EXPIRED,
}

TERMINAL = frozenset({State.TERMINATED, State.EXPIRED})


class IllegalTransition(Exception):
    """A bug (not a client error): the service asked for a move the table does not allow."""


def advance(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} is not allowed in state {state.value}") from None


def accepts_bytes(state: State) -> bool:
    return state in (State.CREATED, State.RECEIVING)
