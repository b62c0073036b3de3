"""LiquidFiles FileLinks: ``POST /link``, ``GET /link``, ``DELETE /link/<id>``, ``PUT /link/<id>/update_*``.

Owns: these routes (relative to the base path, mounted through ``ROOT_MODULES``), the create
body ``{"link": {"attachment", "expires_at", "password", "download_receipt",
"require_authentication"}}`` (plus edge's ``receipt_to``: where receipts go when the server has
no ``EDGE_RECEIPT_TO``), and the three one-setting updates.
Must not: serve files (``download.py``) or decide link rules (``edge.links``).

What ``attachment`` may name: an uploaded attachment's id, or any record as
``<bucket>/<entry>/<timestamp>`` (the asset names of ``shared_links``). A missing one is a 422
naming it, as every creation error of this API.
Expiry: ``expires_at`` is a day; the link lives through that whole day (UTC). Without one the
link lives ``EDGE_LINK_DEFAULT_DAYS`` days (7) after today. A date in the past is accepted and
makes an expired link (the vendor's own examples use such dates).
Who: creating needs read access to the record's bucket (like native links); listing shows the
links of buckets the token can read, newest first, without revoked ones; deleting and updating
need the creator or a full-access token (else the vendor's ``422 Not Permitted``).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable

from ...errors import ForbiddenError, InvalidInputError
from ...links import LinkRecord
from ...links.wire import day_end_s, days_from, parse_day
from ..context import AppContext, require_creator_or_full_access
from ..request import json_object, json_response, read_json
from ..routing import Route
from ..shared_links import (check_asset_access, check_require_authentication, find_visible, make_link,
                            resolve_asset, visible)
from ...server.types import Request, Response
from .common import answers, answers_422, api_token, check_keys, flag, link_json
from ... import blocking

CREATE_KEYS = ("attachment", "expires_at", "password", "download_receipt", "require_authentication", "receipt_to")
MAX_LIST = 10_000


async def _body(req: Request) -> dict[str, object]:
    return json_object(await read_json(req))


def _opt_str(doc: dict[str, object], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"'{key}' must be a non-empty string")
    return value


# POST /link  {"link": {...}}
@answers_422
async def create(req: Request, ctx: AppContext) -> Response:
    token = api_token(req, ctx, None)
    doc = await _body(req)
    check_keys(doc, ("link",), "the request")
    link = doc.get("link")
    if not isinstance(link, dict):
        raise InvalidInputError("Missing parameter 'link' (an object)")
    check_keys(link, CREATE_KEYS, "'link'")
    attachment = link.get("attachment")
    if isinstance(attachment, int) and not isinstance(attachment, bool):
        attachment = str(attachment)
    if not isinstance(attachment, str) or not attachment:
        raise InvalidInputError("Missing parameter 'attachment' (the attachment id)")
    expires = link.get("expires_at")
    expire_at = (days_from(time.time(), ctx.config.link_default_days) if expires is None
                 else day_end_s(parse_day(expires, "expires_at")))
    require_auth = flag(link, "require_authentication", False)
    receipts = flag(link, "download_receipt", True)
    password = _opt_str(link, "password")
    receipt_to = _opt_str(link, "receipt_to")
    check_require_authentication(ctx, require_auth)
    target = resolve_asset(ctx, attachment)
    check_asset_access(token, target)
    rec = await make_link(ctx, token, target, file_name=target.filename, expire_at=expire_at, origin="liquidfiles",
                          password=password, receipt_to=receipt_to, send_receipts=receipts,
                          require_authentication=require_auth)
    return json_response({"link": link_json(req, ctx, rec)})


# GET /link[?limit=N]
@answers
async def listing(req: Request, ctx: AppContext) -> Response:
    token = api_token(req, ctx, None)
    text = req.query.get("limit")
    limit = MAX_LIST
    if text is not None:
        if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) == 0:
            raise InvalidInputError("'limit' must be a positive integer")
        limit = min(int(text), MAX_LIST)
    recs = [r for r in reversed(ctx.links.list()) if not r.revoked and visible(token, r)]
    recs.sort(key=lambda r: (r.created_ms or r.created_at * 1000, r.serial), reverse=True)
    return json_response({"links": [link_json(req, ctx, r) for r in recs[:limit]]})


# DELETE /link/<id>
@answers
async def delete(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = api_token(req, ctx, None)
    rec = find_visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "FileLink")
    await blocking.run_disk(ctx.links.revoke, rec.id)
    return json_response({"link": link_json(req, ctx, ctx.links.get(rec.id))})


async def _update(req: Request, ctx: AppContext, link_id: str, key: str) -> Response:
    token = api_token(req, ctx, None)
    doc = await _body(req)
    rec = find_visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "FileLink")
    check_keys(doc, (key,), f"update of '{key}'")
    if key not in doc:
        raise InvalidInputError(f"Missing parameter '{key}'")
    update: Callable[[], LinkRecord]
    if key == "expires_at":
        update = partial(ctx.links.update, rec.id, expire_at=day_end_s(parse_day(doc[key], key)))
    elif key == "require_authentication":
        value = flag(doc, key, False)
        try:
            check_require_authentication(ctx, value)
        except InvalidInputError as exc:
            raise ForbiddenError(exc.message) from None    # the vendor's "not permitted"
        update = partial(ctx.links.update, rec.id, require_authentication=value)
    else:
        update = partial(ctx.links.update, rec.id, send_receipts=flag(doc, key, True))
    rec = await blocking.run_disk(update)
    return json_response({"link": link_json(req, ctx, rec)})


@answers
async def update_authentication(req: Request, ctx: AppContext, link_id: str) -> Response:
    return await _update(req, ctx, link_id, "require_authentication")


@answers
async def update_download_confirmation(req: Request, ctx: AppContext, link_id: str) -> Response:
    return await _update(req, ctx, link_id, "send_download_confirmation")


@answers
async def update_expires_at(req: Request, ctx: AppContext, link_id: str) -> Response:
    return await _update(req, ctx, link_id, "expires_at")


ROUTES = [
    Route("POST", "link", create),
    Route("GET", "link", listing),
    Route("DELETE", "link/{link_id}", delete),
    Route("PUT", "link/{link_id}/update_authentication", update_authentication),
    Route("PUT", "link/{link_id}/update_download_confirmation", update_download_confirmation),
    Route("PUT", "link/{link_id}/update_expires_at", update_expires_at),
]
