"""Short links: ``GET|HEAD <base>s/{id}`` answers 302 to the link's full URL.

Owns: the ROOT route ``s/{link_id}`` (mounted through ``ROOT_MODULES``), ``short_url(ctx, rec)``
(the ``<public url>/s/<id>`` shown in create responses, link lists and mails) and
``full_url(ctx, rec, params)``.
Must not: serve data or check passwords (the target does, so password, limits and revocation
apply there exactly as for the long URL), log URLs (``ct`` is a bearer secret), or tell an
unknown id from a dead one.

Uniform answer: unknown, malformed, expired, revoked and used-up ids, and links whose URL
parameters cannot be recovered (created before they were sealed, or under another server key),
all get ``404 Link not found or has expired``. Resolving is a dict lookup plus one AES-SIV
unseal (HKDF, microseconds): no slow hashing for anonymous callers. The id is 128 random bits,
so guessing ids is hopeless.

The full URL's parameters come from ``LinkRegistry.reveal``: the link handler seals
``{"ct", "s", "i", "n", "base_url"}`` under the server key when it creates a link.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from ..errors import NotFoundError
from ..links.rules import link_not_found
from .context import AppContext
from .routing import Route
from .types import Request, Response

URL_PARAMS = ("ct", "s", "i", "n")
HEADERS = [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-robots-tag", "noindex")]


def _base(ctx: AppContext, params: dict | None) -> str:
    base = (params or {}).get("base_url") or ctx.config.public_base_url
    return base if base.endswith("/") else base + "/"


def _params(ctx: AppContext, rec: Any) -> dict | None:
    try:
        params = ctx.links.reveal(rec.id)
    except NotFoundError:
        return None
    if not isinstance(params, dict) or not all(isinstance(params.get(k), str) for k in URL_PARAMS):
        return None
    return params


def full_url(ctx: AppContext, rec: Any, params: dict) -> str:
    """The link URL exactly as ``POST links`` returned it."""
    query = urllib.parse.urlencode({k: params[k] for k in URL_PARAMS}, quote_via=urllib.parse.quote)
    return f"{_base(ctx, params)}api/v1/links/{urllib.parse.quote(rec.file_name, safe='/')}?{query}"


def short_url(ctx: AppContext, rec: Any) -> str | None:
    """``<public url>s/<id>`` (or under the link's own ``base_url``); None if it could not redirect."""
    params = _params(ctx, rec)
    if params is None:
        return None
    return f"{_base(ctx, params)}s/{rec.id}"


# GET|HEAD s/{link_id}
async def follow(req: Request, ctx: AppContext, link_id: str) -> Response:
    if ctx.links is None:
        raise link_not_found()
    try:
        rec = ctx.links.get(link_id)
    except NotFoundError:
        raise link_not_found() from None
    if rec.state(time.time()) != "active":
        raise link_not_found()
    params = _params(ctx, rec)
    if params is None:
        raise link_not_found()
    return Response(302, [("location", full_url(ctx, rec, params)), *HEADERS])


ROUTES = [
    Route("GET", "s/{link_id}", follow),
]
