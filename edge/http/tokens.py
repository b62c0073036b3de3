"""Token resource: /tokens, /tokens/{name}, /tokens/{name}/rotate (spec §4; auth-disabled §2.1).

Owns: these routes and their wire shapes (the list wrapper; a token's ten keys come from
``edge.auth.tokens.token_to_wire``, the create/rotate answer from ``secret_to_wire``).
Must not: decide anything about tokens: order of checks, error texts, hashing, persistence and
the auth-disabled answers all live in ``edge.auth.repository.TokenRepository``; this module only
authorises (FullAccess, before anything else: §2.3), reads the body and serialises.

Every route is FullAccess. With authentication disabled ``authorize`` hands back the synthetic
full-access token, and the repository answers ``{"tokens": []}`` / 400 / 200 as §2.1 says.

The repository writes its file synchronously on the Trio thread (tmp + fsync + rename, a few
ms). That is deliberate: it is not thread-safe, token changes are rare admin calls, and running
them one at a time on the event loop is what serialises concurrent creates and rotates.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..auth.policy import FullAccess
from ..auth.tokens import secret_to_wire, token_to_wire
from .context import AppContext, authorize
from .request import MAX_JSON_BODY_BYTES, empty_response, json_response
from .routing import Route
from ..server.types import Request, Response


def _now() -> datetime:
    return datetime.now(timezone.utc)


# GET /tokens
async def list_tokens(req: Request, ctx: AppContext) -> Response:
    authorize(req, ctx, FullAccess())
    now = _now()
    return json_response({"tokens": [token_to_wire(t, now) for t in ctx.tokens.list()]})


# GET /tokens/{name}
async def get_token(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    return json_response(token_to_wire(ctx.tokens.get(name), _now()))


# POST /tokens/{name}   (and POST /tokens/ : the empty name gets its own 422, §4.3)
async def create_token(req: Request, ctx: AppContext, name: str = "") -> Response:
    authorize(req, ctx, FullAccess())
    # Raw bytes, not read_json: a bad token body is "422 Invalid body", not "Invalid JSON: ...",
    # and the repository owns the order "body shape -> empty name -> exists -> ...".
    raw = await req.body.read_all(MAX_JSON_BODY_BYTES)
    value, created_at = ctx.tokens.create(name, raw, _now())
    return json_response(secret_to_wire(value, created_at))


# DELETE /tokens/{name}
async def remove_token(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    ctx.tokens.remove(name)
    return empty_response()


# POST /tokens/{name}/rotate
async def rotate_token(req: Request, ctx: AppContext, name: str) -> Response:
    authorize(req, ctx, FullAccess())
    value, created_at = ctx.tokens.rotate(name, _now())
    return json_response(secret_to_wire(value, created_at))


ROUTES = [
    Route("GET", "tokens", list_tokens),
    Route("POST", "tokens/", create_token),
    Route("POST", "tokens/{name}/rotate", rotate_token),
    Route("GET", "tokens/{name}", get_token),
    Route("POST", "tokens/{name}", create_token),
    Route("DELETE", "tokens/{name}", remove_token),
]
