"""The token store: ``<data>/.edge/tokens.json`` plus the in-memory lookup (spec §2, §4, §16.2).

Owns: loading/saving tokens atomically, the token API operations (list, get, create, rotate,
remove) with their exact texts and order, bearer authentication (§2.2, in order), start-up
provisioning (``RS_API_TOKEN``, ``RS_INIT_API_TOKEN``, ``RS_TOKEN_<ID>_*``), keeping permission
lists in step with bucket removal/rename, and auth-disabled mode (§2.1).
Must not: import trio or HTTP, touch ``edge.store``, hold or write a secret in clear, log secrets.

Synchronous and not thread-safe: call it from one thread (the Trio thread). ``authenticate``
never does file I/O (it runs on every request); mutations write the file (a few ms with fsync).

Lookup: a dict from a keyed fingerprint (HMAC-SHA256 with a per-process random key) of the
secret to the token name makes authentication O(1). The key never leaves memory, so the index is
worthless to anyone who reads a heap dump of fingerprints without it. After a restart the index
is empty (we only know hashes), so a miss falls back to verifying every stored hash once and
remembers the result; known-bad fingerprints are remembered too (bounded), and that memory is
dropped whenever a secret is added. The salted hash is always verified before a token is trusted.

``last_access`` is kept in memory (updated on each successful authentication, so the ``ttl``
inactivity rule works) and written with the next mutation or by ``save_access_times()``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from edge import durable
from edge.auth.tokens import (
    FULL_ACCESS,
    INIT_TOKEN_NAME,
    Permissions,
    Token,
    check_client_ip,
    check_lifetime,
    disabled_token,
    format_rfc3339,
    generate_secret,
    hash_secret,
    is_expired,
    is_hashed,
    parse_create_body,
    parse_env_tokens,
    parse_rfc3339,
    validate_spec,
    verify_secret,
)
from edge.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageIOError,
    UnauthorizedError,
)

TOKENS_FILE = "tokens.json"
FILE_VERSION = 1
BEARER_PREFIX = "Bearer "  # case-sensitive, one space (§2.2 step 1)
NEGATIVE_CACHE_SIZE = 4096  # bad fingerprints remembered; bounds memory under random-token floods



# --- atomic file write -------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Checksummed state file, tmp + fsync + rename + fsync(dir): readers see the old file or
    the new one, never half, and rot is detected (``edge.durable.seal``).

    A crash leaves at most a stale ``.tmp`` that loading ignores and the next write truncates.
    OSError propagates (the access-time saver catches it). 0600: the file holds only hashes, but
    nobody else needs to read them.
    """
    durable.write_state(path, data, mode=0o600, tmp=path.with_name(path.name + ".tmp"))


# --- (de)serialisation of the file -------------------------------------------------------------


def _token_to_record(t: Token) -> dict[str, object]:
    return {
        "name": t.name,
        "secret_hash": t.secret_hash,
        "created_at": format_rfc3339(t.created_at),
        "permissions": {"full_access": t.permissions.full_access,
                        "read": list(t.permissions.read), "write": list(t.permissions.write)},
        "is_provisioned": t.is_provisioned,
        "expires_at": None if t.expires_at is None else format_rfc3339(t.expires_at),
        "ttl": t.ttl_s,
        "last_access": None if t.last_access is None else format_rfc3339(t.last_access),
        "ip_allowlist": list(t.ip_allowlist),
    }


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else parse_rfc3339(value)


def _token_from_record(r: Mapping[str, Any]) -> Token:
    stored = r.get("secret_hash") or r.get("value") or ""
    if stored and not is_hashed(stored):
        stored = hash_secret(stored)  # migration: a plain secret is hashed on load and never rewritten
    p = r.get("permissions") or {}
    return Token(
        name=r["name"],
        created_at=parse_rfc3339(r["created_at"]),
        permissions=Permissions(bool(p.get("full_access", False)), tuple(p.get("read", ())),
                                tuple(p.get("write", ()))),
        secret_hash=stored,
        is_provisioned=bool(r.get("is_provisioned", False)),
        expires_at=_opt_time(r.get("expires_at")),
        ttl_s=r.get("ttl"),
        last_access=_opt_time(r.get("last_access")),
        ip_allowlist=tuple(r.get("ip_allowlist", ())),
    )


