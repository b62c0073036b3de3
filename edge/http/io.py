"""Batch protocol v2 writes of the io API: ``POST io/{b}/write``, ``PATCH io/{b}/update``,
``DELETE io/{b}/remove`` (spec §8.1-§8.4).

Owns: these three routes: the request-level checks (auth, headers via ``formats.batch_v2``,
Content-Length sum, bucket, ``$meta`` removals), mapping records to batch items in body order
(entry index, then ts), and the response headers reduct-py needs: ``x-reduct-entries`` and
``x-reduct-start-ts`` echoed on every 200, then one ``x-reduct-error-<idx>-<delta>`` per failed
record.
Must not: serve io reads or queries (``io_query.py``), touch the store or the body
(``services.batch``), or answer before every written record is durable.
"""

from __future__ import annotations

from ..auth.policy import Write
from ..errors import InvalidInputError
from ..formats import batch_v2
from ..formats.metadata import is_meta_entry
from ..services import batch as service
from .batch import declared_length, error_headers, reduct_headers
from .context import AppContext, authorize
from .errors import status_of
from .request import empty_response
from .routing import Route
from ..server.types import Request, Response


def _key(item: batch_v2.V2Item) -> tuple[int, int]:
    return item.entry_index, item.ts_offset


def _error_name(key: tuple[int, int]) -> str:
    return batch_v2.error_header_name(key[0], key[1])


def _answer(batch: batch_v2.V2Batch, errors: list[service.RecordError[tuple[int, int]]]) -> Response:
    return empty_response(200, batch.echo_headers() + error_headers(errors, _error_name))


# POST /io/{bucket}/write
async def write(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Write(bucket))
    batch = batch_v2.parse_write_headers(reduct_headers(req))
    total = batch.total_size
    declared_length(req, total, required=True)
    ctx.engine.get_bucket(bucket)  # 404 before reading the body
    errors = await service.write_batch(ctx.storage, bucket, batch.records, req.body, total, status_of=status_of,
                                       key_of=_key,
                                       check_end=req.body.length is None)
    return _answer(batch, errors)


# PATCH /io/{bucket}/update
async def update(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Write(bucket))
    batch = batch_v2.parse_update_headers(reduct_headers(req))
    ctx.engine.get_bucket(bucket)
    # ``delta`` is the entry's accumulated update map (spec §8.3): sets and removals inherited.
    items = [service.ChangeItem(r.entry, r.ts_us, (r.entry_index, r.ts_offset), r.delta) for r in batch.records]
    errors = await service.change_batch(ctx.storage, bucket, items, remove=False, status_of=status_of)
    return _answer(batch, errors)


# DELETE /io/{bucket}/remove
async def remove(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Write(bucket))
    batch = batch_v2.parse_remove_headers(reduct_headers(req))
    for name in batch.entries:
        if is_meta_entry(name):
            raise InvalidInputError(
                f"Can't delete records from system entry '{name}'; use label update with remove=true")
    ctx.engine.get_bucket(bucket)
    items = [service.ChangeItem(r.entry, r.ts_us, (r.entry_index, r.ts_offset)) for r in batch.records]
    errors = await service.change_batch(ctx.storage, bucket, items, remove=True, status_of=status_of)
    return _answer(batch, errors)


ROUTES = [
    Route("POST", "io/{bucket}/write", write),
    Route("PATCH", "io/{bucket}/update", update),
    Route("DELETE", "io/{bucket}/remove", remove),
]
