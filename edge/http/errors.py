"""The ONE table from domain errors to HTTP answers.

Owns: exception type -> status, the ``x-reduct-error`` header and the ``{"detail": ...}`` body,
and the 500 catch-all for bugs (logged once with the traceback, answered with a generic text).
Must not: be bypassed: handlers raise ``EdgeError`` subclasses, never build error responses.
"""

from __future__ import annotations

import json
import logging
import math

from ..errors import (
    AlreadyExistsError, BadRequestError, ChecksumMismatchError, ConflictError, CorruptRecordError,
    DiskFullError, EdgeError, ForbiddenError, InvalidInputError, MethodNotAllowedError, NotFoundError,
    NotReadyError, PayloadTooLargeError, QuotaExceededError, RangeNotSatisfiableError, RateLimitedError,
    StorageIOError, StorageLimitError, TooEarlyError, UnauthorizedError,
)
from ..server.types import Response

log = logging.getLogger("edge.http")

STATUS: dict[type, int] = {
    InvalidInputError: 422,
    BadRequestError: 400,
    NotFoundError: 404,
    AlreadyExistsError: 409,
    ConflictError: 409,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    TooEarlyError: 425,
    QuotaExceededError: 400,
    PayloadTooLargeError: 413,
    DiskFullError: 507,
    StorageLimitError: 500,
    NotReadyError: 503,
    RangeNotSatisfiableError: 416,
    RateLimitedError: 429,
    CorruptRecordError: 500,
    StorageIOError: 500,
    MethodNotAllowedError: 405,
    ChecksumMismatchError: 460,
}


def status_of(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def header_safe(text: str) -> str:
    """ReductStore sends ``Unparsable message`` when the text is not a valid header value."""
    if not text or any(ord(c) < 0x20 or ord(c) > 0x7E for c in text):
        return "Unparsable message"
    return text


def error_response(exc: BaseException) -> Response:
    if isinstance(exc, EdgeError):
        text = exc.message
    else:
        log.error("unhandled error", exc_info=exc)
        text = "Internal server error"
    status = status_of(exc)
    headers = [("x-reduct-error", header_safe(text)), ("content-type", "application/json")]
    if isinstance(exc, RangeNotSatisfiableError):
        headers.append(("content-range", f"bytes */{exc.total_size}"))
    if isinstance(exc, RateLimitedError) and exc.retry_after_s is not None:
        # Whole seconds, rounded up: a client that waits exactly this long is let through.
        headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after_s)))))
    # Upstream builds the JSON by string formatting with " replaced by '; we keep the bytes the
    # same but let the encoder escape everything else properly.
    body = json.dumps({"detail": text.replace('"', "'")}, ensure_ascii=False).encode()
    return Response(status, headers, body)
