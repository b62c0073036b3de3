"""Domain errors: what went wrong, in the exact words a client sees.

Owns: the exception hierarchy of edge and nothing else (``message_of`` reads its texts).
Must not: know HTTP status codes (``edge/http/errors.py`` maps types to statuses in one table),
import anything from edge or third parties.

Raise by meaning, with the client-facing text of the ReductStore spec where it has one:
``raise NotFoundError(f"Bucket '{name}' is not found")``.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class; ``message`` is shown to clients verbatim (x-reduct-error)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def message_of(exc: BaseException) -> str:
    """An ``EdgeError``'s client-facing ``message``, else ``str(exc)`` (for texts that wrap both)."""
    return exc.message if isinstance(exc, EdgeError) else str(exc)


class InvalidInputError(EdgeError):
    """Malformed input: parameters, headers, JSON, names, the query language (422)."""


class BadRequestError(EdgeError):
    """A request that is well-formed but cannot be carried out as sent (400): short bodies, timeouts."""


class NotFoundError(EdgeError):
    """Bucket, entry, record, token, query ... does not exist (404)."""


class AlreadyExistsError(EdgeError):
    """Creating something that exists (409)."""


class ConflictError(EdgeError):
    """State conflict: duplicate timestamp, provisioned resource, being deleted (409)."""


class UnauthorizedError(EdgeError):
    """Missing, invalid or expired token (401)."""


class ForbiddenError(EdgeError):
    """Valid token without the needed permission (403)."""


class TooEarlyError(EdgeError):
    """Record still being written (425)."""


class QuotaExceededError(EdgeError):
    """HARD quota would be exceeded (400 in the ReductStore API)."""


class PayloadTooLargeError(EdgeError):
    """A single record or upload larger than a limit that can never be met (413)."""


class DiskFullError(EdgeError):
    """The file system has no room (507)."""


class StorageLimitError(EdgeError):
    """FIFO could not make room, or a global storage cap was hit (500 in the ReductStore API)."""


class NotReadyError(EdgeError):
    """Server still starting (503)."""


class RangeNotSatisfiableError(EdgeError):
    """HTTP Range outside the resource (416)."""

    def __init__(self, message: str, total_size: int = 0):
        super().__init__(message)
        self.total_size = total_size


class RateLimitedError(EdgeError):
    """Too many requests from one client (429); ``retry_after_s`` becomes ``Retry-After``."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CorruptRecordError(EdgeError):
    """Stored bytes failed their checksum or framing (500; never served as good)."""


class StorageIOError(EdgeError):
    """An OS error below the store that is not a full disk (500)."""


class LinkInvalidError(InvalidInputError):
    """A share-link token that does not decode or authenticate (422)."""


class MethodNotAllowedError(EdgeError):
    """Known path, wrong method (405)."""


class ChecksumMismatchError(EdgeError):
    """tus Upload-Checksum did not match the bytes received (460)."""


class ConfigError(Exception):
    """A bad setting at start-up; the message names the variable. Not an EdgeError: it never reaches HTTP."""
