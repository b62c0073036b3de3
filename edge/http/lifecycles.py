"""Lifecycles resource (spec §14): list, get, create, update, mode, delete. FullAccess.

Owns: these routes and reading their JSON bodies.
Must not: validate settings or run anything (``edge.services.lifecycles`` does).
"""

from __future__ import annotations

from ..auth.policy import FullAccess
from ..services.lifecycles import LifecycleService
from .context import AppContext, authorize
from .request import empty_response, json_response, read_json, read_mode
from .routing import Route
from ..server.types import Request, Response

MODES = ("enabled", "disabled", "dry_run")


def _service(ctx: AppContext) -> LifecycleService:
    return ctx.lifecycles


async def list_lifecycles(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response({"lifecycles": _service(ctx).list_info()})


async def get_lifecycle(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response(_service(ctx).get(name).detail())


async def create_lifecycle(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    await _service(ctx).create(name, await read_json(req))
    return empty_response()


async def update_lifecycle(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    _service(ctx).check_exists(name)
    await _service(ctx).update(name, await read_json(req))
    return empty_response()


async def set_mode(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    _service(ctx).get(name)
    await _service(ctx).set_mode(name, await read_mode(req, MODES))
    return empty_response()


async def remove_lifecycle(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    await _service(ctx).remove(name)
    return empty_response()


ROUTES = [
    Route("GET", "lifecycles", list_lifecycles),
    Route("PATCH", "lifecycles/{name}/mode", set_mode),
    Route("GET", "lifecycles/{name}", get_lifecycle),
    Route("POST", "lifecycles/{name}", create_lifecycle),
    Route("PUT", "lifecycles/{name}", update_lifecycle),
    Route("DELETE", "lifecycles/{name}", remove_lifecycle),
]
