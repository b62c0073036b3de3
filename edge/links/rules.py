"""Pure decisions about a share link: state, download counting, passwords, Range, file names.

Owns: the answers (texts and types) for expired / revoked / used-up / forged links, the rule
for what counts as one download, password hashing and checking, the HTTP Range plan
(RFC 9110 §14), and ``Content-Disposition`` file names (RFC 6266 / 8187).
Must not: do I/O, read clocks (callers pass ``now``), build responses (it returns decision
values the HTTP module applies), import trio, edge.store or edge.http.

State answers (issue 6): expired links keep ReductStore's ``422 Query link has expired``;
revoked, used-up and forged links all get the same ``404 Link not found or has expired``
(``link_not_found()``), so an anonymous holder cannot tell which. Revocation is checked before
expiry: the owner's explicit act wins and the answer reveals nothing more.

Download counting (issue 6 "seeking with Range does not use up max_downloads"):
1. HEAD and 416 answers never count (the handler does not record them).
2. A full-body answer (200) always counts as one download.
3. A 206 answer counts only when the client (its address) has no live *download session* on the
   link; a session starts with any counted download and stays live while the same client keeps
   asking within ``SESSION_WINDOW_S`` (sliding). So a viewer seeking through a file, or a
   resumed download, counts once.
4. A request that would count is refused (uniform 404) when ``downloads >= max_downloads``;
   one that would not count is served: the client is inside a download it already used.
Why not "count when the answer covers byte 0"? ``Range: bytes=1-`` would then fetch the whole
file for free, as often as wanted. Sessions have no such hole; a roaming client that resumes
from a new address pays one more download, which is the safe side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InvalidInputError, NotFoundError, UnauthorizedError
from ..formats.metadata import MAX_FILENAME_CHARS, sanitize_filename  # noqa: F401 (re-exported)

UNIFORM_NOT_FOUND = "Link not found or has expired"
EXPIRED = "Query link has expired"
PASSWORD_REQUIRED = "Password required"
PASSWORD_WRONG = "Invalid password"
SESSION_WINDOW_S = 600.0
MAX_PASSWORD_BYTES = 1024
MAX_RANGES = 64          # RFC 9110 §14.2: a server may ignore a Range with many small ranges


# --- link state -------------------------------------------------------------------------------

def link_not_found() -> NotFoundError:
    """The one answer for revoked, used-up, unknown and forged links."""
    return NotFoundError(UNIFORM_NOT_FOUND)


def link_expired() -> InvalidInputError:
    return InvalidInputError(EXPIRED)


def is_expired(expire_at_s: int | float, now_s: float) -> bool:
    """ReductStore: a link is expired when ``expire_at < now`` (the expiry second itself is valid)."""
    return expire_at_s < now_s


def is_used_up(downloads: int, max_downloads: int | None) -> bool:
    return max_downloads is not None and downloads >= max_downloads


def session_live(last_seen_s: float | None, now_s: float, window_s: float = SESSION_WINDOW_S) -> bool:
    return last_seen_s is not None and 0 <= now_s - last_seen_s <= window_s


def download_counts(partial: bool, last_seen_s: float | None, now_s: float) -> bool:
    """Rules 2 and 3 above: does serving this answer use one download?"""
    return not partial or not session_live(last_seen_s, now_s)


def check_state(*, revoked: bool, expire_at_s: int | float, now_s: float) -> None:
    """Raise the client answer for a link that may not be served at all (cheap; no hashing)."""
    if revoked:
        raise link_not_found()
    if is_expired(expire_at_s, now_s):
        raise link_expired()


# --- passwords ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PasswordParams:
    """scrypt cost; stored with every hash so old hashes verify after a parameter change."""

    n: int = 2**14
    r: int = 8
    p: int = 1
    dklen: int = 32


def hash_password(password: str, params: PasswordParams = PasswordParams()) -> dict:
    """A slow salted hash of ``password`` as a JSON-ready dict (never the password itself)."""
    secret = _password_bytes(password)
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, params.n, params.r, params.p, params.dklen)
    return {"alg": "scrypt", "n": params.n, "r": params.r, "p": params.p,
            "salt": _b64(salt), "hash": _b64(digest)}


def verify_password(password: str | None, stored: dict | None) -> bool:
    """True when the link has no password, or ``password`` matches ``stored`` (constant time)."""
    if stored is None:
        return True
    if password is None:
        return False
    try:
        secret = _password_bytes(password)
    except InvalidInputError:
        return False
    if stored.get("alg") != "scrypt":
        return False
    expected = base64.urlsafe_b64decode(stored["hash"] + "==")
    salt = base64.urlsafe_b64decode(stored["salt"] + "==")
    got = _scrypt(secret, salt, int(stored["n"]), int(stored["r"]), int(stored["p"]), len(expected))
    return hmac.compare_digest(got, expected)


def check_password(password: str | None, stored: dict | None) -> None:
    """UnauthorizedError (401; the handler adds ``WWW-Authenticate: Basic``) unless it matches."""
    if stored is None:
        return
    if password is None:
        raise UnauthorizedError(PASSWORD_REQUIRED)
    if not verify_password(password, stored):
        raise UnauthorizedError(PASSWORD_WRONG)


def _password_bytes(password: str) -> bytes:
    data = password.encode("utf-8", "surrogatepass")
    if len(data) > MAX_PASSWORD_BYTES:  # bounds the hashing work an attacker can ask for
        raise InvalidInputError(f"Password is longer than {MAX_PASSWORD_BYTES} bytes")
    return data


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- HTTP Range -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """Bytes ``start..end`` of the representation, both inclusive (as in Content-Range)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class RangePlan:
    """What to send for a GET with (or without) ``Range``.

    ``status``: 200 (full), 206 (partial) or 416. ``headers``: the range-specific headers to add
    (``Content-Range``; for multipart also ``Content-Type: multipart/byteranges; boundary=...``,
    which replaces the record's type). ``content_length``: the exact body length, known up front.
    ``pieces()`` yields the body in order: ``bytes`` to send as is, or a ``Span`` to read from
    the record. ``partial``: feed ``download_counts``.
    """

    status: int
    total: int
    spans: tuple[Span, ...]
    headers: tuple[tuple[str, str], ...] = ()
    boundary: str | None = None
    part_heads: tuple[bytes, ...] = ()
    trailer: bytes = b""

    @property
    def partial(self) -> bool:
        return self.status == 206

    @property
    def content_length(self) -> int:
        return sum(s.length for s in self.spans) + sum(map(len, self.part_heads)) + len(self.trailer)

    def pieces(self) -> Iterator[bytes | Span]:
        if self.boundary is None:
            yield from self.spans
            return
        for head, span in zip(self.part_heads, self.spans):
            yield head
            yield span
        yield self.trailer

    def apply(self, data: bytes) -> bytes:
        """The whole body for an in-memory representation (small records, tests)."""
        return b"".join(p if isinstance(p, bytes) else data[p.start:p.end + 1] for p in self.pieces())


