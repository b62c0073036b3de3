"""Entry-level queries: create (GET/POST /q), remove (DELETE /q, POST REMOVE), read (batch v1, ?q=).

Owns: ``GET|POST|DELETE b/{bucket}/{entry+}/q`` (spec §9.1, §9.4), ``GET|HEAD
b/{bucket}/{entry+}/batch?q=`` (v1 batched read, §7.3) and the single-record read by query id
(``GET|HEAD b/{bucket}/{entry}?q=``, §6.3; ``records.py`` routes it here through the registry),
plus the helpers that turn a ``services.queries.Batch`` into a streamed response (shared with
``io_query.py``).
Must not: filter records or fill batches (``services.queries`` does), buffer more than one batch,
or send a status after the first body byte: small batches are read and crc-checked before the
response starts, larger ones stream record by record through ``payload.payload_body`` (small
records verified before their bytes, large ones sendfile'd with their tail held back until their
crc matched).
"""

from __future__ import annotations

from contextlib import aclosing
from typing import AsyncIterator

from ..auth.policy import Read, Write
from ..errors import InvalidInputError
from ..formats.metadata import readable_content_type, readable_labels
from ..model import BIG_RECORD_BYTES, DEFAULT_CONTENT_TYPE
from ..query.plan import QUERY, REMOVE, plan_from_json, plan_from_params
from ..services import queries as service
from .context import AppContext, authorize
from .payload import payload_body
from .request import json_response, parse_u64, read_json
from .routing import Route
from ..server.types import FileSegment, Request, Response

QUERY_ID_ERROR = "'query' must be a number"


def _bool(value: bool) -> str:
    return "true" if value else "false"


async def _stream(batch: service.Batch) -> AsyncIterator[bytes | memoryview | FileSegment]:
    """A large batch record by record: runs of small records of one entry (up to ~1 MiB) are read
    and verified together before their bytes go out; a large record goes through payload_body."""
    matches = batch.matches
    i, n = 0, len(matches)
    while i < n:
        name = matches[i].entry
        entry = batch.entries[name]
        if matches[i].ref.size > BIG_RECORD_BYTES:
            async with aclosing(payload_body(entry, matches[i].ref)) as parts:
                async for part in parts:
                    yield part
            i += 1
            continue
        j, total = i, 0
        while (j < n and total < BIG_RECORD_BYTES and matches[j].entry == name
               and matches[j].ref.size <= BIG_RECORD_BYTES):
            total += matches[j].ref.size
            j += 1
        for part in entry.read_verified([m.ref for m in matches[i:j]]):
            yield part
        i = j


def _read_verified(batch: service.Batch) -> list[bytes | memoryview]:
    """Every payload of a small batch, verified; one store call per run of an entry's records."""
    parts: list[bytes | memoryview] = []
    matches = batch.matches
    i, n = 0, len(matches)
    while i < n:
        name = matches[i].entry
        j = i + 1
        while j < n and matches[j].entry == name:
            j += 1
        parts += batch.entries[name].read_verified([m.ref for m in matches[i:j]])
        i = j
    return parts


def batch_body(batch: service.Batch, send_payload: bool) -> tuple[bytes | AsyncIterator[bytes | memoryview | FileSegment], int]:
    """(body, content-length) of a batch response; HEAD/only_metadata send the sizes only."""
    size = batch.size
    if not send_payload or size == 0:
        return b"", size
    if size <= BIG_RECORD_BYTES:
        # Read now: a crc mismatch becomes a clean 500 instead of a cut connection.
        return b"".join(_read_verified(batch)), size
    return _stream(batch), size


def batch_response(batch: service.Batch, head: bool, only_metadata: bool) -> Response:
    headers = list(batch.record_headers)
    headers += [("content-type", "application/octet-stream"), ("x-reduct-last", _bool(batch.last))]
    body, size = batch_body(batch, not (head or only_metadata))
    if only_metadata and not head:
        size = 0  # a GET must carry exactly content-length bytes; metadata-only sends none
    return Response(200, headers, body, content_length=size)


