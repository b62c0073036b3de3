"""Permission policies as values (spec §2.3, §2.4; anchors §5).

Owns: ``Anonymous``, ``Authenticated``, ``FullAccess``, ``Read(bucket)``, ``Write(bucket)``,
``ReadMetrics`` and the bucket-pattern matcher. A handler names the access it needs at its call site::

    token = ctx.tokens.authenticate(...) if policy.needs_token else None
    policy.check(token)          # ForbiddenError with the spec's exact text

Must not: look tokens up, check lifetimes or IPs (that is authentication, done before), do I/O,
import anything but stdlib and ``edge``'s pure modules.

Matching rules: a pattern ending in ``*`` matches every bucket starting with the part before it
(only a trailing ``*`` is special); buckets starting with ``$`` are matched only by an exact
entry, never by a wildcard; ``write`` does not imply ``read`` nor the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from edge.auth.tokens import Token
from edge.errors import ForbiddenError, UnauthorizedError


def bucket_matches(pattern: str, bucket: str) -> bool:
    if bucket.startswith("$"):
        # System buckets ($system, $audit) hold other tokens' activity: opt in by exact name only.
        return pattern == bucket
    if pattern.endswith("*"):
        return bucket.startswith(pattern[:-1])
    return pattern == bucket


def any_matches(patterns: Iterable[str], bucket: str) -> bool:
    return any(bucket_matches(p, bucket) for p in patterns)


def _require(token: Token | None) -> Token:
    # Authentication runs before the policy; a missing token here is a wiring bug in a handler,
    # but answering 401 is the safe failure.
    if token is None:
        raise UnauthorizedError("No bearer token in request header")
    return token


class Policy(Protocol):
    needs_token: bool

    def allows(self, token: Token | None) -> bool: ...

    def check(self, token: Token | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Anonymous:
    needs_token = False

    def allows(self, token: Token | None) -> bool:
        return True

    def check(self, token: Token | None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Authenticated:
    needs_token = True

    def allows(self, token: Token | None) -> bool:
        return token is not None

    def check(self, token: Token | None) -> None:
        _require(token)


@dataclass(frozen=True, slots=True)
class FullAccess:
    needs_token = True

    def allows(self, token: Token | None) -> bool:
        return token is not None and token.permissions.full_access

    def check(self, token: Token | None) -> None:
        token = _require(token)
        if not token.permissions.full_access:
            raise ForbiddenError(f"Token '{token.name}' doesn't have full access")


@dataclass(frozen=True, slots=True)
class _BucketAccess:
    """Full access, or a pattern in the token's ``read`` / ``write`` list that matches ``bucket``."""

    bucket: str
    needs_token = True
    access = ""     # "read" or "write": the permission list consulted, and the word in the 403

    def allows(self, token: Token | None) -> bool:
        if token is None:
            return False
        p = token.permissions
        return p.full_access or any_matches(p.read if self.access == "read" else p.write, self.bucket)

    def check(self, token: Token | None) -> None:
        token = _require(token)
        if not self.allows(token):
            raise ForbiddenError(
                f"Token '{token.name}' doesn't have {self.access} access to bucket '{self.bucket}'"
            )


@dataclass(frozen=True, slots=True)
class Read(_BucketAccess):
    access = "read"


@dataclass(frozen=True, slots=True)
class Write(_BucketAccess):
    access = "write"


# A token whose read list names this exactly may scrape /metrics and nothing else (no bucket can
# be called so: bucket names cannot start with "$", and wildcards never match "$" names).
METRICS_PERMISSION = "$metrics"


@dataclass(frozen=True, slots=True)
class ReadMetrics:
    """Full access, or ``"$metrics"`` in the token's ``read`` list (a scrape-only token)."""

    needs_token = True

    def allows(self, token: Token | None) -> bool:
        if token is None:
            return False
        p = token.permissions
        return p.full_access or METRICS_PERMISSION in p.read

    def check(self, token: Token | None) -> None:
        token = _require(token)
        if not self.allows(token):
            raise ForbiddenError(f"Token '{token.name}' doesn't have full access or read access to '{METRICS_PERMISSION}'")
