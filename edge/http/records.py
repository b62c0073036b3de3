"""Single-record resource: POST/GET/HEAD/PATCH/DELETE /b/{bucket}/{entry} (spec §6.2-§6.6).

Owns: these routes and the headers of a single-record response.
Must not: buffer large payloads (bodies stream in through StorageService, out through
``payload.payload_body``: sendfile with a concurrent crc check) or answer before a write is durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..auth.policy import Read, Write
from ..errors import InvalidInputError
from ..formats.metadata import is_meta_entry, readable_content_type, readable_labels
from ..model import BIG_RECORD_BYTES, DEFAULT_CONTENT_TYPE
from .context import AppContext, authorize
from .entries import remove_entry
from .payload import payload_body
from .request import content_length, empty_response, labels_from_headers, parse_ts, parse_ts_optional, parse_u64
from .routing import Route
from ..server.types import Request, Response

if TYPE_CHECKING:
    from ..store import Entry, RecordRef


def record_headers(entry_name: str, ref: "RecordRef") -> list[tuple[str, str]]:
    headers = [("x-reduct-time", str(ref.ts_us)), ("x-reduct-entry", entry_name),
               ("content-type", readable_content_type(ref.content_type, DEFAULT_CONTENT_TYPE)),
               ("content-disposition", "attachment")]
    # Labels an older version stored unchecked (CR/LF, non-token names) are left out, not a 500.
    for name, value in readable_labels(ref.labels):
        headers.append((f"x-reduct-label-{name}", value))
    return headers


def record_response(entry: "Entry", entry_name: str, ref: "RecordRef", head: bool, status: int = 200,
                    extra: list[tuple[str, str]] | None = None) -> Response:
    headers = record_headers(entry_name, ref) + (extra or [])
    if head:
        return Response(status, headers, b"", content_length=ref.size)
    if ref.size <= BIG_RECORD_BYTES:
        body = b"".join(entry.read_payload(ref))  # raises CorruptRecordError before any byte is sent
        return Response(status, headers, body)
    # sendfile; the last bytes go out only once the crc matched (else the connection is cut)
    return Response(status, headers, payload_body(entry, ref), content_length=ref.size)


# POST /b/{bucket}/{entry}?ts=
async def write_record(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    ts = parse_ts(req)
    length = content_length(req)
    content_type = req.headers.get("content-type") or DEFAULT_CONTENT_TYPE
    labels = labels_from_headers(req)
    await ctx.storage.write_record(bucket, entry, ts, length, content_type, labels, req.body)
    return empty_response()


# GET|HEAD /b/{bucket}/{entry}[?ts=|?q=]  (with q, ts is ignored, even a malformed one)
async def read_record(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Read(bucket))
    head = req.method == "HEAD"
    if "q" in req.query:
        query_id = parse_u64(req.query["q"], "'query' must be a number")
        from .queries import read_single_record

        return await read_single_record(req, ctx, bucket, entry, query_id, head)
    ts = parse_ts_optional(req)
    e = ctx.engine.get_bucket(bucket).get_entry(entry)
    ref = e.get(ts) if ts is not None else e.latest()
    return record_response(e, entry, ref, head)


# PATCH /b/{bucket}/{entry}?ts=
async def update_record(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    ts = parse_ts(req)
    labels = labels_from_headers(req)
    await ctx.storage.update_labels(bucket, entry, ts, labels)
    return empty_response()


# DELETE /b/{bucket}/{entry}?ts=  (without a query string: remove the entry)
async def remove_record(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    if not req.query_items and "?" not in req.target:
        return await remove_entry(req, ctx, bucket, entry)
    authorize(req, ctx, Write(bucket))
    ts = parse_ts(req)
    if is_meta_entry(entry):
        raise InvalidInputError(
            f"Can't delete records from system entry '{entry}'; use label update with remove=true")
    await ctx.storage.remove_record(bucket, entry, ts)
    return empty_response()


ROUTES = [
    Route("POST", "b/{bucket}/{entry+}", write_record),
    Route("GET", "b/{bucket}/{entry+}", read_record),
    Route("PATCH", "b/{bucket}/{entry+}", update_record),
    Route("DELETE", "b/{bucket}/{entry+}", remove_record),
]
