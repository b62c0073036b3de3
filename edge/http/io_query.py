"""Multi-entry queries of the io API: ``POST io/{bucket}/q`` and ``GET|HEAD io/{bucket}/read``.

Owns: these two routes (spec §8.5, §8.6): creating a bucket-level query or running a remove
query over the selected entries, and answering a v2 read batch (``x-reduct-entries``,
``x-reduct-start-ts``, ``x-reduct-labels``, ``x-reduct-<i>-<d>``, ``x-reduct-last``).
Must not: fill batches or order records (``services.queries`` with ``formats.batch_v2``'s
encoder, which enforces the §8.6 ordering rule reduct-py depends on), or buffer more than one
batch (bodies go through ``queries.batch_response``).
"""

from __future__ import annotations

from ..auth.policy import Read, Write
from ..errors import InvalidInputError
from ..query.plan import REMOVE, plan_from_json
from ..services import queries as service
from .context import AppContext, authorize
from .queries import batch_response
from .request import json_response, parse_u64, read_json
from .routing import Route
from ..server.types import Request, Response


# POST /io/{bucket}/q   body: QueryEntry (with `entries`)
async def create_io_query(req: Request, ctx: AppContext, bucket: str) -> Response:
    doc = await read_json(req)
    kind = doc.get("query_type") if isinstance(doc, dict) else None
    authorize(req, ctx, Write(bucket) if kind == REMOVE else Read(bucket))
    plan = plan_from_json(doc)
    if plan.kind == REMOVE:
        return json_response({"removed_records": await ctx.queries.remove(bucket, plan)})
    return json_response({"id": ctx.queries.open_bucket(bucket, plan)})


# GET|HEAD /io/{bucket}/read   header x-reduct-query-id
async def read_io_batch(req: Request, ctx: AppContext, bucket: str) -> Response:
    authorize(req, ctx, Read(bucket))
    text = req.headers.get("x-reduct-query-id")
    if text is None:
        raise InvalidInputError("x-reduct-query-id header is required for batched reads")
    query_id = parse_u64(text, "Invalid query id")
    ctx.engine.get_bucket(bucket)
    query = ctx.queries.get(query_id, service.BUCKET)
    if query.bucket != bucket:
        raise service.not_found(query_id)
    head = req.method == "HEAD"
    batch = await ctx.queries.next_batch(query, head=head or query.plan.only_metadata, v2=True)
    if batch is None:
        return Response(204, [])
    return batch_response(batch, head, query.plan.only_metadata)


ROUTES = [
    Route("POST", "io/{bucket}/q", create_io_query),
    Route("GET", "io/{bucket}/read", read_io_batch),
]
