"""Short links: ``GET|HEAD <base>s/{id}`` answers 302 to the link's page ``<base>link/{id}``.

Owns: the ROOT route ``s/{link_id}`` (mounted through ``ROOT_MODULES``), ``short_url(ctx, rec)``
(the ``<public url>s/<id>`` shown in create responses, link lists and mails) and
``full_url(ctx, rec, params)`` (the native download URL of a native link).
Must not: serve data or check passwords (the target does, so password, limits, authentication
and revocation apply there exactly as for every link URL), log URLs, or tell an unknown id from
a dead one.

Uniform answer: every well-formed id (16..64 of ``[A-Za-z0-9_-]``) is redirected, whether a link
has it or not, to ``<base>link/<id>``, and ``<base>`` does not depend on the link (the public URL,
or the Host the client used); what the target answers is uniform too (``liquidfiles/download``).
Malformed ids, which no link can have, get ``404 Link not found or has expired``. Every link
of the registry, whichever API made it, has a short URL.
"""

from __future__ import annotations

import re
import urllib.parse

from ..links import LinkRecord
from ..links.rules import link_not_found
from .context import AppContext, public_base_url
from .routing import Route
from ..server.types import Request, Response

URL_PARAMS = ("ct", "s", "i", "n")
HEADERS = [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-robots-tag", "noindex")]
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _base(ctx: AppContext, params: dict[str, str] | None) -> str:
    base = (params or {}).get("base_url") or ctx.config.public_base_url
    return base if base.endswith("/") else base + "/"


def native_params(ctx: AppContext, rec: LinkRecord) -> dict[str, str] | None:
    """The sealed URL parameters of a native link (``ct``, ``s``, ``i``, ``n``, ``base_url``)."""
    params = ctx.links.reveal(rec.id)
    if not isinstance(params, dict) or not all(isinstance(params.get(k), str) for k in URL_PARAMS):
        return None
    return {k: v for k, v in params.items() if isinstance(v, str)}


def full_url(ctx: AppContext, rec: LinkRecord, params: dict[str, str]) -> str:
    """The native link URL exactly as ``POST links`` returned it."""
    query = urllib.parse.urlencode({k: params[k] for k in URL_PARAMS}, quote_via=urllib.parse.quote)
    return f"{_base(ctx, params)}api/v1/links/{urllib.parse.quote(rec.file_name, safe='/')}?{query}"


def short_url(ctx: AppContext, rec: LinkRecord) -> str:
    """``<public url>s/<id>`` (under a native link's own ``base_url`` when it has one)."""
    params = native_params(ctx, rec) if rec.origin == "native" else None
    return f"{_base(ctx, params)}s/{rec.id}"


# GET|HEAD s/{link_id}
async def follow(req: Request, ctx: AppContext, link_id: str) -> Response:
    if not _ID.fullmatch(link_id):
        raise link_not_found()
    return Response(302, [("location", f"{public_base_url(req, ctx)}link/{link_id}"), *HEADERS])


ROUTES = [
    Route("GET", "s/{link_id}", follow),
]