# GET /b/{bucket}/{entry}/q?start=&stop=&ttl=&continuous=&include-*=...
async def create_query_legacy(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    """An interval without records answers 204 and opens nothing (the Entry API as ReductStore's
    seed words it); a continuous query always opens (records may come). ``POST .../q`` keeps 1.21."""
    authorize(req, ctx, Read(bucket))
    plan = plan_from_params(req.query_items, QUERY)
    found = ctx.engine.get_bucket(bucket).get_entry(entry)     # 404s first, as open_entry would
    if not plan.continuous and next(iter(found.iter_refs(plan.start_us, plan.stop_us)), None) is None:
        return Response(204, [])
    return json_response({"id": ctx.queries.open_entry(bucket, entry, plan)})


# POST /b/{bucket}/{entry}/q   body: QueryEntry
async def create_query(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    doc = await read_json(req)
    kind = doc.get("query_type") if isinstance(doc, dict) else None
    authorize(req, ctx, Write(bucket) if kind == REMOVE else Read(bucket))
    plan = plan_from_json(doc)
    if plan.kind == REMOVE:
        removed = await ctx.queries.remove(bucket, plan, entry)
        return json_response({"removed_records": removed})
    return json_response({"id": ctx.queries.open_entry(bucket, entry, plan)})


# DELETE /b/{bucket}/{entry}/q?start=&stop=...
async def remove_query_legacy(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    plan = plan_from_params(req.query_items, REMOVE)
    removed = await ctx.queries.remove(bucket, plan, entry)
    return json_response({"removed_records": removed})


def _entry_query(ctx: AppContext, bucket: str, entry: str, query_id: int) -> service.Query:
    query = ctx.queries.get(query_id, service.ENTRY)
    if query.bucket != bucket or query.entry != entry:
        raise service.not_found(query_id)  # ids are per entry: another entry's id is unknown here
    return query


# GET|HEAD /b/{bucket}/{entry}/batch?q=
async def read_batch(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Read(bucket))
    if "q" not in req.query:
        raise InvalidInputError("'q' parameter is required for batched reads")
    query_id = parse_u64(req.query["q"], QUERY_ID_ERROR)
    ctx.engine.get_bucket(bucket)
    query = _entry_query(ctx, bucket, entry, query_id)
    head = req.method == "HEAD"
    batch = await ctx.queries.next_batch(query, head=head or query.plan.only_metadata)
    if batch is None:
        return Response(204, [])
    return batch_response(batch, head, query.plan.only_metadata)


# GET|HEAD /b/{bucket}/{entry}?q=   (records.py calls it; x-reduct-last: true on the last record)
async def read_single_record(req: Request, ctx: AppContext, bucket: str, entry: str, query_id: int,
                             head: bool) -> Response:
    query = _entry_query(ctx, bucket, entry, query_id)
    batch = await ctx.queries.next_batch(query, head=True, max_records=1)
    if batch is None:
        return Response(204, [])
    match = batch.matches[0]
    headers = [("x-reduct-time", str(match.ts_us)), ("x-reduct-entry", match.entry),
               ("content-type", readable_content_type(match.content_type, DEFAULT_CONTENT_TYPE)),
               ("content-disposition", "attachment"), ("x-reduct-last", _bool(batch.last))]
    headers += [(f"x-reduct-label-{k}", v) for k, v in readable_labels(match.labels)]
    if head or query.plan.only_metadata:
        return Response(200, headers, b"", content_length=match.size if head else 0)
    body, size = batch_body(batch, True)
    return Response(200, headers, body, content_length=size)


ROUTES = [
    Route("GET", "b/{bucket}/{entry+}/q", create_query_legacy),
    Route("POST", "b/{bucket}/{entry+}/q", create_query),
    Route("DELETE", "b/{bucket}/{entry+}/q", remove_query_legacy),
    Route("GET", "b/{bucket}/{entry+}/batch", read_batch),
]
