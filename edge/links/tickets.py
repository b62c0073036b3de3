"""Download tickets: short-lived, signed permissions to fetch one link's file.

Owns: the ticket format ``<expiry s>.<prepaid 0|1>.<mac>`` and its check. A ticket is handed out
only after a request passed every check of a link (state, authentication, password): the
Mediapocket ``GET shareable_links/<key>`` answers 302 to a ticket URL (like the presigned URL of
the vendor's object store, valid ``TICKET_TTL_S``), and the browser form of ``/link/<id>``
redirects to one, so the password never travels in a URL and Range requests of a download
manager work without asking again.
Must not: do I/O, read clocks (callers pass ``now``), decide link state (a ticket never outlives
a revocation: the handler checks the link again on every use).

``prepaid`` means the download was already counted when the ticket was issued (Mediapocket counts
at the 302), so fetching it does not count again.
MAC: HMAC-SHA256 under a key derived from the server link key with its own label, so a ticket can
never be confused with a sealed link token. Truncated to 128 bits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from .seal import encode_b64

TICKET_TTL_S = 900               # the vendor's presigned URLs live 15 minutes
_FORMAT = re.compile(r"([0-9]{1,12})\.([01])\.([A-Za-z0-9_-]{22})")
_LABEL = b"edge download ticket v1"


@dataclass(frozen=True)
class Ticket:
    link_id: str
    expires_s: int
    prepaid: bool


def _mac(key: bytes, link_id: str, expires_s: int, prepaid: bool) -> str:
    sub = hmac.new(key, _LABEL, hashlib.sha256).digest()
    msg = f"{link_id}|{expires_s}|{int(prepaid)}".encode()
    return encode_b64(hmac.new(sub, msg, hashlib.sha256).digest()[:16])


def issue(key: bytes, link_id: str, now_s: float, *, prepaid: bool, ttl_s: int = TICKET_TTL_S) -> str:
    expires_s = int(now_s) + ttl_s
    return f"{expires_s}.{int(prepaid)}.{_mac(key, link_id, expires_s, prepaid)}"


def check(key: bytes, text: str, link_id: str, now_s: float) -> Ticket | None:
    """The ticket if ``text`` is a genuine, unexpired ticket for ``link_id``; None otherwise."""
    m = _FORMAT.fullmatch(text or "")
    if m is None:
        return None
    expires_s, prepaid = int(m[1]), m[2] == "1"
    if not hmac.compare_digest(m[3], _mac(key, link_id, expires_s, prepaid)):
        return None
    if expires_s < now_s:
        return None
    return Ticket(link_id, expires_s, prepaid)
