"""tus 1.0.0 resource: OPTIONS/POST /uploads, OPTIONS/HEAD/PATCH/DELETE /uploads/{upload_id}.

Owns: these routes, the tus response headers (Tus-Resumable on every answer, Upload-Offset,
Upload-Length, Upload-Expires, Location, Cache-Control), the order of checks per request and the
CORS exposure of the tus headers.
Must not: parse tus headers itself (``edge.uploads.protocol``), touch staged files or the store
(``edge.services.uploads``), or buffer a chunk: PATCH bodies stream into the staging file.

Which record an upload became: once complete, the answer that completed it (the last PATCH, or
a creation with the whole body) and every later HEAD carry ``x-reduct-time`` (the record's
timestamp in µs), ``x-reduct-entry`` and ``x-reduct-bucket``, so a client that let the server
choose the timestamp need not query for it.

Order of checks: Tus-Resumable (412) -> authentication (401) -> the upload (404) -> Write on its
bucket (403) -> request headers (415/400) -> offset (409) -> bytes (460 on checksum mismatch).
At creation the bucket comes from Upload-Metadata, so metadata errors (400) precede the 403.
Why 412/415 are mapped here: the shared error table has no tus statuses; the two error types
carry theirs (``status``) and this module turns them into responses with the shared body format.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Awaitable, Callable

from ..auth.policy import Write
from ..errors import EdgeError, MethodNotAllowedError, NotReadyError
from ..model import DEFAULT_CONTENT_TYPE
from ..uploads.protocol import (
    CHECKSUM_ALGORITHMS, EXPOSE_HEADERS, OFFSET_CONTENT_TYPE, TUS_EXTENSIONS, TUS_VERSION, TusVersionError,
    State, UnsupportedMediaTypeError, check_content_type, check_tus_resumable, destination, parse_checksum,
    parse_length, parse_metadata, parse_offset,
)
from ..services.uploads import UploadService
from ..uploads.staging import Upload
from .context import AppContext, authorize, public_base_url
from .upload_links import check_link_access, create_with_link, upload_link_secret
from .errors import error_response
from .routing import Route
from ..server.types import Request, Response

Handler = Callable[..., Awaitable[Response]]


def _service(ctx: AppContext) -> UploadService:
    return ctx.uploads


def _tus_error(exc: EdgeError) -> Response:
    """The answer to a refused tus request (before Tus-Resumable and the CORS headers)."""
    response = error_response(exc)
    if isinstance(exc, (TusVersionError, UnsupportedMediaTypeError)):
        response.status = exc.status
    if isinstance(exc, TusVersionError):
        response.headers.append(("tus-version", TUS_VERSION))
    return response


def _tus(handler: Handler) -> Handler:
    """Every tus answer, errors included, carries Tus-Resumable and (cross-origin) the exposed headers."""

    async def wrapped(req: Request, ctx: AppContext, **params: str) -> Response:
        try:
            response = await handler(req, ctx, **params)
        except EdgeError as exc:
            response = _tus_error(exc)
        response.headers.append(("tus-resumable", TUS_VERSION))
        if req.headers.get("origin"):
            response.headers.append(("access-control-expose-headers", ", ".join(EXPOSE_HEADERS)))
        return response

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _expires(up: Upload) -> tuple[str, str]:
    return ("upload-expires", formatdate(up.expires_s, usegmt=True))


def _record_headers(up: Upload) -> list[tuple[str, str]]:
    """For a complete upload: the record it became (empty before)."""
    if up.state != State.COMPLETE:
        return []
    d = up.dest
    return [("x-reduct-time", str(d.ts_us)), ("x-reduct-entry", d.entry), ("x-reduct-bucket", d.bucket)]


def _location(req: Request, ctx: AppContext, upload_id: str) -> str:
    return f"{public_base_url(req, ctx)}api/v1/uploads/{upload_id}"


def _upload_for(req: Request, ctx: AppContext, upload_id: str) -> tuple[UploadService, Upload]:
    """401, then 404, then 403: the bucket to check is the one stored with the upload."""
    check_tus_resumable(req.headers.get("tus-resumable"))
    link = upload_link_secret(req)
    if link is not None:                        # an upload-link page: only its own uploads (else 404)
        svc = _service(ctx)
        check_link_access(req, ctx, link, upload_id)
        return svc, svc.get(upload_id)
    token = authorize(req, ctx, None)
    svc = _service(ctx)
    up = svc.get(upload_id)
    Write(up.dest.bucket).check(token)
    return svc, up


# OPTIONS /uploads[/{upload_id}]  (protocol discovery; CORS pre-flights never reach us)
@_tus
async def discover(req: Request, ctx: AppContext, upload_id: str | None = None) -> Response:
    headers = [("tus-version", TUS_VERSION), ("tus-extension", ",".join(TUS_EXTENSIONS)),
               ("tus-checksum-algorithm", ",".join(CHECKSUM_ALGORITHMS))]
    headers.append(("tus-max-size", str(ctx.uploads.limits.max_bytes)))
    return Response(204, headers)


# POST /uploads  (creation, creation-with-upload)
@_tus
async def create(req: Request, ctx: AppContext) -> Response:
    check_tus_resumable(req.headers.get("tus-resumable"))
    link = upload_link_secret(req)              # an upload link replaces the token (edge.http.upload_links)
    token = authorize(req, ctx, None) if link is None else None
    svc = _service(ctx)
    length = parse_length(req.headers.get("upload-length"), req.headers.get("upload-defer-length"))
    raw = req.headers.get("upload-metadata") or ""
    metadata = parse_metadata(raw)
    dest = destination(metadata, time.time_ns() // 1000, DEFAULT_CONTENT_TYPE)
    if link is None:
        Write(dest.bucket).check(token)
    with_body = (req.headers.get("content-type") or "").split(";")[0].strip().lower() == OFFSET_CONTENT_TYPE \
        and req.body.length != 0
    checksum = parse_checksum(req.headers.get("upload-checksum")) if with_body else None
    if link is None:
        up = await svc.create(dest, length, raw)
    else:
        up = await create_with_link(req, ctx, link, metadata, length, lambda: svc.create(dest, length, raw))
    location = ("location", _location(req, ctx, up.id))
    if with_body:
        try:
            up = await svc.append(up.id, 0, req.body, checksum)
        except EdgeError as exc:
            # The upload exists: tell the client where, so it can resume instead of starting over.
            response = _tus_error(exc)
            response.headers += [location, ("upload-offset", str(up.offset)), _expires(up)]
            return response
    return Response(201, [location, ("upload-offset", str(up.offset)), _expires(up)] + _record_headers(up))


# HEAD /uploads/{upload_id}
@_tus
async def status(req: Request, ctx: AppContext, upload_id: str) -> Response:
    _, up = _upload_for(req, ctx, upload_id)
    headers = [("upload-offset", str(up.offset)), ("upload-length", str(up.length)),
               ("cache-control", "no-store"), _expires(up)]
    if up.metadata:
        headers.append(("upload-metadata", up.metadata))
    return Response(200, headers + _record_headers(up))


# PATCH /uploads/{upload_id}
@_tus
async def append(req: Request, ctx: AppContext, upload_id: str) -> Response:
    svc, up = _upload_for(req, ctx, upload_id)
    check_content_type(req.headers.get("content-type"))
    offset = parse_offset(req.headers.get("upload-offset"))
    checksum = parse_checksum(req.headers.get("upload-checksum"))
    up = await svc.append(upload_id, offset, req.body, checksum)
    return Response(204, [("upload-offset", str(up.offset)), _expires(up)] + _record_headers(up))


# DELETE /uploads/{upload_id}  (termination)
@_tus
async def terminate(req: Request, ctx: AppContext, upload_id: str) -> Response:
    svc, _ = _upload_for(req, ctx, upload_id)
    await svc.terminate(upload_id)
    return Response(204, [])


# POST /uploads/{upload_id} with X-HTTP-Method-Override (tus: for proxies and browsers without PATCH)
async def method_override(req: Request, ctx: AppContext, upload_id: str) -> Response:
    method = (req.headers.get("x-http-method-override") or "").strip().upper()
    handler = {"PATCH": append, "DELETE": terminate, "HEAD": status}.get(method)
    if handler is None:
        raise MethodNotAllowedError("Method not allowed")
    return await handler(req, ctx, upload_id=upload_id)


ROUTES = [
    Route("OPTIONS", "uploads", discover),
    Route("POST", "uploads", create),
    Route("OPTIONS", "uploads/{upload_id}", discover),
    Route("HEAD", "uploads/{upload_id}", status),
    Route("PATCH", "uploads/{upload_id}", append),
    Route("DELETE", "uploads/{upload_id}", terminate),
    Route("POST", "uploads/{upload_id}", method_override),
]
