"""Server resource: /alive, /ready, /info, /list, /me (spec §3).

Owns: these five routes. Must not: reach into storage beyond the Engine's public API.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .. import REDUCT_VERSION
from ..auth.tokens import token_to_wire
from ..auth.policy import Authenticated, Read
from .context import AppContext, authorize
from .request import empty_response, json_response
from .routing import Route
from ..server.types import Request, Response
from .wire.buckets import bucket_list_to_wire, settings_to_wire


# GET|HEAD /alive
async def alive(req: Request, ctx: AppContext) -> Response:
    return empty_response()


# GET|HEAD /ready
async def ready(req: Request, ctx: AppContext) -> Response:
    return empty_response()


# GET /info
async def get_info(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, Authenticated())
    engine = ctx.engine
    usage, oldest, latest, count = 0, 0, 0, 0  # O(buckets): every figure is kept up to date
    for name in engine.bucket_names():
        info = engine.get_bucket(name).info()
        count += 1
        usage += info.size
        if info.latest_record or info.oldest_record or info.size:
            if info.latest_record and (oldest == 0 or info.oldest_record < oldest):
                oldest = info.oldest_record
            latest = max(latest, info.latest_record)
    doc = {
        "version": REDUCT_VERSION,
        "instance_name": ctx.config.instance_name,
        "instance_role": ctx.config.instance_role,
        "bucket_count": count,
        "usage": usage,
        "uptime": ctx.uptime_s(),
        "oldest_record": oldest,
        "latest_record": latest,
        "defaults": {"bucket": settings_to_wire(engine.defaults)},
        "license": None,
        "disk_usage": engine.disk_usage,  # not a ReductStore field: bytes of every bucket's files
    }
    report = list(engine.recovery_report)
    report += [d.describe() for d in ctx.damaged if d not in engine.damaged]
    if report:
        doc["recovery"] = report[-100:]
    return json_response(doc)


# GET /list
async def list_buckets(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, Authenticated())
    infos = [ctx.engine.get_bucket(name).info() for name in ctx.engine.bucket_names() if Read(name).allows(token)]
    return json_response(bucket_list_to_wire(infos))


# GET /me
async def me(req: Request, ctx: AppContext) -> Response:
    token = authorize(req, ctx, Authenticated())
    return json_response(token_to_wire(token, datetime.now(timezone.utc)))


ROUTES = [
    Route("GET", "alive", alive),
    Route("GET", "ready", ready),
    Route("GET", "info", get_info),
    Route("GET", "list", list_buckets),
    Route("GET", "me", me),
]
