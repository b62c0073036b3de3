"""Token values and the pure rules around them (spec §2.2, §4).

Owns: the ``Token``/``Permissions``/``TokenSpec`` values; secret generation (``<name>-<32 hex>``);
salted hashing and constant-time verification; RFC 3339 parsing/formatting; the lifetime rule
(§2.2 step 3) and the IP allow-list rule (step 4) with their exact 401 texts; parsing and
validating the create body (v1 flat / v2 nested) with the exact 422 texts; parsing the
``RS_TOKEN_<ID>_*`` variables (from a mapping passed in); the ten-key wire shape.
Must not: do file I/O, keep state, know about HTTP, import anything but stdlib and ``edge.errors``.

Secrets at rest use ReductStore's format ``sha256:<hex salt16>:<hex sha256(salt || secret)>``.
A single fast hash is enough because server-made secrets carry 128 random bits; a slow KDF would
only cost CPU on every request. Time is always passed in (``now``: an aware UTC datetime).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping

from edge.errors import ConfigError, InvalidInputError, UnauthorizedError

INIT_TOKEN_NAME = "init-token"
DISABLED_TOKEN_NAME = "AUTHENTICATION-DISABLED"
HASH_SCHEME = "sha256"
SALT_BYTES = 16  # upstream: 16 random bytes, hex in the stored string
SECRET_RANDOM_BYTES = 16  # -> 32 lowercase hex chars, as ReductStore generates

# §2.3: elements not starting with '$' must match this (fullmatch: Python's '$' would allow "\n").
_PERMISSION_RE = re.compile(r"[*a-zA-Z0-9_\-]+")
# RFC 3339 date-time; the offset is mandatory so naive datetimes are rejected (§4.3).
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)

_ENV_TOKEN_RE = re.compile(r"RS_TOKEN_(.+)_(NAME|VALUE|FULL_ACCESS|READ|WRITE|EXPIRES_AT)")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}

_V2_KEYS = frozenset({"permissions", "expires_at", "ttl", "ip_allowlist"})
_V1_KEYS = frozenset({"full_access", "read", "write", "ip_allowlist"})
_PERMISSION_KEYS = frozenset({"full_access", "read", "write"})


@dataclass(frozen=True, slots=True)
class Permissions:
    full_access: bool = False
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


FULL_ACCESS = Permissions(full_access=True)


@dataclass(frozen=True, slots=True)
class Token:
    """A stored token. ``secret_hash`` is the at-rest form (never the secret); links key off it."""

    name: str
    created_at: datetime
    permissions: Permissions = Permissions()
    secret_hash: str = field(default="", repr=False)
    is_provisioned: bool = False
    expires_at: datetime | None = None
    ttl_s: int | None = None
    last_access: datetime | None = None
    ip_allowlist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """What a create body asks for, after shape parsing (before the semantic checks)."""

    permissions: Permissions = Permissions()
    expires_at: datetime | None = None
    ttl_s: int | None = None
    ip_allowlist: tuple[str, ...] = ()


# --- secrets -----------------------------------------------------------------------------------


def generate_secret(name: str) -> str:
    """``<name>-<32 lowercase hex>``: clients and tests look for the ``<name>-`` prefix."""
    return f"{name}-{secrets.token_hex(SECRET_RANDOM_BYTES)}"


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASH_SCHEME}:{salt.hex()}:{digest}"


def is_hashed(stored: str) -> bool:
    return stored.startswith(HASH_SCHEME + ":")


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of ``secret`` against a stored hash (or a legacy plain secret)."""
    if not stored:
        return False  # a token without a stored secret must never match "Bearer "
    if not is_hashed(stored):
        # Upstream accepts plain secrets for migration; compare in constant time all the same.
        return hmac.compare_digest(stored.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass"))
    parts = stored.split(":")
    if len(parts) != 3:
        return False
    try:
        salt = bytes.fromhex(parts[1])
    except ValueError:
        return False
    digest = hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).hexdigest()
    return hmac.compare_digest(digest.encode("ascii"), parts[2].lower().encode("ascii", "replace"))


# --- time --------------------------------------------------------------------------------------


def format_rfc3339(value: datetime) -> str:
    """UTC with ``Z``; 6 fractional digits when there are any (spec §1.4 recommendation)."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_rfc3339(text: object) -> datetime:
    """Parse an RFC 3339 date-time into an aware UTC datetime; ``ValueError`` if not one.

    Fractions beyond microseconds are truncated (upstream may send nanoseconds). A missing offset
    is an error: a naive time would silently mean "server local time".
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    m = _RFC3339_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    return value.astimezone(timezone.utc)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be an aware UTC datetime")


