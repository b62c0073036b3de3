"""The application: route table, the headers every response carries, CORS, error mapping.

Owns: which resource modules are mounted and in what order, the base path, ``x-reduct-api`` and
``Server`` on every response, CORS (spec §1.7), and turning escaped errors into responses.
Must not: contain endpoint logic (that lives in one module per resource) or socket code
(``edge/server/front.py``).

Adding a resource: write ``edge/http/<resource>.py`` with a ``ROUTES`` list, import it here and
add it to ``API_ROUTES`` or ``ROOT_ROUTES`` below; order matters only where patterns overlap
(specific first).
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from .. import API_VERSION, REDUCT_VERSION
from ..errors import EdgeError, MethodNotAllowedError, NotFoundError, RateLimitedError
from ..server.client_address import TrustedProxies, resolve_client
from .context import AppContext
from .errors import error_response
from ..server.ratelimit import RateLimits
from .routing import Route, Router
from ..server.types import Request, Response
from ..services.metrics import MeteredBody
from . import (batch, buckets, entries, io, io_query, lifecycles, links, mediapocket, metrics, queries, records,
               replications, server, share, shortlinks, tokens, ui, upload_links, uploads)
from .liquidfiles import attachments as lf_attachments, download as lf_download, links as lf_links

log = logging.getLogger("edge.http")

# Routes relative to "<base>api/v1/", resource by resource.
API_ROUTES: list[Route] = [
    *server.ROUTES,
    *tokens.ROUTES,
    *buckets.ROUTES,
    *io.ROUTES,
    *io_query.ROUTES,
    *batch.ROUTES,
    *queries.ROUTES,
    *entries.ROUTES,
    *records.ROUTES,
    *links.ROUTES,
    *share.ROUTES,
    *replications.ROUTES,
    *lifecycles.ROUTES,
    *uploads.ROUTES,
    *upload_links.ROUTES,
]
# Routes relative to the base path itself (the console, metrics, short links ...). The vendor
# sharing APIs live here too (``/link``, ``/api/v2/...``); specific patterns first.
ROOT_ROUTES: list[Route] = [
    *ui.ROUTES,
    *metrics.ROUTES,
    *shortlinks.ROUTES,
    *lf_attachments.ROUTES,
    *lf_links.ROUTES,
    *lf_download.ROUTES,
    *mediapocket.ROUTES,
]

API_HEADERS = [("x-reduct-api", API_VERSION), ("server", f"ReductStore {REDUCT_VERSION}")]


def build_app(ctx: AppContext) -> Callable[[Request], Awaitable[Response]]:
    base = ctx.config.api_base_path
    api_prefix = base + "api/v1/"
    api_router = Router(API_ROUTES)
    root_router = Router(ROOT_ROUTES)
    allowed_origins = ctx.config.cors_allow_origin
    allow_any_origin = "*" in allowed_origins
    trusted = TrustedProxies.parse(",".join(ctx.config.trusted_proxies))
    limits = RateLimits(ctx.config.rate_limit_api, ctx.config.rate_limit_ingress,
                        ctx.config.rate_limit_egress)

    def cors_headers(req: Request) -> list[tuple[str, str]]:
        origin = req.headers.get("origin")
        if not origin or not allowed_origins:
            return []
        if allow_any_origin:
            return [("access-control-allow-origin", "*"), ("access-control-expose-headers", "*")]
        if origin in allowed_origins:
            return [("access-control-allow-origin", origin), ("access-control-expose-headers", "*"),
                    ("vary", "origin")]
        return []

    async def dispatch(req: Request, matched: list, matched_params: list[dict[str, str]]) -> Response:
        path = req.path
        if path.startswith(api_prefix):
            handler, params, known = api_router.match(req.method, path[len(api_prefix):], req)
        elif path.startswith(base) or path + "/" == base:
            rest = path[len(base):] if path.startswith(base) else ""
            handler, params, known = root_router.match(req.method, rest, req)
            if handler is None and not known and rest == "" and req.method in ("GET", "HEAD"):
                return Response(302, [("location", base + "ui/")])
        else:
            handler, params, known = None, {}, False
        if handler is None:
            if known:
                raise MethodNotAllowedError("Method not allowed")
            raise NotFoundError("Not found")
        if req.headers.get("content-encoding") is not None:
            from ..server.encoding import wrap_body

            req.body = wrap_body(req)  # gzip/zstd bodies of 1.21 replications (spec §13.3)
        matched.append(handler)
        matched_params.append(params)
        return await handler(req, ctx, **params)

    async def app(req: Request) -> Response:
        # Who is asking, once per request: every address check downstream uses req.address.
        headers = req.headers
        req.address = resolve_client(req.client[0] if req.client else "", headers.get_all("forwarded"),
                                     headers.get_all("x-forwarded-for"), trusted) \
            if "forwarded" in headers or "x-forwarded-for" in headers else (req.client[0] if req.client else "")
        if limits:
            return await limited_app(req)
        return await unlimited_app(req)

    async def limited_app(req: Request) -> Response:
        body = req.body
        try:
            limits.admit(req.address, body.length, time.monotonic())
        except RateLimitedError as exc:
            # As ReductStore: answered before the API layer, so without x-reduct-api / Server.
            return error_response(exc)
        response = await unlimited_app(req)
        if isinstance(response.body, (bytes, bytearray, memoryview)) and response.content_length is None:
            sent = len(response.body)
        else:
            sent = response.content_length or 0
        limits.account(req.address, body.received, 0 if req.method == "HEAD" else sent, time.monotonic())
        return response

    async def unlimited_app(req: Request) -> Response:
        if req.method == "OPTIONS" and not _is_tus(req, base):
            # Every OPTIONS is a CORS pre-flight answered here: no auth, no routing (spec §1.7).
            headers = [("access-control-allow-methods", "*"), ("access-control-allow-headers", "*"),
                       ("vary", "origin, access-control-request-method, access-control-request-headers")]
            origin_headers = cors_headers(req)
            headers += [h for h in origin_headers if h[0] == "access-control-allow-origin"]
            return Response(200, headers)
        started = time.perf_counter()
        body = req.body                 # as the front gave it: decoding wrappers come later
        matched: list = []
        matched_params: list[dict[str, str]] = []
        try:
            response = await dispatch(req, matched, matched_params)
        except EdgeError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug: logged with traceback by error_response, answered 500
            response = error_response(exc)
        response.headers.extend(API_HEADERS)
        response.headers.extend(cors_headers(req))
        seconds = time.perf_counter() - started
        finish = ctx.metrics.observe(req, response, matched[0] if matched else None, started, body)
        if finish is not None and not isinstance(response.body, bytes):
            response.body = MeteredBody(response.body, finish)   # counted when its last chunk went out
        if ctx.events is not None and matched:
            ctx.events.observe_request(req, response, matched[0], matched_params[0], seconds)
        return response

    return app


def _is_tus(req: Request, base: str) -> bool:
    """tus clients send OPTIONS for protocol discovery; that route answers itself."""
    return req.path.startswith(base + "api/v1/uploads") and req.headers.get("access-control-request-method") is None
