"""Upload links over HTTP: ``<base>api/v1/upload-links`` and the helpers the tus handler calls.

Owns: create (``POST upload-links``), list, show, edit (``PATCH``), revoke (``DELETE``), the
anonymous ``GET upload-links/self`` (with ``Upload-Link: <secret>``) the upload page reads, the
link URL (``<base>ui/upload.html#<secret>``: the secret sits in the fragment, so it never reaches
a server log or a Referer), and ``create_with_link`` / ``check_link_access`` for
``edge/http/uploads.py``.
Must not: log or echo a secret except once in the create answer, stage or write uploads (the tus
service does), or decide limits (``edge.uploadlinks.registry``).

Permissions: Write on the link's bucket to create, see, change or revoke; changing or revoking
also needs to be its creator or full access (as for share links).
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Awaitable, Callable

from ..auth.policy import Write
from ..auth.tokens import Token
from ..errors import InvalidInputError
from ..formats.metadata import check_entry_name, is_meta_entry
from .context import AppContext, authorize, public_base_url, require_creator_or_full_access, client_ip
from .request import empty_response, json_response, read_json_object
from .routing import Route
from ..server.types import Request, Response
from ..uploadlinks.registry import UploadLink
from ..uploads.staging import Upload

HEADER = "upload-link"
_PATCH_FIELDS = ("expire_at", "max_files", "max_bytes", "note")


def upload_link_secret(req: Request) -> str | None:
    """The upload-link secret of a tus request, or None (then the request needs a token)."""
    value = req.headers.get(HEADER)
    return value.strip() if value is not None else None


async def create_with_link(req: Request, ctx: AppContext, secret: str, metadata: dict[str, str],
                           length: int | None, create: Callable[[], Awaitable[Upload]]) -> Upload:
    """tus creation authorised by an upload link: reserve, create, bind (or release on failure)."""
    links = ctx.upload_links
    grant = links.authorize_upload(secret, metadata, length, client_ip(req))
    try:
        up = await create()
    except BaseException:
        links.release(grant)
        raise
    links.bind(grant, up.id)
    return up


def check_link_access(req: Request, ctx: AppContext, secret: str, upload_id: str) -> None:
    """HEAD/PATCH/DELETE with a link secret: only uploads created through that link (else 404)."""
    ctx.upload_links.check_access(secret, upload_id)


def _base_url(req: Request, ctx: AppContext, value: object) -> str:
    if value is None:
        return public_base_url(req, ctx)
    if not isinstance(value, str):
        raise InvalidInputError("Invalid base_url: expected a string")
    parts = urllib.parse.urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("Invalid base_url: an absolute http(s) URL with a host is required")
    url = value.strip()
    return url if url.endswith("/") else url + "/"


def _opt_int(doc: dict[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInputError(f"'{key}' must be an integer")
    return value


# POST upload-links  {bucket, entry, expire_at, max_files?, max_bytes?, note?, base_url?}
async def create_link(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, None)
    doc = await read_json_object(req)
    bucket, entry = doc.get("bucket"), doc.get("entry")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidInputError("Invalid JSON: missing field `bucket`")
    Write(bucket).check(token)
    if not isinstance(entry, str) or not entry.strip("/"):
        raise InvalidInputError("Invalid JSON: missing field `entry`")
    if "expire_at" not in doc:
        raise InvalidInputError("Invalid JSON: missing field `expire_at`")
    base = _base_url(req, ctx, doc.get("base_url"))
    check_entry_name(entry)
    if is_meta_entry(entry):
        raise InvalidInputError("Upload links cannot write into attachment ($meta) entries")
    ctx.engine.get_bucket(bucket)                       # 404 for a missing bucket
    rec, secret = ctx.upload_links.registry.create(
        bucket=bucket, entry=entry, expire_at=doc["expire_at"], creator=token.name,
        max_files=_opt_int(doc, "max_files"), max_bytes=_opt_int(doc, "max_bytes"), note=doc.get("note") or "")
    out = rec.describe(time.time())
    out["secret"] = secret
    out["url"] = f"{base}ui/upload.html#{secret}"
    return json_response(out, headers=[("cache-control", "no-store")])


def _visible(ctx: AppContext, token: Token, link_id: str) -> UploadLink:
    rec = ctx.upload_links.registry.get(link_id)
    Write(rec.bucket).check(token)
    return rec


# GET upload-links[?bucket=]
async def list_links(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, None)
    now = time.time()
    links = [r.describe(now) for r in ctx.upload_links.registry.list(bucket=req.query.get("bucket") or None)
             if Write(r.bucket).allows(token)]
    return json_response({"upload_links": links})


# GET upload-links/self  (anonymous; header Upload-Link)
async def show_self(req: Request, ctx: AppContext) -> Response:
    secret = upload_link_secret(req) or ""
    rec = ctx.upload_links.registry.resolve(secret)
    return json_response(rec.public(time.time()), headers=[("cache-control", "no-store")])


# GET upload-links/{link_id}
async def show_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    rec = _visible(ctx, token, link_id)
    return json_response(rec.describe(time.time(), with_received=True))


# PATCH upload-links/{link_id}  {expire_at?, max_files?, max_bytes?, note?} (null clears a limit)
async def update_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    doc = await read_json_object(req)
    rec = _visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "upload link")
    changes = {k: doc[k] for k in _PATCH_FIELDS if k in doc}
    if not changes:
        raise InvalidInputError("Nothing to update: give 'expire_at', 'max_files', 'max_bytes' or 'note'")
    rec = ctx.upload_links.registry.update(rec.id, **changes)
    return json_response(rec.describe(time.time()))


# DELETE upload-links/{link_id}  (revoke; the record stays for the listing)
async def revoke_link(req: Request, ctx: AppContext, link_id: str) -> Response:
    token = authorize(req, ctx, None)
    rec = _visible(ctx, token, link_id)
    require_creator_or_full_access(token, rec, "upload link")
    ctx.upload_links.registry.revoke(rec.id)
    return empty_response()


ROUTES = [
    Route("GET", "upload-links", list_links),
    Route("POST", "upload-links", create_link),
    Route("GET", "upload-links/self", show_self),
    Route("GET", "upload-links/{link_id}", show_link),
    Route("PATCH", "upload-links/{link_id}", update_link),
    Route("DELETE", "upload-links/{link_id}", revoke_link),
]
