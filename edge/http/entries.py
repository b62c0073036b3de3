"""Entry resource: remove (DELETE /b/{bucket}/{entry} without a query) and rename (spec §6.6, §6.7).

Owns: these routes. Single-record routes on the same path live in ``records.py``.
"""

from __future__ import annotations

from ..auth.policy import Write
from ..errors import InvalidInputError
from ..formats.metadata import is_meta_entry
from .context import AppContext, authorize
from .request import empty_response, read_json
from .routing import Route
from ..server.types import Request, Response


# DELETE /b/{bucket}/{entry}   (no query string; with one it removes a record, see records.py)
async def remove_entry(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    if is_meta_entry(entry):
        # Checked before auth upstream (spec §6.6).
        raise InvalidInputError(f"Can't delete system entry '{entry}'; remove the parent entry instead")
    authorize(req, ctx, Write(bucket))
    b = ctx.engine.get_bucket(bucket)
    async with ctx.storage.entry_lock(bucket, entry):
        b.remove_entry(entry)
    return empty_response()


# PUT /b/{bucket}/{entry}/rename
async def rename_entry(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    doc = await read_json(req)
    new_name = doc.get("new_name") if isinstance(doc, dict) else None
    if not isinstance(new_name, str):
        raise InvalidInputError("Invalid JSON: missing field `new_name`")
    b = ctx.engine.get_bucket(bucket)
    async with ctx.storage.entry_lock(bucket, entry):
        b.rename_entry(entry, new_name)
    return empty_response()


ROUTES = [
    Route("PUT", "b/{bucket}/{entry+}/rename", rename_entry),
]