# --- §2.2 steps 3 and 4 ------------------------------------------------------------------------


def is_expired(token: Token, now: datetime) -> bool:
    _require_aware(now)
    if token.expires_at is not None and now >= token.expires_at:
        return True
    if token.ttl_s is not None:
        # Inactivity: measured from the last use, or from creation/rotation if never used.
        since = token.created_at if token.last_access is None else max(token.last_access, token.created_at)
        if now - since > timedelta(seconds=token.ttl_s):
            return True
    return False


def check_lifetime(token: Token, now: datetime) -> None:
    if is_expired(token, now):
        raise UnauthorizedError("Token has expired")


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # drop an IPv6 zone id: it never appears in allow-lists
    addr = ipaddress.ip_address(text)
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; match them as IPv4.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_allowlist_entry(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An allow-list entry as a network (a plain IP is a /32 or /128); ``ValueError`` if invalid."""
    if "/" in entry:
        # strict=False: "10.0.0.1/8" means the network 10.0.0.0/8, as users mean it.
        return ipaddress.ip_network(entry.strip(), strict=False)
    return ipaddress.ip_network(_parse_ip(entry))


def ip_allowed(allowlist: tuple[str, ...] | list[str], client_ip: str) -> bool:
    """True if ``client_ip`` equals a plain entry or lies in a CIDR entry. Empty list: unrestricted."""
    if not allowlist:
        return True
    try:
        addr = _parse_ip(client_ip)
    except ValueError:
        return False
    for entry in allowlist:
        try:
            net = parse_allowlist_entry(entry)
        except ValueError:
            continue  # validated at create time; a bad entry from an old file just never matches
        if addr.version == net.version and addr in net:
            return True
    return False


def check_client_ip(token: Token, client_ip: str | None) -> None:
    if not token.ip_allowlist:
        return
    if not client_ip:
        raise UnauthorizedError("Client IP is required for this token")
    if not ip_allowed(token.ip_allowlist, client_ip):
        raise UnauthorizedError(f"Token is not allowed for client IP {client_ip}")


# --- create body (§4.3) ------------------------------------------------------------------------


def _invalid_body() -> InvalidInputError:
    return InvalidInputError("Invalid body")


def _without_nulls(obj: Mapping[str, object]) -> dict[str, object]:
    # Spec §18.4: clients send every model field; null means "absent".
    return {k: v for k, v in obj.items() if v is not None}


def _str_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _invalid_body()
    return tuple(value)


def _permissions_from(obj: Mapping[str, object]) -> Permissions:
    full_access = obj.get("full_access", False)
    if not isinstance(full_access, bool):
        raise _invalid_body()
    return Permissions(full_access, _str_list(obj.get("read", [])), _str_list(obj.get("write", [])))


def parse_create_body(body: object) -> TokenSpec:
    """Shape only: v2 ``{"permissions": {...}, "expires_at"?, "ttl"?, "ip_allowlist"?}`` or
    v1 ``{"full_access"?, "read"?, "write"?, "ip_allowlist"?}``; anything else -> 422 Invalid body.

    Unknown keys are rejected in both shapes: if v1 ignored them, a v2 body with a typo would be
    accepted as "no permissions" instead of failing.
    """
    if not isinstance(body, dict):
        raise _invalid_body()
    body = _without_nulls(body)
    keys = set(body)
    if keys <= _V2_KEYS and keys & {"permissions", "expires_at", "ttl"}:
        perms_obj = body.get("permissions", {})
        if not isinstance(perms_obj, dict):
            raise _invalid_body()
        perms_obj = _without_nulls(perms_obj)
        if not set(perms_obj) <= _PERMISSION_KEYS:
            raise _invalid_body()
        permissions = _permissions_from(perms_obj)
        ttl = body.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
            raise _invalid_body()  # u64 upstream: negative or non-integer fails deserialisation
        expires_at = None
        if "expires_at" in body:
            try:
                expires_at = parse_rfc3339(body["expires_at"])
            except ValueError:
                raise _invalid_body() from None
        return TokenSpec(permissions, expires_at, ttl, _str_list(body.get("ip_allowlist", [])))
    if keys <= _V1_KEYS:
        return TokenSpec(_permissions_from(body), None, None, _str_list(body.get("ip_allowlist", [])))
    raise _invalid_body()


def check_permission_names(permissions: Permissions) -> None:
    for name in (*permissions.read, *permissions.write):
        if not name.startswith("$") and _PERMISSION_RE.fullmatch(name) is None:
            raise InvalidInputError(
                f"Permission can contain only bucket names or wildcard '*', got '{name}'"
            )


def validate_spec(spec: TokenSpec, now: datetime) -> None:
    """Semantic checks in upstream order: permission syntax -> ttl -> expiry, then allow-list.

    (Empty name and "already exists" come before these; the repository checks them.)
    """
    _require_aware(now)
    check_permission_names(spec.permissions)
    if spec.ttl_s == 0:
        raise InvalidInputError("Token TTL must be greater than zero")
    if spec.expires_at is not None and spec.expires_at < now:
        raise InvalidInputError("Token expiration date must not be in the past")
    for entry in spec.ip_allowlist:
        try:
            parse_allowlist_entry(entry)
        except ValueError:
            # Not in the spec's error list: rejecting early beats a token that can never be used.
            raise InvalidInputError(f"Invalid IP address or CIDR in ip_allowlist: '{entry}'") from None


# --- provisioning from the environment (§16.2) ------------------------------------------------


def _env_bool(var: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{var}: expected true or false, got '{value}'")


def parse_env_tokens(env: Mapping[str, str]) -> dict[str, tuple[str, Permissions, datetime | None]]:
    """``RS_TOKEN_<ID>_NAME/_VALUE/_FULL_ACCESS/_READ/_WRITE/_EXPIRES_AT`` -> name: (secret, perms, expiry).

    Groups without a name or value are dropped (§16.2); a bad value raises ``ConfigError``
    naming the variable, so a typo stops start-up instead of silently granting less (or more).
    """
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    for var, value in env.items():
        m = _ENV_TOKEN_RE.fullmatch(var)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = (var, value)
    out: dict[str, tuple[str, Permissions, datetime | None]] = {}
    for ident in sorted(groups):
        g = groups[ident]
        name = g.get("NAME", ("", ""))[1].strip()
        secret = g.get("VALUE", ("", ""))[1]
        if not name or not secret:
            continue  # §16.2: dropped if no value (and a token without a name is nothing)

        def _list(key: str) -> tuple[str, ...]:
            return tuple(x.strip() for x in g.get(key, ("", ""))[1].split(",") if x.strip())

        full = _env_bool(*g["FULL_ACCESS"]) if "FULL_ACCESS" in g else False
        perms = Permissions(full, _list("READ"), _list("WRITE"))
        try:
            check_permission_names(perms)
        except InvalidInputError as exc:
            raise ConfigError(f"RS_TOKEN_{ident}_READ/WRITE: {exc.message}") from None
        expires_at = None
        if "EXPIRES_AT" in g and g["EXPIRES_AT"][1].strip():
            var, value = g["EXPIRES_AT"]
            try:
                expires_at = parse_rfc3339(value)
            except ValueError:
                raise ConfigError(f"{var}: expected an RFC 3339 date-time, got '{value}'") from None
        out[name] = (secret, perms, expires_at)
    return out


# --- wire shapes (§4.1) ------------------------------------------------------------------------


def permissions_to_wire(p: Permissions) -> dict[str, object]:
    return {"full_access": p.full_access, "read": list(p.read), "write": list(p.write)}


def token_to_wire(token: Token, now: datetime) -> dict[str, object]:
    """Exactly the ten keys of §4.1; ``value`` is always blank, ``is_expired`` computed at ``now``."""
    return {
        "name": token.name,
        "value": "",
        "created_at": format_rfc3339(token.created_at),
        "permissions": permissions_to_wire(token.permissions),
        "is_provisioned": token.is_provisioned,
        "expires_at": None if token.expires_at is None else format_rfc3339(token.expires_at),
        "ttl": token.ttl_s,
        "last_access": None if token.last_access is None else format_rfc3339(token.last_access),
        "ip_allowlist": list(token.ip_allowlist),
        "is_expired": is_expired(token, now),
    }


def secret_to_wire(value: str, created_at: datetime) -> dict[str, str]:
    """Response of create/rotate: the only place a secret ever leaves the server."""
    return {"value": value, "created_at": format_rfc3339(created_at)}


def disabled_token(now: datetime) -> Token:
    """The synthetic token of auth-disabled mode (§2.1): full access, no secret."""
    return Token(name=DISABLED_TOKEN_NAME, created_at=now, permissions=FULL_ACCESS)
