"""Share links over HTTP: create (spec §11.1), download (``link_download.py``) and management.

Owns: the routes under ``<base>api/v1/links``, the order of a create (401, 403 on the bucket,
the body, 404 for a missing record), the sealed payload and the link URL, and the management API
(``GET links``, ``GET|PATCH|DELETE links/{id}``) with its permission rule. The JSON of bodies and
answers (ReductStore's fields plus our optional ``max_downloads``, ``password``, ``receipt_to``,
``send_receipts``, ``require_authentication``) is ``wire/links.py``'s.

Never weaker than asked: a key of the create or PATCH body that is neither ReductStore's (its
documented fields, the legacy ``index`` included, stay accepted) nor ours is a 422 naming it, so a
caller who sends, say, ``limit`` learns at once that it did not make a limited link. A link must
point at a record that exists: a missing entry or timestamp is the store's 404 naming it, at
creation (``.tar`` bundles, which serve a whole query result, need no record).
Must not: put secrets anywhere but the sealed ``ct`` (the password is hashed by the registry and
never sealed, logged or echoed), log link URLs (``ct`` is a bearer secret), or decide link rules.

Path overlap: ``links/{file_name+}`` (download) and ``links/{id}`` (manage) share a shape. A GET
with a query string is a download (every link URL carries ``?ct=&s=&i=&n=``; missing ones get
upstream's ``422 Missing 'ct' parameter``); a GET without any query string whose last segment is
a link id (16..64 of ``[A-Za-z0-9_-]``, one segment) is management and needs a token. So a bare
``GET links/<something-like-an-id>`` is never a download, which costs nothing: such a request
could only ever have been a 422. PATCH and DELETE exist only for ``links/{id}``.

Who may manage: a token with read access to the link's bucket sees it (list, show); changing or
revoking also needs to be its creator or full access. Anonymous requests never manage.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from functools import partial


from ..auth.policy import Read
from ..auth.tokens import Token
from ..links import LinkRecord, new_link_id
from ..links.seal import seal
from ..formats.metadata import check_file_name
from .context import AppContext, authorize, public_base_url, require_creator_or_full_access
from .link_download import download, is_link_request
from .request import empty_response, json_response, read_json_object
from .shortlinks import short_url
from .routing import Route
from .shared_links import check_require_authentication
from ..server.types import Request, Response
from .ui import download_page, wants_download_page
from .wire.links import (link_bucket_from_wire, link_changes_from_wire, link_create_from_wire, link_created_to_wire,
                         link_to_wire, links_to_wire)
from .. import blocking

LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


# POST links/{file_name+}
async def create_link(req: Request, ctx: AppContext, file_name: str) -> Response:
    token = authorize(req, ctx, None)           # 401 before anything is parsed
    check_file_name(file_name, "Link file name", path_ok=True)
    doc = await read_json_object(req)
    bucket = link_bucket_from_wire(doc)
    Read(bucket).check(token)                   # upstream's 403 text, before any other field
    body = link_create_from_wire(doc, bucket, file_name, public_base_url(req, ctx))
    check_require_authentication(ctx, body.require_authentication)
    found = ctx.engine.get_bucket(bucket)       # 404 for a bucket that does not exist
    if not file_name.lower().endswith(".tar") or body.record_given:
        found.get_entry(body.record_entry).get(body.record_ts)   # 404 naming the entry or the record

    issuer = token.name
    link_id = new_link_id()
    # The sealed payload: what a download needs to find the data. Never the password or limits
    # (those live, changeable, in the registry); the id binds the token to its registry record.
    payload = {"id": link_id, "bucket": bucket, "entry": body.entry, "record_entry": body.record_entry,
               "record_timestamp": body.record_ts, "query": body.query, "expire_at": body.expire_at}
    box = seal(payload, ctx.link_room.key.material, associated=issuer.encode("utf-8", "surrogatepass"))
    create = partial(ctx.links.create, token=box.ct, file_name=file_name, bucket=bucket, entry=body.entry,
                     record_entry=body.record_entry, record_ts=body.record_ts, expire_at=body.expire_at,
                     creator=issuer, link_id=link_id, max_downloads=body.max_downloads,
                     password=body.password, receipt_to=body.receipt_to, send_receipts=body.send_receipts,
                     require_authentication=body.require_authentication,
                     url_params={"ct": box.ct, "s": box.s, "i": issuer, "n": box.n, "base_url": body.base_url})
    # A password means scrypt (tens of ms) and every create fsyncs: off the event loop.
    rec = await blocking.run_disk(create)
    query_string = urllib.parse.urlencode({"ct": box.ct, "s": box.s, "i": issuer, "n": box.n},
                                          quote_via=urllib.parse.quote)
    url = f"{body.base_url}api/v1/links/{urllib.parse.quote(file_name, safe='/')}?{query_string}"
    return json_response(link_created_to_wire(url, rec, short_url(ctx, rec)))


# --- management ---------------------------------------------------------------------------------

def _visible(ctx: AppContext, token: Token, link_id: str) -> LinkRecord:
    rec = ctx.links.get(link_id)                # 404 "Link '<id>' is not found"
    Read(rec.bucket).check(token)
    return rec


# GET links[?bucket=]
async def list_links(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, None)
    bucket = req.query.get("bucket") or None
    now = time.time()
    links = [link_to_wire(r, now, short_url=short_url(ctx, r))
             for r in ctx.links.list(bucket=bucket) if Read(r.bucket).allows(token)]
    return json_response(links_to_wire(links))


async def show_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    rec = _visible(ctx, token, link_id)
    return json_response(link_to_wire(rec, time.time(), with_receipts=True))


def is_details_request(req: Request, params: dict[str, str]) -> bool:
    """``links/<id>`` without a query string is one link's details; anything else is a download."""
    return not is_link_request(req) and "?" not in req.target and LINK_ID.fullmatch(params["file_name"]) is not None


# GET|HEAD links/{file_name+}: a download, or one link's details (see the module docstring)
async def get_link(req: Request, ctx: AppContext, file_name: str) -> Response:
    if is_details_request(req, {"file_name": file_name}):
        return await show_link(req, ctx, file_name)
    return await download(req, ctx, file_name)


async def show_link_details(req: Request, ctx: AppContext, file_name: str) -> Response:
    return await show_link(req, ctx, file_name)


# PATCH links/{link_id}  body: any of {"expire_at", "max_downloads", "password", "receipt_to",
# "send_receipts", "require_authentication"} (null clears max_downloads, password, receipt_to)
async def update_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    doc = await read_json_object(req)
    rec = _visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "link")
    changes = link_changes_from_wire(doc)
    if changes.get("require_authentication"):
        check_require_authentication(ctx, True)
    rec = await blocking.run_disk(partial(ctx.links.update, rec.id, **changes))
    return json_response(link_to_wire(rec, time.time()))


# DELETE links/{link_id}: revoke (the record stays for the listing and its receipts)
async def revoke_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    rec = _visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "link")
    await blocking.run_disk(ctx.links.revoke, rec.id)
    return empty_response()


ROUTES = [
    Route("GET", "links", list_links),
    Route("POST", "links/{file_name+}", create_link),
    # One URL, three meanings (routing.py, ``accepts``): details, the recipient's page in a
    # browser (edge.http.ui), the download itself.
    Route("GET", "links/{file_name+}", show_link_details, accepts=is_details_request),
    Route("GET", "links/{file_name+}", download_page, accepts=wants_download_page),
    Route("GET", "links/{file_name+}", download),
    Route("PATCH", "links/{link_id}", update_link),
    Route("DELETE", "links/{link_id}", revoke_link),
]
