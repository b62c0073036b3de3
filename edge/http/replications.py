"""Replications resource (spec §13): listing works so SDKs can start; creation is not built yet.

Owns: /replications routes until the replication room replaces this module.
"""

from __future__ import annotations

from ..auth.policy import FullAccess
from ..errors import BadRequestError, NotFoundError
from .context import AppContext, authorize
from .request import json_response
from .routing import Route
from .types import Request, Response


async def list_replications(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response({"replications": []})


async def get_replication(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    raise NotFoundError(f"Replication '{name}' does not exist")


async def not_built(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    raise BadRequestError("Replications are not supported by this server yet")


ROUTES = [
    Route("GET", "replications", list_replications),
    Route("GET", "replications/{name}", get_replication),
    Route("POST", "replications/{name}", not_built),
    Route("PUT", "replications/{name}", not_built),
    Route("DELETE", "replications/{name}", get_replication),
    Route("PATCH", "replications/{name}/mode", get_replication),
]