_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")  # ASCII digits only (\d is Unicode)


def plan_range(range_header: str | None, total: int, *, content_type: str = "application/octet-stream",
               boundary: str | None = None, honour: bool = True) -> RangePlan:
    """Decide the answer to ``Range`` for a representation of ``total`` bytes. Never raises.

    Malformed or non-``bytes`` headers, and too many ranges, are ignored (RFC 9110 §14.2): 200.
    ``honour=False`` (a failed ``If-Range``) also gives 200. Ranges that overlap or touch are
    merged and sorted (allowed by §14.2), so a part never repeats bytes; one remaining range is a
    plain 206, several are ``multipart/byteranges``. No satisfiable range: 416 ``bytes */total``.
    """
    full = RangePlan(200, total, (Span(0, total - 1),) if total > 0 else ())
    if range_header is None or not honour:
        return full
    specs = _parse(range_header)
    if specs is None:
        return full
    spans: list[Span] = []
    for first, last in specs:
        if first is None:                       # suffix range "-n": the last n bytes
            if last is None or last == 0 or total == 0:   # (the parser always gives "-n" an n)
                continue
            spans.append(Span(max(0, total - last), total - 1))
        elif first < total:
            spans.append(Span(first, total - 1 if last is None else min(last, total - 1)))
    if not spans:
        return RangePlan(416, total, (), (("Content-Range", f"bytes */{total}"),))
    merged = _merge(spans)
    if len(merged) == 1:
        s = merged[0]
        return RangePlan(206, total, (s,), (("Content-Range", f"bytes {s.start}-{s.end}/{total}"),))
    boundary = boundary or secrets.token_hex(16)
    ctype = _header_safe(content_type) or "application/octet-stream"
    heads = tuple(
        (b"" if i == 0 else b"\r\n")
        + f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {s.start}-{s.end}/{total}\r\n\r\n".encode()
        for i, s in enumerate(merged))
    return RangePlan(206, total, tuple(merged),
                     (("Content-Type", f"multipart/byteranges; boundary={boundary}"),),
                     boundary, heads, f"\r\n--{boundary}--\r\n".encode())


def _parse(header: str) -> list[tuple[int | None, int | None]] | None:
    """``bytes=...`` -> [(first, last)], suffix as (None, n); None when malformed (-> ignore)."""
    unit, sep, rest = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for item in rest.split(","):
        item = item.strip(" \t")
        if not item:
            continue                            # empty list elements are allowed (RFC 9110 §5.6.1)
        m = _RANGE_SPEC.fullmatch(item)
        if not m or (not m[1] and not m[2]):
            return None
        first = _num(m[1]) if m[1] else None
        last = _num(m[2]) if m[2] else None
        if first is not None and last is not None and last < first:
            return None                         # invalid range-spec -> the whole header is ignored
        specs.append((first, last))
        if len(specs) > MAX_RANGES:
            return None
    return specs or None


def _num(digits: str) -> int:
    # int() refuses > 4300 digits (CVE-2020-10735 guard); any value this long is beyond every size.
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 30 else 10**30


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and s.start <= out[-1].end + 1:
            out[-1] = Span(out[-1].start, max(out[-1].end, s.end))
        else:
            out.append(s)
    return out


def _header_safe(value: str) -> str:
    return "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F)


# --- file names ---------------------------------------------------------------------------------
# The rule for a download-safe name is the stored-name policy's (formats/metadata.py).

def content_disposition(name: str, disposition: str = "attachment") -> str:
    """``attachment; filename="<ASCII fallback>"[; filename*=UTF-8''<pct-encoded>]`` (RFC 6266)."""
    safe = sanitize_filename(name)
    ascii_name = unicodedata.normalize("NFKD", safe).encode("ascii", "ignore").decode("ascii")
    ascii_name = "".join(ch if 0x20 <= ord(ch) < 0x7F else "_" for ch in ascii_name).strip(" .") or "download"
    value = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != safe:
        value += "; filename*=UTF-8''" + urllib.parse.quote(safe, safe="")
    return value
