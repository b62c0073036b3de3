"""Authentication and authorization: tokens, policies, the token repository, the bad-token throttle.

Owns: the public names of the auth room (re-exports only; no logic here).
Must not: import trio or HTTP. ``tokens``, ``policy`` and ``throttle`` are pure; ``repository``
does the (synchronous) file I/O for ``<data>/.edge/tokens.json``.
"""

from edge.auth.policy import Anonymous, Authenticated, FullAccess, Policy, Read, Write, bucket_matches
from edge.auth.repository import TokenRepository
from edge.auth.throttle import AuthThrottle
from edge.auth.tokens import (
    DISABLED_TOKEN_NAME,
    INIT_TOKEN_NAME,
    Permissions,
    Token,
    TokenSpec,
    disabled_token,
    format_rfc3339,
    generate_secret,
    hash_secret,
    is_expired,
    parse_rfc3339,
    secret_to_wire,
    token_to_wire,
    verify_secret,
)

__all__ = [
    "Anonymous",
    "AuthThrottle",
    "Authenticated",
    "DISABLED_TOKEN_NAME",
    "FullAccess",
    "INIT_TOKEN_NAME",
    "Permissions",
    "Policy",
    "Read",
    "Token",
    "TokenRepository",
    "TokenSpec",
    "Write",
    "bucket_matches",
    "disabled_token",
    "format_rfc3339",
    "generate_secret",
    "hash_secret",
    "is_expired",
    "parse_rfc3339",
    "secret_to_wire",
    "token_to_wire",
    "verify_secret",
]
