"""Seal and unseal a share-link payload: ``json -> zlib -> AES-SIV -> base64url`` and back.

Owns: the token format of the ``ct``/``s``/``n`` URL parameters, its strict base64url codec and the
exact client-facing error texts of spec §11.2 ("Invalid base64 in 'ct' parameter: ...",
"Failed to decrypt query: ...", "Failed to decompress query: ...", "Failed to parse query: ...").
Must not: do file I/O, know where the secret comes from (``keys.py``), know link state
(``registry.py``/``rules.py``), import trio or anything of edge but ``edge.errors``.

Why AES-SIV (RFC 5297, pycryptodome ``MODE_SIV``) and not GCM:
- it is what ReductStore uses (links.md §4.2 "keep AES-SIV"), so the format stays recognisable;
- it is nonce-misuse resistant: a repeated nonce (a bad RNG on a small board, a cloned VM image)
  only reveals that two payloads are equal, whereas GCM nonce reuse leaks the authentication key
  and lets anyone forge links;
- it authenticates associated data, which binds the issuer name ``i`` to the ciphertext, so a
  holder cannot swap ``i`` to move a link under another token;
- it is deterministic for a given (key, nonce, data), which the registry uses to keep an
  encrypted copy of a token without ever storing it in clear.
We use AES-256-SIV (64-byte key) derived per link from the server secret and the salt ``s``.

Key derivation is passed in (``kdf(secret, salt) -> 64 bytes``). The default, HKDF-SHA256, is
right for the server key (32 random bytes: a slow KDF adds nothing but a DoS lever, links.md §3
"cheap checks first"). ``scrypt_kdf`` exists for low-entropy secrets; tests inject cheap params.

The encoding is canonical: only the URL-safe alphabet, no padding, zero trailing bits. So a token
re-encoded with padding, with the standard alphabet or with flipped padding bits is refused, and
every accepted token string maps to exactly one byte string (the registry hashes the string).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from ..errors import LinkInvalidError

KeyDerivation = Callable[[bytes, bytes], bytes]
"""(secret, salt) -> 64-byte AES-256-SIV key."""

KEY_BYTES = 64           # AES-256-SIV: two 256-bit halves (CMAC key + CTR key)
SALT_BYTES = 16
NONCE_BYTES = 16
TAG_BYTES = 16
# Bounds against junk input: a sealed query with a long `when` is a few KiB; anything beyond
# these is refused before any crypto or decompression runs (zip bombs, CPU on small boards).
MAX_TOKEN_CHARS = 64 * 1024
MAX_PLAIN_BYTES = 1024 * 1024

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_HKDF_CONTEXT = b"edge/links/seal/v1"


def hkdf_kdf(secret: bytes, salt: bytes) -> bytes:
    """Production KDF for a high-entropy secret (the 32-byte server key): fast and standard."""
    return HKDF(secret, KEY_BYTES, salt, SHA256, context=_HKDF_CONTEXT)


def scrypt_kdf(n: int = 2**14, r: int = 8, p: int = 1) -> KeyDerivation:
    """A slow KDF for low-entropy secrets (e.g. a token's stored secret string)."""

    def derive(secret: bytes, salt: bytes) -> bytes:
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=256 * 1024 * 1024)

    return derive


@dataclass(frozen=True)
class SealedLink:
    """The three URL parameters of a link (base64url, no padding)."""

    ct: str
    s: str
    n: str


def encode_b64(data: bytes) -> str:
    """URL-safe base64 without padding (spec §11.1)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_b64(value: str, param: str) -> bytes:
    """Strict, canonical base64url decode; LinkInvalidError("Invalid base64 in '<param>' parameter: ...")."""
    if len(value) > MAX_TOKEN_CHARS:
        raise LinkInvalidError(f"Invalid base64 in '{param}' parameter: value too long")
    if not _B64URL.fullmatch(value):
        raise LinkInvalidError(f"Invalid base64 in '{param}' parameter: invalid character")
    if len(value) % 4 == 1:
        raise LinkInvalidError(f"Invalid base64 in '{param}' parameter: invalid length")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the checks above catch these
        raise LinkInvalidError(f"Invalid base64 in '{param}' parameter: {exc}") from None
    # Non-zero trailing bits decode to the same bytes; refusing them keeps one string per token.
    if encode_b64(data) != value:
        raise LinkInvalidError(f"Invalid base64 in '{param}' parameter: non-canonical trailing bits")
    return data


def token_digest(ct: str) -> str:
    """The registry's lookup key for a token: SHA-256 hex of the ``ct`` string (never stored in clear)."""
    return hashlib.sha256(ct.encode("utf-8", "surrogatepass")).hexdigest()


