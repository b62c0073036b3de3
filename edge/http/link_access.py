"""Who may fetch a share link: the one admission rule behind every link URL of the three APIs.

Owns: reading what a downloader offers (a token: ``Authorization: Bearer``, ``X-API-KEY`` or the
user name of HTTP Basic; a password: the ``password`` parameter or form field, or the password of
HTTP Basic), and ``admit()``, the decision "may this request be served" for the native download
URL, ``/link/<id>``, ``/api/v2/shareable_links/<key>`` and ``/s/<id>``, plus the wrong-password
throttle.
Must not: build responses (each API renders its own uniform not-found), count downloads (the
serving code does, atomically, in the registry), or log credentials.

Uniform answer: a caller who cannot use a link must not learn whether it exists. So a missing id,
a revoked, expired or used-up link, a link whose issuing token was deleted, expired or lost read
access, a ``require_authentication`` link without a reader's token, and a password link without
(or with a wrong) password all come out of ``admit`` as the same ``None``. Timing class: the work
done does not depend on the link either. Offered tokens are always authenticated (a salted
SHA-256, before the link is even looked up), and an offered password always costs exactly one
scrypt, against the link's hash or a decoy (``LinkRegistry.password_matches``). A request that
offers no password never hashes one. Every refused request that offered a password counts as a
failure for the client's address in the authentication throttle (429 after a burst, whatever the
link), which bounds password guessing and the scrypt work one client can cause.

Why an unusable offered token is not a 401 here: a password-link downloader may send
``--user anything:<password>``; the user part is a token only when it is one.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping


from ..auth.policy import Read
from ..auth.tokens import Token, is_expired
from ..errors import NotFoundError, UnauthorizedError
from ..links import LinkRecord, is_expired as link_expired_at, is_used_up, session_live
from ..links.tickets import issue as issue_ticket
from .context import AppContext, client_ip, public_base_url
from ..server.types import Request
from .. import blocking

MAX_KEY_CHARS = 512


@dataclass(frozen=True)
class Offered:
    """Credentials a downloader sent; nothing here is trusted yet."""

    keys: tuple[str, ...] = ()
    password: str | None = None


def basic_credentials(req: Request) -> tuple[str, str] | None:
    """(user, password) of ``Authorization: Basic``, or None."""
    value = req.headers.get("authorization") or ""
    scheme, _, data = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def offered(req: Request, form: Mapping[str, str] | None = None) -> Offered:
    keys: list[str] = []
    password: str | None = None
    authorization = req.headers.get("authorization") or ""
    if authorization.startswith("Bearer "):
        keys.append(authorization[len("Bearer "):])
    api_key = req.headers.get("x-api-key")
    if api_key:
        keys.append(api_key)
    basic = basic_credentials(req)
    if basic is not None:
        if basic[0]:
            keys.append(basic[0])
        password = basic[1]
    if form is not None and form.get("api_key"):
        keys.append(form["api_key"])
    explicit = (form or {}).get("password") or req.query.get("password")
    if explicit:
        password = explicit
    return Offered(tuple(k for k in keys if 0 < len(k) <= MAX_KEY_CHARS)[:3], password)


def reader_token(req: Request, ctx: AppContext, keys: tuple[str, ...]) -> Token | None:
    """The first offered key that is a valid token (lifetime, IP allow-list), else None."""
    now = datetime.now(timezone.utc)
    if not ctx.config.auth_enabled:
        return ctx.tokens.authenticate(None, "", now)   # auth off: everyone reads everything
    ip = client_ip(req)
    for key in keys:
        try:
            return ctx.tokens.authenticate("Bearer " + key, ip, now)
        except UnauthorizedError:
            continue
    return None


def issuer_alive(ctx: AppContext, rec: LinkRecord) -> bool:
    """A link dies with its issuer token, its expiry or its read access (spec §11.2 step 6)."""
    if not ctx.config.auth_enabled:
        return True
    try:
        token = ctx.tokens.get(rec.creator)
    except NotFoundError:
        return False
    return not is_expired(token, datetime.now(timezone.utc)) and Read(rec.bucket).allows(token)


def usable(ctx: AppContext, rec: LinkRecord | None, client: str, now: float, *, count_expired: bool = True) -> bool:
    """Cheap state checks: exists, not revoked, not expired, not used up for this client, issuer alive."""
    if rec is None or rec.revoked:
        return False
    if count_expired and link_expired_at(rec.expire_at, now):
        return False
    if is_used_up(rec.downloads, rec.max_downloads) and not session_live(rec.sessions.get(client), now):
        return False
    return issuer_alive(ctx, rec)


async def admit(req: Request, ctx: AppContext, rec: LinkRecord | None, offer: Offered) -> LinkRecord | None:
    """``rec`` if this request may be served, else None (the caller's uniform not-found).

    Raises only ``RateLimitedError`` (429, while the address is throttled), whatever the link.
    """
    ip = client_ip(req)
    throttle = ctx.throttle
    if throttle is not None:
        throttle.check(ip, time.monotonic())
    reader = reader_token(req, ctx, offer.keys) if offer.keys or not ctx.config.auth_enabled else None
    ok = usable(ctx, rec, ip, time.time())
    if ok and rec is not None and rec.require_authentication:
        ok = reader is not None and Read(rec.bucket).allows(reader)
    if offer.password is not None:
        candidate = rec if ok else None
        matched = await blocking.run_cpu(ctx.links.password_matches, candidate, offer.password)
        if ok and rec is not None and rec.has_password:
            ok = matched
        if not ok and throttle is not None:
            throttle.record_failure(ip, time.monotonic())
    elif ok and rec is not None and rec.has_password:
        ok = False
    return rec if ok else None


def ticket_url(req: Request, ctx: AppContext, rec: LinkRecord, *, prepaid: bool) -> str:
    """``<base>link/<id>?ticket=...``: the file, for the next ``TICKET_TTL_S`` (``links.tickets``)."""
    room = ctx.link_room
    if room is None:
        raise NotFoundError("Link not found or has expired")
    ticket = issue_ticket(room.key.material, rec.id, time.time(), prepaid=prepaid)
    return f"{public_base_url(req, ctx)}link/{rec.id}?ticket={ticket}"
