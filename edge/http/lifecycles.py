"""Lifecycles resource (spec §14): listing works so SDKs can start; creation is not built yet.

Owns: /lifecycles routes until the lifecycle room replaces this module.
"""

from __future__ import annotations

from ..auth.policy import FullAccess
from ..errors import BadRequestError, NotFoundError
from .context import AppContext, authorize
from .request import json_response
from .routing import Route
from .types import Request, Response


async def list_lifecycles(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response({"lifecycles": []})


async def get_lifecycle(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    raise NotFoundError(f"Lifecycle '{name}' does not exist")


async def not_built(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    raise BadRequestError("Lifecycles are not supported by this server yet")


ROUTES = [
    Route("GET", "lifecycles", list_lifecycles),
    Route("GET", "lifecycles/{name}", get_lifecycle),
    Route("POST", "lifecycles/{name}", not_built),
    Route("PUT", "lifecycles/{name}", not_built),
    Route("DELETE", "lifecycles/{name}", get_lifecycle),
    Route("PATCH", "lifecycles/{name}/mode", get_lifecycle),
]
