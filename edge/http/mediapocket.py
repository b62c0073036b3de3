"""Mediapocket shareable links (API v2): ``<base>api/v2/shareable_links``.

Owns: ``POST shareable_links`` (create), ``GET shareable_links/<key>`` (302 to the download,
counting it), ``POST shareable_links/share`` (mail links through the outbox), their bodies and
the vendor's answers: every error body is ``{"error": "<text>"}``.
Must not: serve bytes (the 302 leads to a ticket URL of ``liquidfiles/download``, like the
vendor's presigned object-store URL), talk SMTP, or decide link rules.

Mapping of the vendor's fields onto edge:
- ``X-API-KEY`` is an edge token (with its permissions). Missing or wrong: 401 (``Bearer`` works
  too). On ``GET <key>`` the key is optional: the link key is the permission, and a given key is
  only needed for links that require authentication; a wrong one is a 401 whatever the link.
- ``payload.asset_id`` names a record as ``<bucket>/<entry>/<timestamp>`` (the entry may contain
  ``/``; the timestamp is the last segment) or an uploaded attachment's id; ``payload.media_id``
  is the integer of the same item (a record's timestamp; an attachment's id, which is its record
  timestamp), and without ``asset_id`` it names an attachment on its own. A media_id that is not
  the asset's is ``400 asset not found``, never ignored; so is an asset that does not exist.
- ``expiry_date`` is a day: the link lives through that whole day (UTC). ``limit`` is the number
  of downloads (>= 1); each ``GET <key>`` that redirects uses one.
- The answer's ``id`` is the link's serial number (what ``shareable_link_ids`` takes); the key in
  ``url`` is the link id, the same one ``/link/<id>`` and the native listing show.
- Unknown keys in the create body, or in ``payload``, are a 422 naming the key.
"""

from __future__ import annotations

import html
import time

from ..auth.policy import Read
from ..auth.tokens import Token
from ..errors import BadRequestError, ForbiddenError, InvalidInputError, NotFoundError
from ..links import LinkRecord, UNIFORM_NOT_FOUND
from ..links.wire import day_end_s, parse_day
from ..mail.compose import ShareItem, check_recipients
from ..services.mail import NOT_CONFIGURED
from .context import AppContext, authorize, authorize_api_key, client_ip, public_base_url
from .link_access import admit, offered, ticket_url
from .link_download import SECURITY_HEADERS, record_download
from .request import json_object, json_response, read_json
from .routing import Route
from .share import NO_LINKS, MAX_LINK_IDS, message_text
from .shared_links import check_asset_access, json_bytes, make_link, resolve_asset, served_size, vendor_errors
from .shortlinks import short_url
from ..server.types import Request, Response

CREATE_KEYS = ("expiry_date", "limit", "payload")
PAYLOAD_KEYS = ("media_id", "filename", "asset_id")
SHARE_KEYS = ("recipients", "message", "shareable_link_ids")
ASSET_NOT_FOUND = "asset not found"
MAX_FILENAME_CHARS = 1024


def _render(status: int, text: str) -> bytes:
    return json_bytes({"error": text})


answers = vendor_errors(_render)


def _token(req: Request, ctx: AppContext) -> Token:
    key = req.headers.get("x-api-key")
    if key is None and (req.headers.get("authorization") or "").startswith("Bearer "):
        return authorize(req, ctx, None)
    return authorize_api_key(req, ctx, key, None)


