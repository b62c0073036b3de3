"""What the two vendor sharing APIs have in common: what a link points at, making one, error bodies.

Owns: the asset names both APIs accept (``<bucket>/<entry>/<timestamp>`` for any record, the
entry may contain ``/`` and the timestamp is the last segment; a bare integer for an uploaded
attachment, i.e. the record of that timestamp in the attachments bucket), ``make_link`` (the
checks every vendor link creation shares, then the registry write), the size of what a link
serves, the permission rule for seeing one, and ``vendor_errors``, the decorator that answers a
vendor route's errors in that vendor's own body shape.
Must not: know either vendor's field names (``mediapocket.py`` and ``liquidfiles/`` do), or
decide link rules (``edge.links``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import partial, wraps
from typing import Awaitable, Callable, Mapping


from ..auth.policy import Read
from ..auth.tokens import Token
from ..errors import EdgeError, InvalidInputError, NotFoundError, UnauthorizedError
from ..formats.metadata import sanitize_filename
from ..links import LinkRecord
from ..links.registry import Origin
from ..links.tar import ext_for
from ..mail.compose import check_address
from .context import AppContext
from .errors import error_response
from ..server.types import Request, Response
from .. import blocking

U64_MAX = 2**64 - 1
BASIC_CHALLENGE = 'Basic realm="edge", charset="UTF-8"'
_DIGITS = re.compile(r"[0-9]{1,20}")
MAX_ASSET_CHARS = 4096

Handler = Callable[..., Awaitable[Response]]
Render = Callable[[int, str], bytes]


@dataclass(frozen=True)
class Target:
    """One existing record a link can point at."""

    bucket: str
    entry: str
    ts_us: int
    size: int
    content_type: str
    filename: str               # the name it is shared under unless the caller gives one


def asset_not_found(asset: str) -> NotFoundError:
    return NotFoundError(f"Asset '{asset[:200]}' not found")


def resolve_asset(ctx: AppContext, asset: str) -> Target:
    """The record an asset name points at; ``NotFoundError`` naming the asset when none."""
    if len(asset) > MAX_ASSET_CHARS:
        raise asset_not_found(asset)
    if _DIGITS.fullmatch(asset):
        uploads = ctx.attachment_uploads
        if int(asset) > U64_MAX:
            raise asset_not_found(asset)
        try:
            a = uploads.get(int(asset))
        except NotFoundError:
            raise asset_not_found(asset) from None
        return Target(a.bucket, a.entry, a.id, a.size, a.content_type, a.filename)
    bucket, sep, rest = asset.partition("/")
    entry, sep2, ts_text = rest.rpartition("/")
    if not (sep and sep2 and bucket and entry and _DIGITS.fullmatch(ts_text)) or int(ts_text) > U64_MAX:
        raise asset_not_found(asset)
    try:
        ref = ctx.engine.get_bucket(bucket).get_entry(entry).get(int(ts_text))
    except (NotFoundError, InvalidInputError):     # also names no bucket or entry could have
        raise asset_not_found(asset) from None
    name = ref.labels.get("filename") or f"{entry.replace('/', '_')}_{ref.ts_us}.{ext_for(ref.content_type)}"
    return Target(bucket, entry, ref.ts_us, ref.size, ref.content_type, sanitize_filename(name))


def check_asset_access(token: Token, target: Target) -> None:
    """Sharing a record needs read access to its bucket (the rule of native links)."""
    Read(target.bucket).check(token)


def check_require_authentication(ctx: AppContext, value: bool) -> None:
    """A link that needs a reader's token only means something when the server checks tokens."""
    if value and not ctx.config.auth_enabled:
        raise InvalidInputError("'require_authentication' needs authentication on this server "
                                "(RS_API_TOKEN): without it every caller is a reader")


async def make_link(ctx: AppContext, token: Token, target: Target, *, file_name: str, expire_at: int,
                    origin: Origin, max_downloads: int | None = None, password: str | None = None,
                    receipt_to: str | None = None, send_receipts: bool = True,
                    require_authentication: bool = False) -> LinkRecord:
    check_require_authentication(ctx, require_authentication)
    if receipt_to is not None:
        check_address(receipt_to, "receipt_to")
    create = partial(ctx.links.create, token=None, file_name=sanitize_filename(file_name), bucket=target.bucket,
                     entry=target.entry, record_entry=target.entry, record_ts=target.ts_us, expire_at=expire_at,
                     creator=token.name, max_downloads=max_downloads, password=password,
                     receipt_to=receipt_to, send_receipts=send_receipts,
                     require_authentication=require_authentication, origin=origin)
    # A password means scrypt (tens of ms) and every create fsyncs: off the event loop.
    return await blocking.run_disk(create)


def served_size(ctx: AppContext, rec: LinkRecord) -> int:
    """Bytes the link serves now (0 for a bundle or a record that is gone)."""
    if rec.origin == "native" and rec.file_name.lower().endswith(".tar"):
        return 0
    try:
        return ctx.engine.get_bucket(rec.bucket).get_entry(rec.record_entry).get(rec.record_ts).size
    except EdgeError:
        return 0


def visible(token: Token, rec: LinkRecord) -> bool:
    return Read(rec.bucket).allows(token)


def find_visible(ctx: AppContext, token: Token, link_id: str) -> LinkRecord:
    """A link the token may see (read access to its bucket), not revoked; else ``NotFoundError``."""
    try:
        rec = ctx.links.get(link_id)
    except NotFoundError:
        rec = None
    if rec is None or rec.revoked or not visible(token, rec):
        raise NotFoundError(f"FileLink '{link_id[:64]}' not found")
    return rec


def now_s() -> float:
    return time.time()


def vendor_errors(render: Render, overrides: Mapping[type[EdgeError], int] | None = None
                  ) -> Callable[[Handler], Handler]:
    """Answer the handler's ``EdgeError`` as ``render(status, text)`` with the vendor's body shape.

    The status comes from ``overrides`` (first matching class of the error's MRO), else the one
    table of ``http/errors.py``. Bugs are not caught: they stay the server's logged 500.
    """
    table = dict(overrides or {})

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def answer(req: Request, ctx: AppContext, **params: str) -> Response:
            try:
                return await handler(req, ctx, **params)
            except EdgeError as exc:
                # The one table's answer (x-reduct-error, Retry-After ...), in the vendor's shape.
                response = error_response(exc)
                response.status = next((table[c] for c in type(exc).__mro__ if c in table), response.status)
                response.body = render(response.status, exc.message)
                if isinstance(exc, UnauthorizedError) and not any(k == "www-authenticate" for k, _ in response.headers):
                    response.headers.append(("www-authenticate", BASIC_CHALLENGE))
                return response
        return answer
    return wrap


def json_bytes(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
