"""Bucket resource: /b/{bucket} GET HEAD POST PUT DELETE and /b/{bucket}/rename (spec §5).

Owns: these routes. Must not: know the storage layout; every change goes through the Engine.
"""

from __future__ import annotations

from .. import blocking
from ..auth.policy import Authenticated, FullAccess, Read
from ..errors import ConflictError, InvalidInputError
from .context import AppContext, authorize
from .request import empty_response, encoded_json_response, read_json
from .routing import Route
from ..server.types import Request, Response
from .wire.buckets import full_bucket_info_json, settings_changes_from_wire


# GET /b/{bucket}
async def get_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Read(bucket))
    b = ctx.engine.get_bucket(bucket)
    entries = b.entry_infos()
    return encoded_json_response(full_bucket_info_json(b.info(entries), b.settings, entries))


# HEAD /b/{bucket}
async def head_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Authenticated())
    ctx.engine.get_bucket(bucket)
    return empty_response()


# POST /b/{bucket}
async def create_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, FullAccess())
    changes = settings_changes_from_wire(await read_json(req, allow_empty=True))
    await ctx.storage.create_bucket(bucket, ctx.engine.defaults.merged(**changes))
    return empty_response()


# PUT /b/{bucket}
async def update_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, FullAccess())
    changes = settings_changes_from_wire(await read_json(req, allow_empty=True))
    b = ctx.engine.get_bucket(bucket)
    if b.is_provisioned:
        raise ConflictError(f"Can't change settings of provisioned bucket '{bucket}'")
    b.update_settings(b.settings.merged(**changes))
    return empty_response()


# DELETE /b/{bucket}
async def remove_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, FullAccess())
    b = ctx.engine.get_bucket(bucket)
    if b.is_provisioned or bucket.startswith("$"):
        raise ConflictError(f"Can't remove provisioned bucket '{bucket}'")
    # Forgotten at once (in memory), its files deleted in a worker thread: a bucket of many
    # blocks takes seconds to unlink on an SD card, and the data folder's fsync ends it.
    await blocking.run_disk(ctx.engine.detach_bucket(bucket))
    ctx.engine.removed(bucket)
    ctx.tokens.on_bucket_removed(bucket)
    return empty_response()


# PUT /b/{bucket}/rename
async def rename_bucket(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, FullAccess())
    doc = await read_json(req)
    new_name = doc.get("new_name") if isinstance(doc, dict) else None
    if not isinstance(new_name, str):
        raise InvalidInputError("Invalid JSON: missing field `new_name`")
    b = ctx.engine.get_bucket(bucket)
    if b.is_provisioned:
        raise ConflictError(f"Can't rename provisioned bucket '{bucket}'")
    ctx.engine.rename_bucket(bucket, new_name)
    ctx.tokens.on_bucket_renamed(bucket, new_name)
    return empty_response()


ROUTES = [
    Route("PUT", "b/{bucket}/rename", rename_bucket),
    Route("GET", "b/{bucket}", get_bucket),
    Route("HEAD", "b/{bucket}", head_bucket),
    Route("POST", "b/{bucket}", create_bucket),
    Route("PUT", "b/{bucket}", update_bucket),
    Route("DELETE", "b/{bucket}", remove_bucket),
]