def _check_keys(doc: dict[str, object], allowed: tuple[str, ...], where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise InvalidInputError(f"Unknown parameter '{str(key)[:64]}' in {where}; known: {', '.join(allowed)}")


def _required(doc: dict[str, object], key: str) -> object:
    if key not in doc or doc[key] is None:
        raise InvalidInputError(f"Missing parameter '{key}'")
    return doc[key]


def _integer(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"'{key}' must be an integer")
    return value


def _string(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"'{key}' must be a non-empty string")
    return value


def _url(req: Request, ctx: AppContext, rec: LinkRecord) -> str:
    return f"{public_base_url(req, ctx)}api/v2/shareable_links/{rec.id}"


# POST api/v2/shareable_links  {"expiry_date", "limit", "payload": {"media_id", "filename", "asset_id"?}}
@answers
async def create(req: Request, ctx: AppContext) -> Response:
    token = _token(req, ctx)
    doc = json_object(await read_json(req))
    _check_keys(doc, CREATE_KEYS, "the request")
    day = parse_day(_string(_required(doc, "expiry_date"), "expiry_date"), "expiry_date")
    limit = _integer(_required(doc, "limit"), "limit")
    if limit < 1:
        raise InvalidInputError("'limit' must be a positive integer (the number of downloads)")
    payload = _required(doc, "payload")
    if not isinstance(payload, dict):
        raise InvalidInputError("'payload' must be an object")
    _check_keys(payload, PAYLOAD_KEYS, "'payload'")
    media_id = _integer(_required(payload, "media_id"), "payload[media_id]")
    filename = _string(_required(payload, "filename"), "payload[filename]")
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidInputError(f"'payload[filename]' is longer than {MAX_FILENAME_CHARS} characters")
    asset = payload.get("asset_id")
    if asset is None:
        asset = str(media_id)                   # media_id alone: an uploaded attachment
    if isinstance(asset, int) and not isinstance(asset, bool):
        asset = str(asset)
    asset_id = _string(asset, "payload[asset_id]")
    try:
        target = resolve_asset(ctx, asset_id)
    except NotFoundError:
        raise BadRequestError(ASSET_NOT_FOUND) from None
    if target.ts_us != media_id:
        raise BadRequestError(ASSET_NOT_FOUND)  # the two ids name different items: never guess
    check_asset_access(token, target)
    rec = await make_link(ctx, token, target, file_name=filename, expire_at=day_end_s(day), origin="mediapocket",
                          max_downloads=limit, send_receipts=False)
    return json_response({"id": rec.serial, "url": _url(req, ctx, rec), "filename": rec.file_name})


def _uniform() -> NotFoundError:
    return NotFoundError(UNIFORM_NOT_FOUND)


# GET|HEAD api/v2/shareable_links/<key>
@answers
async def follow(req: Request, ctx: AppContext, key: str) -> Response:
    if req.headers.get("x-api-key") is not None:
        _token(req, ctx)                        # a wrong key is a 401, whatever the link
    try:
        rec: LinkRecord | None = ctx.links.get(key) if ctx.links is not None else None
    except NotFoundError:
        rec = None
    admitted = await admit(req, ctx, rec, offered(req))
    if admitted is None:
        raise _uniform()
    prepaid = req.method != "HEAD"              # HEAD never counts; the ticket then counts on GET
    if prepaid:
        await record_download(ctx, admitted, client_ip(req), served_size(ctx, admitted), None, partial=False)
    location = ticket_url(req, ctx, admitted, prepaid=prepaid)
    body = f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.</body></html>'.encode()
    headers = [("location", location), ("content-type", "text/html; charset=utf-8"), *SECURITY_HEADERS]
    return Response(302, headers, b"" if req.method == "HEAD" else body, content_length=len(body))


def _shareable(ctx: AppContext, token: Token, rec: LinkRecord, now: float) -> ShareItem | None:
    """The mail item of a link the token may share, None for one it cannot see or that is dead."""
    if not Read(rec.bucket).allows(token) or rec.state(now) != "active":
        return None
    if not (token.permissions.full_access or token.name == rec.creator):
        raise ForbiddenError(f"Token '{token.name}' can't share link {rec.serial}: "
                             "only its creator or a full-access token can")
    return ShareItem(file_name=rec.file_name, size=served_size(ctx, rec) or None, expire_at=rec.expire_at,
                     short_url=short_url(ctx, rec))


# POST api/v2/shareable_links/share  {"recipients": [...], "message"?, "shareable_link_ids"?: [int]}
@answers
async def share(req: Request, ctx: AppContext) -> Response:
    token = _token(req, ctx)
    doc = json_object(await read_json(req))
    _check_keys(doc, SHARE_KEYS, "the request")
    mail = ctx.mail
    recipients = check_recipients(_required(doc, "recipients"), mail.settings.max_recipients)
    message = message_text(doc.get("message"))
    ids = doc.get("shareable_link_ids")
    if ids is not None and not isinstance(ids, list):
        raise InvalidInputError("'shareable_link_ids' must be an array of link ids")
    now = time.time()
    if ids is None:                             # none given: the caller's own live links
        recs = [r for r in reversed(ctx.links.list(creator=token.name))][:MAX_LINK_IDS]
    else:
        if len(ids) > MAX_LINK_IDS:
            raise InvalidInputError(f"Too many links: at most {MAX_LINK_IDS} per request")
        serials = dict.fromkeys(i for i in ids if isinstance(i, int) and not isinstance(i, bool))
        recs = [r for r in (ctx.links.by_serial(s) for s in serials) if r is not None]
    items, shared = [], []
    for rec in recs:
        item = _shareable(ctx, token, rec, now)
        if item is not None:
            items.append(item)
            shared.append(rec.id)
    if not items:
        raise BadRequestError(NO_LINKS)
    if not mail.enabled:
        raise BadRequestError(NOT_CONFIGURED)
    await mail.share(token=token.name, items=items, link_ids=shared, recipients=recipients, message=message)
    return json_response({"message": "Shareable links sent"})


ROUTES = [
    Route("POST", "api/v2/shareable_links", create),
    Route("POST", "api/v2/shareable_links/share", share),
    Route("GET", "api/v2/shareable_links/{key}", follow),
]
