"""Replications resource (spec §13.1): list, get, create, update, mode, delete. FullAccess.

Owns: these routes, reading their JSON bodies (``422 Invalid JSON: ...``) and the mode body.
Must not: validate settings (``edge.replication.settings``), decide about buckets, registry or
senders (``edge.services.replication``).
"""

from __future__ import annotations

from ..auth.policy import FullAccess
from .context import AppContext, authorize
from .request import empty_response, json_response, read_json, read_mode
from .routing import Route
from ..server.types import Request, Response


def _service(ctx: AppContext):
    return ctx.replication


async def list_replications(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response({"replications": _service(ctx).list_info()})


async def get_replication(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response(_service(ctx).get(name).detail())


async def create_replication(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    doc = await read_json(req)
    await _service(ctx).create(name, doc)
    return empty_response()


async def update_replication(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    _service(ctx).check_exists(name)   # 404 before the body is judged (a damaged one is mended)
    doc = await read_json(req)
    await _service(ctx).update(name, doc)
    return empty_response()


MODES = ("enabled", "paused", "disabled")


async def set_mode(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    _service(ctx).get(name)
    await _service(ctx).set_mode(name, await read_mode(req, MODES))
    return empty_response()


async def remove_replication(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    await _service(ctx).remove(name)
    return empty_response()


ROUTES = [
    Route("GET", "replications", list_replications),
    Route("PATCH", "replications/{name}/mode", set_mode),
    Route("GET", "replications/{name}", get_replication),
    Route("POST", "replications/{name}", create_replication),
    Route("PUT", "replications/{name}", update_replication),
    Route("DELETE", "replications/{name}", remove_replication),
]
