"""Batch protocol v1 writes: ``POST|PATCH|DELETE b/{bucket}/{entry+}/batch`` (spec §7.2, §7.4, §7.5).

Owns: these three routes: turning ``x-reduct-time-<ts>`` headers into batch items (codec in
``formats.batch_v1``), the request-level checks and their order (auth, headers, Content-Length
sum, bucket, entry), and the ``x-reduct-error-<ts>`` response headers. Also the helpers shared
with ``io.py`` (UTF-8 header values, per-record error headers, the declared body length).
Must not: register GET/HEAD on ``.../batch`` (batched reads belong to ``queries.py``), touch the
store or the body itself (``services.batch`` streams, locks, flushes and waits for durability),
or answer before every written record is durable.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..auth.policy import Write
from ..errors import InvalidInputError
from ..formats import batch_v1
from ..formats.metadata import is_meta_entry
from ..services import batch as service
from .context import AppContext, authorize
from .errors import header_safe, status_of
from .request import empty_response, parse_u64
from .routing import Route
from ..server.types import Request, Response

LENGTH_MISMATCH = "content-length header does not match the sum of the content-lengths in the headers"
LENGTH_NOT_NUMBER = "content-length header must be a number"


def reduct_headers(req: Request) -> list[tuple[str, str]]:
    """The ``x-reduct-*`` request headers with their values read back as UTF-8.

    The head parser decodes latin-1; labels inside record headers are UTF-8 on the wire. Only
    these headers matter to the codecs, and filtering them keeps the codecs' loops short.
    """
    items = req.headers.items()
    if all(value.isascii() for _, value in items):
        return items  # the common case: nothing to re-decode, no copy
    out = []
    for name, value in items:
        if not name.startswith("x-reduct-"):
            continue
        if not value.isascii():
            try:
                value = value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise InvalidInputError(f"Label values for {name} must be valid UTF-8 strings") from None
        out.append((name, value))
    return out


def declared_length(req: Request, total: int, *, required: bool) -> int:
    """The body length the client declares; 422 unless it equals ``total`` (sum of record sizes).

    ``x-reduct-content-length`` wins over ``Content-Length`` (spec §1.5). Without either, v1 uses
    the sum (chunked bodies), v2 (``required``) refuses.
    """
    text = req.headers.get("x-reduct-content-length")
    if text is None:
        text = req.headers.get("content-length")
    if text is None:
        if req.body.length is not None:
            declared = req.body.length
        elif required:
            raise InvalidInputError("content-length header is required")
        else:
            return total
    else:
        declared = parse_u64(text, LENGTH_NOT_NUMBER)
    # The framed length must agree too: x-reduct-content-length only stands in for a body whose
    # transport length is unknown (chunked, or decoded by the front).
    if declared != total or (req.body.length is not None and req.body.length != total):
        raise InvalidInputError(LENGTH_MISMATCH)
    return declared


K = TypeVar("K")


def error_headers(errors: list[service.RecordError[K]], name_of: Callable[[K], str]) -> list[tuple[str, str]]:
    return [(name_of(key), batch_v1.format_error(status, header_safe(message)))
            for key, status, message in errors]


def _ts_key(item: service.BatchRecord) -> int:
    return item.ts_us


# POST /b/{bucket}/{entry}/batch
async def write_batch(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    records = batch_v1.parse_record_headers(reduct_headers(req))
    total = sum(r.size for r in records)
    declared_length(req, total, required=False)
    ctx.engine.get_bucket(bucket)  # 404 before reading the body
    # The codec's items go in as they are (no per-record copies); a failed one is named by its ts.
    errors = await service.write_batch(ctx.storage, bucket, records, req.body, total, status_of=status_of,
                                       entry=entry, key_of=_ts_key,
                                       check_end=req.body.length is None)
    return empty_response(200, error_headers(errors, batch_v1.error_header_name))


# PATCH /b/{bucket}/{entry}/batch
async def update_batch(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    records = batch_v1.parse_record_headers(reduct_headers(req))
    ctx.engine.get_bucket(bucket).get_entry(entry)  # 404 for the whole request (spec §7.4)
    items = [service.ChangeItem(entry, r.ts_us, r.ts_us, r.labels) for r in records]
    errors = await service.change_batch(ctx.storage, bucket, items, remove=False, status_of=status_of)
    return empty_response(200, error_headers(errors, batch_v1.error_header_name))


# DELETE /b/{bucket}/{entry}/batch
async def remove_batch(req: Request, ctx: AppContext, bucket: str, entry: str) -> Response:
    authorize(req, ctx, Write(bucket))
    if is_meta_entry(entry):
        raise InvalidInputError(
            f"Can't delete records from system entry '{entry}'; use label update with remove=true")
    stamps = batch_v1.parse_record_timestamps(req.headers.items())
    ctx.engine.get_bucket(bucket).get_entry(entry)
    items = [service.ChangeItem(entry, ts, ts) for ts in stamps]
    errors = await service.change_batch(ctx.storage, bucket, items, remove=True, status_of=status_of)
    return empty_response(200, error_headers(errors, batch_v1.error_header_name))


ROUTES = [
    Route("POST", "b/{bucket}/{entry+}/batch", write_batch),
    Route("PATCH", "b/{bucket}/{entry+}/batch", update_batch),
    Route("DELETE", "b/{bucket}/{entry+}/batch", remove_batch),
]
