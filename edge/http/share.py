"""Sharing links by mail: ``POST <base>api/v1/share`` and ``GET <base>api/v1/share/outbox``.

Owns: the share body (``link_ids``, ``recipients``, optional ``message``), its checks and answers,
what a mail says about each link (file name, size, expiry, short URL), the permission rule, and
the outbox listing.
Must not: talk SMTP or write the outbox itself (``edge.services.mail``), compose MIME
(``edge.mail.compose``), log link URLs or message bodies.

Answers, in order: 401/403 for the token; ``400 Mail is not configured on this server`` when no
relay is set (nothing else happens); 422 for a malformed body, an empty list or a bad address
(the text names it), or too many recipients; 403 when a known link is not the caller's to
manage (read access to its bucket, and creator or full access: the rule of ``links.py``);
``400 No shareable links found`` when none of the ids is a live link (unknown ids are skipped,
as are revoked, expired and used-up links); 429 over the hourly limit; else
``{"message": "Shareable links sent", "queued": N}`` once the N mails are on disk.
"""

from __future__ import annotations

import time
from ..auth.policy import FullAccess, Read
from ..auth.tokens import Token
from ..errors import BadRequestError, EdgeError, ForbiddenError, InvalidInputError, NotFoundError
from ..links import LinkRecord
from ..mail.compose import MAX_MESSAGE, ShareItem, check_recipients
from ..mail.outbox import STATES
from ..services.mail import NOT_CONFIGURED
from .context import AppContext, authorize
from .request import json_object, json_response, read_json
from .routing import Route
from .shortlinks import short_url
from ..server.types import Request, Response

NO_LINKS = "No shareable links found"
MAX_LINK_IDS = 100


def _link_ids(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidInputError("'link_ids' must be a list of link ids")
    if not value:
        raise InvalidInputError("'link_ids' must not be empty")
    if len(value) > MAX_LINK_IDS:
        raise InvalidInputError(f"Too many links: at most {MAX_LINK_IDS} per request")
    return list(dict.fromkeys(value))


def message_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError("'message' must be a string")
    if len(value) > MAX_MESSAGE:
        raise InvalidInputError(f"'message' is longer than {MAX_MESSAGE} characters")
    return value


def _may_manage(token: Token, rec: LinkRecord) -> None:
    Read(rec.bucket).check(token)
    if not (token.permissions.full_access or token.name == rec.creator):
        raise ForbiddenError(f"Token '{token.name}' can't share link '{rec.id}': "
                             "only its creator or a full-access token can")


def _size(ctx: AppContext, rec: LinkRecord) -> int | None:
    if rec.file_name.lower().endswith(".tar"):
        return None                             # a bundle's size depends on the query at download
    try:
        return ctx.engine.get_bucket(rec.bucket).get_entry(rec.record_entry).get(rec.record_ts).size
    except EdgeError:
        return None


def _item(ctx: AppContext, rec: LinkRecord, now: float) -> ShareItem | None:
    if rec.state(now) != "active":
        return None
    return ShareItem(file_name=rec.file_name, size=_size(ctx, rec), expire_at=rec.expire_at,
                     short_url=short_url(ctx, rec))


# POST share  {"link_ids": [...], "recipients": [...], "message"?: "..."}
async def share(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, None)
    doc = await read_json(req)
    mail = ctx.mail
    if not mail.enabled:
        raise BadRequestError(NOT_CONFIGURED)
    doc = json_object(doc)
    link_ids = _link_ids(doc.get("link_ids"))
    recipients = check_recipients(doc.get("recipients"), mail.settings.max_recipients)
    message = message_text(doc.get("message"))
    now = time.time()
    items, shared = [], []
    for link_id in link_ids:
        try:
            rec = ctx.links.get(link_id)
        except NotFoundError:
            continue                            # unknown ids are skipped (Mediapocket)
        _may_manage(token, rec)
        item = _item(ctx, rec, now)
        if item is not None:
            items.append(item)
            shared.append(rec.id)
    if not items:
        raise BadRequestError(NO_LINKS)
    queued = await mail.share(token=token.name, items=items, link_ids=shared, recipients=recipients,
                              message=message)
    return json_response({"message": "Shareable links sent", "queued": queued})


# GET share/outbox[?state=queued|sending|sent|failed]
async def outbox(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    state = req.query.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidInputError(f"'state' must be one of {', '.join(STATES)}")
    mail = ctx.mail
    return json_response({"enabled": mail.enabled, "last_error": mail.last_error,
                          "mails": mail.listing(state)})


ROUTES = [
    Route("POST", "share", share),
    Route("GET", "share/outbox", outbox),
]