def seal(
    payload: Mapping[str, object],
    secret: bytes,
    *,
    kdf: KeyDerivation = hkdf_kdf,
    associated: bytes = b"",
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> SealedLink:
    """Encrypt ``payload`` (JSON-serialisable) into link parameters.

    ``associated`` is authenticated but not encrypted (the issuer name ``i``); it must be given
    again to ``unseal``. ``salt``/``nonce`` default to fresh random bytes; passing them makes the
    output deterministic (tests, re-deriving a token).
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("salt and nonce must be 16 bytes")
    # Canonical JSON: the same payload always gives the same plaintext (determinism, see above).
    plain = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if len(plain) > MAX_PLAIN_BYTES:
        raise ValueError("link payload too large")
    body = zlib.compress(plain, 9)
    cipher = AES.new(_key(kdf, secret, salt), AES.MODE_SIV, nonce=nonce)
    cipher.update(associated)
    ciphertext, tag = cipher.encrypt_and_digest(body)
    # SIV convention: the synthetic IV (tag) goes first.
    return SealedLink(ct=encode_b64(tag + ciphertext), s=encode_b64(salt), n=encode_b64(nonce))


def unseal(
    ct: str,
    s: str,
    n: str,
    secret: bytes,
    *,
    kdf: KeyDerivation = hkdf_kdf,
    associated: bytes = b"",
) -> dict[str, Any]:
    """Decode, authenticate, decompress and parse link parameters; LinkInvalidError on any fault."""
    raw = decode_b64(ct, "ct")
    salt = decode_b64(s, "s")
    nonce = decode_b64(n, "n")
    # Length checks come before the KDF so junk never costs a key derivation.
    if len(salt) != SALT_BYTES:
        raise LinkInvalidError("Failed to decrypt query: invalid salt length")
    if len(nonce) != NONCE_BYTES:
        raise LinkInvalidError("Failed to decrypt query: invalid nonce length")
    if len(raw) <= TAG_BYTES:
        raise LinkInvalidError("Failed to decrypt query: ciphertext too short")
    cipher = AES.new(_key(kdf, secret, salt), AES.MODE_SIV, nonce=nonce)
    cipher.update(associated)
    try:
        body = cipher.decrypt_and_verify(raw[TAG_BYTES:], raw[:TAG_BYTES])
    except ValueError:
        # One text for a wrong key, a flipped byte or a truncation: nothing to learn from it.
        raise LinkInvalidError("Failed to decrypt query: authentication failed") from None
    plain = _decompress(body)
    try:
        payload = json.loads(plain)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LinkInvalidError(f"Failed to parse query: {exc}") from None
    if not isinstance(payload, dict):
        raise LinkInvalidError("Failed to parse query: expected a JSON object")
    return payload


def _key(kdf: KeyDerivation, secret: bytes, salt: bytes) -> bytes:
    key = kdf(secret, salt)
    if len(key) != KEY_BYTES:
        raise ValueError("key derivation must return 64 bytes")
    return key


def _decompress(body: bytes) -> bytes:
    decomp = zlib.decompressobj()
    try:
        # Bounded output: an authenticated but huge payload (our own bug) still cannot bomb memory.
        plain = decomp.decompress(body, MAX_PLAIN_BYTES + 1)
    except zlib.error as exc:
        raise LinkInvalidError(f"Failed to decompress query: {exc}") from None
    if len(plain) > MAX_PLAIN_BYTES or decomp.unconsumed_tail:
        raise LinkInvalidError("Failed to decompress query: payload too large")
    if not decomp.eof or decomp.unused_data:
        raise LinkInvalidError("Failed to decompress query: truncated or trailing data")
    return plain


def same_secret(a: bytes | str, b: bytes | str) -> bool:
    """Timing-safe comparison for any secret material (anchors §7.8)."""
    return hmac.compare_digest(a if isinstance(a, bytes) else a.encode(), b if isinstance(b, bytes) else b.encode())
