"""Share links over HTTP: create (spec §11.1), download (``link_download.py``) and management.

Owns: the routes under ``<base>api/v1/links``, the create body (ReductStore's fields plus our
optional ``max_downloads``, ``password``, ``receipt_to``, ``send_receipts``,
``require_authentication``), the link URL, and the management API (``GET links``,
``GET|PATCH|DELETE links/{id}``) with its permission rule.

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
from typing import Any


from ..auth.policy import Read
from ..errors import InvalidInputError
from ..links import new_link_id
from ..mail.compose import check_address
from ..links.seal import seal
from ..query.plan import QUERY, U64_MAX, plan_from_json
from ..formats.metadata import check_file_name
from .context import AppContext, authorize, public_base_url, require_creator_or_full_access
from .link_download import download, is_link_request
from .request import empty_response, json_response, read_json_object
from .shortlinks import short_url
from .routing import Route
from .shared_links import check_require_authentication
from ..server.types import Request, Response
from .ui import download_page, wants_download_page
from .. import blocking

LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_RECEIPT_TO = 320   # an e-mail address (RFC 5321 path limit); only stored for the mail room
REDUCT_FIELDS = ("bucket", "entry", "record_entry", "record_timestamp", "query", "expire_at", "base_url", "index")
EDGE_FIELDS = ("max_downloads", "password", "receipt_to", "send_receipts", "require_authentication")
_PATCH_FIELDS = ("expire_at", "max_downloads", "password", "receipt_to", "send_receipts", "require_authentication")


def check_fields(doc: dict, allowed: tuple[str, ...]) -> None:
    for key in doc:
        if key not in allowed:
            raise InvalidInputError(f"Unknown field '{str(key)[:64]}' in the link body; this server knows "
                                    + ", ".join(allowed))


def _opt_bool(doc: dict, key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInputError(f"'{key}' must be true or false")
    return value


def _missing(field: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid JSON: missing field `{field}`")


def _base_url(req: Request, ctx: AppContext, value: object) -> str:
    """``base_url`` must be absolute with a host; a ``/`` is appended (spec §11.1)."""
    if value is None:
        return public_base_url(req, ctx)
    prefix = "Invalid base_url provided for query link: "
    if not isinstance(value, str):
        raise InvalidInputError(prefix + "expected a string")
    try:
        parts = urllib.parse.urlsplit(value.strip())
        host = parts.hostname
        parts.port                                   # raises on a bad port
    except ValueError as exc:
        raise InvalidInputError(prefix + str(exc)) from None
    if not parts.scheme:
        raise InvalidInputError(prefix + "relative URL without a base")
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInputError(prefix + "missing host")
    url = value.strip()
    return url if url.endswith("/") else url + "/"


def _opt_int(doc: dict, key: str) -> Any:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInputError(f"'{key}' must be an integer")
    return value


def _opt_str(doc: dict, key: str, limit: int | None = None) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"'{key}' must be a string")
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidInputError(f"'{key}' is longer than {limit} characters")
    if value == "":
        raise InvalidInputError(f"'{key}' must not be empty (use null to clear it)")
    return value


# POST links/{file_name+}
async def create_link(req: Request, ctx: AppContext, file_name: str) -> Response:
    token = authorize(req, ctx, None)           # 401 before anything is parsed
    check_file_name(file_name, "Link file name", path_ok=True)
    doc = await read_json_object(req)
    check_fields(doc, REDUCT_FIELDS + EDGE_FIELDS)
    if "bucket" not in doc:
        raise _missing("bucket")
    bucket = doc["bucket"]
    if not isinstance(bucket, str):
        raise InvalidInputError("Invalid JSON: invalid type for `bucket`, expected a string")
    Read(bucket).check(token)                   # upstream's 403 text, before any other field
    for field in ("query", "expire_at"):
        if field not in doc:
            raise _missing(field)
    query = doc["query"]
    if not isinstance(query, dict) or query.get("query_type") != QUERY:
        raise InvalidInputError("Only 'Query' type is supported for query links")
    plan_from_json(query)                       # a bad query is a 422 now, not at download
    entry = doc.get("entry") or ""
    if not isinstance(entry, str):
        raise InvalidInputError("Invalid JSON: invalid type for `entry`, expected a string")
    record_entry, record_ts = doc.get("record_entry"), doc.get("record_timestamp")
    is_tar = file_name.lower().endswith(".tar")
    if record_entry is None or record_ts is None:
        if not is_tar:                          # a bundle serves the whole result: no record needed
            raise InvalidInputError("Both 'record_entry' and 'record_timestamp' must be provided in payload")
        record_entry, record_ts = record_entry or "", record_ts or 0
    if not isinstance(record_entry, str):
        raise InvalidInputError("Invalid JSON: invalid type for `record_entry`, expected a string")
    if isinstance(record_ts, bool) or not isinstance(record_ts, int) or not 0 <= record_ts <= U64_MAX:
        raise InvalidInputError("Invalid JSON: invalid type for `record_timestamp`, expected u64")
    expire_at = doc["expire_at"]
    if isinstance(expire_at, bool) or not isinstance(expire_at, int) or expire_at < 0:
        raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
    base = _base_url(req, ctx, doc.get("base_url"))
    max_downloads = _opt_int(doc, "max_downloads")
    password = _opt_str(doc, "password")
    receipt_to = _opt_str(doc, "receipt_to", MAX_RECEIPT_TO)
    if receipt_to is not None:
        check_address(receipt_to, "receipt_to")   # 422 naming it: a receipt must be deliverable
    send_receipts = _opt_bool(doc, "send_receipts", receipt_to is not None)
    require_auth = _opt_bool(doc, "require_authentication", False)
    check_require_authentication(ctx, require_auth)
    found = ctx.engine.get_bucket(bucket)       # 404 for a bucket that does not exist
    if not is_tar or doc.get("record_entry") is not None:
        found.get_entry(record_entry).get(record_ts)   # 404 naming the entry or the record

    issuer = token.name
    link_id = new_link_id()
    # The sealed payload: what a download needs to find the data. Never the password or limits
    # (those live, changeable, in the registry); the id binds the token to its registry record.
    payload = {"id": link_id, "bucket": bucket, "entry": entry, "record_entry": record_entry,
               "record_timestamp": record_ts, "query": query, "expire_at": expire_at}
    box = seal(payload, ctx.link_room.key.material, associated=issuer.encode("utf-8", "surrogatepass"))
    create = partial(ctx.links.create, token=box.ct, file_name=file_name, bucket=bucket, entry=entry,
                     record_entry=record_entry, record_ts=record_ts, expire_at=expire_at,
                     creator=issuer, link_id=link_id, max_downloads=max_downloads,
                     password=password, receipt_to=receipt_to, send_receipts=send_receipts,
                     require_authentication=require_auth,
                     url_params={"ct": box.ct, "s": box.s, "i": issuer, "n": box.n, "base_url": base})
    # A password means scrypt (tens of ms) and every create fsyncs: off the event loop.
    rec = await blocking.run_disk(create)
    query_string = urllib.parse.urlencode({"ct": box.ct, "s": box.s, "i": issuer, "n": box.n},
                                          quote_via=urllib.parse.quote)
    url = f"{base}api/v1/links/{urllib.parse.quote(file_name, safe='/')}?{query_string}"
    return json_response({"link": url, "id": rec.id, "expire_at": rec.expire_at,
                          "short_url": short_url(ctx, rec)})


# --- management ---------------------------------------------------------------------------------

def _visible(ctx: AppContext, token: Any, link_id: str) -> Any:
    rec = ctx.links.get(link_id)                # 404 "Link '<id>' is not found"
    Read(rec.bucket).check(token)
    return rec


# GET links[?bucket=]
async def list_links(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, None)
    bucket = req.query.get("bucket") or None
    now = time.time()
    links = [{**r.describe(now), "short_url": short_url(ctx, r)}
             for r in ctx.links.list(bucket=bucket) if Read(r.bucket).allows(token)]
    return json_response({"links": links})


async def show_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    rec = _visible(ctx, token, link_id)
    return json_response(rec.describe(time.time(), with_receipts=True))


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
    check_fields(doc, _PATCH_FIELDS)
    changes = {k: doc[k] for k in _PATCH_FIELDS if k in doc}
    if not changes:
        raise InvalidInputError("Nothing to update: give one of " + ", ".join(_PATCH_FIELDS))
    if "expire_at" in changes and changes["expire_at"] is None:
        raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
    if "password" in changes:
        _opt_str(changes, "password")
    if changes.get("receipt_to") is not None:
        _opt_str(changes, "receipt_to", MAX_RECEIPT_TO)
        check_address(changes["receipt_to"], "receipt_to")
    for key in ("send_receipts", "require_authentication"):
        if key in changes:
            _opt_bool(changes, key, False)
    if changes.get("require_authentication"):
        check_require_authentication(ctx, True)
    rec = await blocking.run_disk(partial(ctx.links.update, rec.id, **changes))
    return json_response(rec.describe(time.time()))


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