class TokenRepository:
    def __init__(self, path: Path, tokens: dict[str, Token], *, auth_enabled: bool):
        self.path = path
        self.auth_enabled = auth_enabled
        self._tokens = tokens
        self._key = secrets.token_bytes(32)  # per process: fingerprints mean nothing elsewhere
        self._by_fp: dict[bytes, str] = {}
        self._fp_of: dict[str, bytes] = {}
        self._bad_fps: OrderedDict[bytes, None] = OrderedDict()
        self._access_dirty = False
        self.damage: durable.Damage | None = None   # tokens.json damaged: read-only, stored tokens off

    @classmethod
    def open(cls, data_path: Path, *, auth_enabled: bool = True) -> "TokenRepository":
        """Load ``tokens.json``. A damaged file never stops start-up and never opens the door:
        it is set aside (``edge.durable.set_aside``) and the repository runs *damaged*: no
        stored token works, only the configured ones (``provision``), and nothing is written
        until the file is repaired (or its damaged copy removed) and the server restarted."""
        path = Path(data_path) / ".edge" / TOKENS_FILE
        durable.make_dirs(path.parent, mode=0o700)
        migrated = [False]

        def parse(raw: bytes) -> dict[str, Token]:
            out: dict[str, Token] = {}
            for rec in json.loads(raw)["tokens"]:
                migrated[0] |= not is_hashed(rec.get("secret_hash") or rec.get("value") or "sha256:")
                token = _token_from_record(rec)
                out[token.name] = token
            return out

        tokens, damage, checked = durable.load_state(path, parse)
        if tokens is None and damage is None:
            earlier = durable.aside_copies(path)
            if earlier:   # set aside at an earlier start and not repaired: still damaged
                damage = durable.Damage(path, "damaged at an earlier start, not repaired yet", earlier[-1])
        repo = cls(path, tokens or {}, auth_enabled=auth_enabled)
        repo.damage = damage
        if damage is None and tokens is not None and (migrated[0] or not checked):
            repo._save(repo._tokens)   # hash plain secrets / add the checksum of this version
        return repo

    # --- persistence -----------------------------------------------------------------------

    def _save(self, tokens: dict[str, Token]) -> None:
        if self.damage is not None:
            raise StorageIOError(f"Tokens cannot be changed: {TOKENS_FILE} is damaged "
                                 f"({self.damage.reason}); only the configured tokens work until it is "
                                 "repaired and the server restarted")
        doc = {"version": FILE_VERSION, "tokens": [_token_to_record(tokens[n]) for n in sorted(tokens)]}
        _atomic_write(self.path, json.dumps(doc, indent=1).encode("utf-8"))
        self._access_dirty = False

    def _commit(self, tokens: dict[str, Token]) -> None:
        # Write first, then swap: if the write fails the in-memory state is unchanged.
        self._save(tokens)
        self._tokens = tokens

    def save_access_times(self) -> None:
        """Persist in-memory ``last_access`` updates, if any (call periodically and at shutdown)."""
        if self._access_dirty and self.damage is None:
            self._save(self._tokens)

    # --- fingerprint index -----------------------------------------------------------------

    def _fingerprint(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).digest()

    def _index(self, name: str, secret: str) -> None:
        self._unindex(name)
        fp = self._fingerprint(secret)
        self._by_fp[fp] = name
        self._fp_of[name] = fp
        # A new secret may be one we earlier recorded as bad.
        self._bad_fps.clear()

    def _unindex(self, name: str) -> None:
        fp = self._fp_of.pop(name, None)
        if fp is not None:
            self._by_fp.pop(fp, None)

    def _find(self, secret: str) -> Token | None:
        fp = self._fingerprint(secret)
        name = self._by_fp.get(fp)
        if name is not None:
            token = self._tokens.get(name)
            if token is not None and verify_secret(secret, token.secret_hash):
                return token
            self._by_fp.pop(fp, None)  # stale entry (rotated/removed): fall through to the scan
        if fp in self._bad_fps:
            return None
        for token in self._tokens.values():
            if verify_secret(secret, token.secret_hash):
                self._unindex(token.name)
                self._by_fp[fp] = token.name
                self._fp_of[token.name] = fp
                return token
        self._bad_fps[fp] = None
        if len(self._bad_fps) > NEGATIVE_CACHE_SIZE:
            self._bad_fps.popitem(last=False)
        return None

    # --- authentication (§2.2) -------------------------------------------------------------

    def authenticate(self, authorization: str | None, client_ip: str | None, now: datetime) -> Token:
        """The calling token, or ``UnauthorizedError`` with the text of the first failing step."""
        if not self.auth_enabled:
            return disabled_token(now)
        if not authorization or not authorization.startswith(BEARER_PREFIX):
            raise UnauthorizedError("No bearer token in request header")
        token = self._find(authorization[len(BEARER_PREFIX):])
        if token is None:
            raise UnauthorizedError("Invalid token")
        check_lifetime(token, now)
        check_client_ip(token, client_ip)
        if token.last_access is None or now > token.last_access:
            token = replace(token, last_access=now)
            self._tokens[token.name] = token
            self._access_dirty = True
        return token

    # --- token API (§4) --------------------------------------------------------------------

    def _disabled(self) -> BadRequestError:
        return BadRequestError("Authentication is disabled")

    def list(self) -> Sequence[Token]:
        if not self.auth_enabled:
            return []
        return [self._tokens[n] for n in sorted(self._tokens)]

    def get(self, name: str) -> Token:
        if not self.auth_enabled:
            raise self._disabled()
        try:
            return self._tokens[name]
        except KeyError:
            raise NotFoundError(f"Token '{name}' doesn't exist") from None

    def create(self, name: str, body: object, now: datetime) -> tuple[str, datetime]:
        """Create from a create body (decoded JSON, or raw bytes/str); returns (secret, created_at).

        Order: body shape (422 Invalid body) -> empty name -> exists -> permission syntax -> ttl
        -> expiry -> allow-list.
        """
        if not self.auth_enabled:
            raise self._disabled()
        if isinstance(body, (bytes, bytearray, memoryview, str)):
            try:
                body = json.loads(bytes(body) if not isinstance(body, str) else body)
            except ValueError:
                raise InvalidInputError("Invalid body") from None
        spec = parse_create_body(body)
        if not name:
            raise InvalidInputError("Token name can't be empty")
        if name in self._tokens:
            raise AlreadyExistsError(f"Token '{name}' already exists")
        validate_spec(spec, now)
        secret = generate_secret(name)
        token = Token(name=name, created_at=now, permissions=spec.permissions,
                      secret_hash=hash_secret(secret), expires_at=spec.expires_at,
                      ttl_s=spec.ttl_s, ip_allowlist=spec.ip_allowlist)
        self._commit({**self._tokens, name: token})
        self._index(name, secret)
        return secret, now

    def rotate(self, name: str, now: datetime) -> tuple[str, datetime]:
        """New secret; the old one stops working at once (the index entry goes with it)."""
        if not self.auth_enabled:
            raise self._disabled()
        token = self.get(name)
        if token.is_provisioned:
            raise ConflictError(f"Can't rotate provisioned token '{name}'")
        if is_expired(token, now):
            raise InvalidInputError(f"Can't rotate expired token '{name}'")
        secret = generate_secret(name)
        rotated = replace(token, secret_hash=hash_secret(secret), created_at=now, last_access=now)
        self._commit({**self._tokens, name: rotated})
        self._index(name, secret)
        return secret, now

    def remove(self, name: str) -> None:
        if not self.auth_enabled:
            return  # §2.1: DELETE answers 200 when auth is disabled
        token = self.get(name)
        if token.is_provisioned:
            raise ConflictError(f"Can't remove provisioned token '{name}'")
        if token.permissions.full_access and not any(
            t.permissions.full_access for n, t in self._tokens.items() if n != name
        ):
            raise ConflictError(
                f"Can't remove token '{name}': at least one full-access token must remain"
            )
        self._commit({n: t for n, t in self._tokens.items() if n != name})
        self._unindex(name)

    # --- bucket events ---------------------------------------------------------------------

    def _map_permissions(self, fn) -> None:
        changed = {}
        for n, t in self._tokens.items():
            p = t.permissions
            new = replace(p, read=fn(p.read), write=fn(p.write))
            if new != p:
                changed[n] = replace(t, permissions=new)
        if changed:
            self._commit({**self._tokens, **changed})

    def on_bucket_removed(self, bucket: str) -> None:
        """Strip the exact name (not patterns) from every token's lists."""
        self._map_permissions(lambda names: tuple(x for x in names if x != bucket))

    def on_bucket_renamed(self, old: str, new: str) -> None:
        self._map_permissions(lambda names: tuple(new if x == old else x for x in names))

    # --- secure-by-default bootstrap (edge.auth.device_token) ------------------------------

    def has_full_access_token(self) -> bool:
        return any(t.permissions.full_access for t in self._tokens.values())

    def add_full_access(self, name: str, secret: str, now: datetime) -> None:
        """Store a full-access, not provisioned token for ``secret`` (only its hash is kept)."""
        token = Token(name=name, created_at=now, permissions=FULL_ACCESS, secret_hash=hash_secret(secret))
        if self.damage is not None:   # tokens.json damaged: the configured secret works, in memory only
            self._tokens = {**self._tokens, name: token}
        else:
            self._commit({**self._tokens, name: token})
        self._index(name, secret)

    # --- provisioning (§2.1, §16.2) ---------------------------------------------------------

    def provision(self, env: Mapping[str, str], now: datetime) -> builtins.list[str]:
        """Apply ``RS_API_TOKEN`` / ``RS_INIT_API_TOKEN`` / ``RS_TOKEN_<ID>_*`` from ``env``.

        Returns human log lines (names only). Bad values raise ``ConfigError`` naming the
        variable. Tokens provisioned earlier but no longer configured lose the flag.
        """
        if not self.auth_enabled:
            return []
        wanted: dict[str, tuple[str, Permissions, datetime | None]] = {}
        api_token = env.get("RS_API_TOKEN", "")
        if api_token:
            wanted[INIT_TOKEN_NAME] = (api_token, FULL_ACCESS, None)
        wanted.update(parse_env_tokens(env))

        tokens = dict(self._tokens)
        secrets_by_name: dict[str, str] = {}
        lines: builtins.list[str] = []
        for name, (secret, perms, expires_at) in wanted.items():
            old = tokens.get(name)
            kept = old if old is not None and verify_secret(secret, old.secret_hash) else None
            tokens[name] = Token(
                name=name,
                created_at=kept.created_at if kept else now,
                permissions=perms,
                secret_hash=kept.secret_hash if kept else hash_secret(secret),
                is_provisioned=True,
                expires_at=expires_at,
                last_access=kept.last_access if kept else None,
            )
            secrets_by_name[name] = secret
            lines.append(f"Provisioned token '{name}'")
        init_secret = env.get("RS_INIT_API_TOKEN", "")
        if init_secret and not api_token and INIT_TOKEN_NAME not in tokens:
            # 1.21: created once, never provisioned, so it can be rotated or removed later.
            tokens[INIT_TOKEN_NAME] = Token(name=INIT_TOKEN_NAME, created_at=now, permissions=FULL_ACCESS,
                                            secret_hash=hash_secret(init_secret))
            secrets_by_name[INIT_TOKEN_NAME] = init_secret
            lines.append(f"Created token '{INIT_TOKEN_NAME}'")
        for name, t in tokens.items():
            if t.is_provisioned and name not in wanted:
                tokens[name] = replace(t, is_provisioned=False)
                lines.append(f"Token '{name}' is no longer provisioned")
        if self.damage is not None:   # in memory only: the damaged file must not be overwritten
            self._tokens = tokens
            lines.append(f"{TOKENS_FILE} is damaged ({self.damage.reason}): only the configured tokens work")
        else:
            self._commit(tokens)
        for name, secret in secrets_by_name.items():
            self._index(name, secret)
        return lines

