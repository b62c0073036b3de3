"""The FileLink URL ``<base>link/<id>``: a download page for browsers, the file for scripts.

Owns: ``GET|HEAD link/<id>`` (a browser, ``Accept: text/html`` without ``download``, gets a page
with a Download button; anything else gets the file, with Range), ``POST link/<id>`` (the page's
form: a password and/or an API key), the ticket URL ``link/<id>?ticket=`` that the form and the
Mediapocket redirect lead to, and the uniform not-found answer of this URL.
Must not: decide who may fetch (``link_access.admit``), count or serve bytes itself
(``link_download.serve_admitted``), or put a password into a URL.

Every link of the registry answers here, whichever API made it. Uniform answer: a caller who may
not fetch the link (it is missing, dead, needs a reader's token or a password the request did not
prove) gets ``404`` with the same body: for a browser the same page, which offers a form for a
password or an API key, for a script ``{"errors": ["Link not found or has expired"]}``. Scripts
prove a password with HTTP Basic (``--user x:<password>``) or a ``password`` parameter, and a
reader's token with Basic (``--user <key>:x``), ``X-API-KEY`` or ``Authorization: Bearer``.
"""

from __future__ import annotations

import html
import time
import urllib.parse

from ...errors import InvalidInputError, NotFoundError
from ...links import LinkRecord, UNIFORM_NOT_FOUND, is_expired, is_used_up, session_live
from ...links.tickets import check as check_ticket
from ...links.wire import expiry_day, size_human
from ..context import AppContext, client_ip
from ..link_access import admit, issuer_alive, offered, ticket_url
from ..link_download import SECURITY_HEADERS, serve_admitted
from ..routing import Route
from ..shared_links import json_bytes, served_size
from ...server.types import Request, Response
from .common import answers

MAX_FORM_BYTES = 16 * 1024
PAGE_HEADERS = SECURITY_HEADERS + [
    ("content-type", "text/html; charset=utf-8"),
    ("content-security-policy",
     "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
]
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
          "input,button,a.button{font-size:1rem;padding:.5rem;margin:.25rem 0;width:100%;box-sizing:border-box}"
          "a.button{display:block;text-align:center;background:#2563eb;color:#fff;text-decoration:none;"
          "border-radius:4px}button{background:#2563eb;color:#fff;border:0;border-radius:4px}")


def _wants_html(req: Request) -> bool:
    return "text/html" in (req.headers.get("accept") or "").lower()


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>").encode()


_UNIFORM_PAGE = _page(UNIFORM_NOT_FOUND, (
    f"<h1>{html.escape(UNIFORM_NOT_FOUND)}</h1>"
    "<p>If this link is protected, enter its password, or the API key of an account that may read it.</p>"
    "<form method=\"post\" action=\"\">"
    "<label>Password<input type=\"password\" name=\"password\" autocomplete=\"current-password\"></label>"
    "<label>API key<input type=\"password\" name=\"api_key\" autocomplete=\"off\"></label>"
    "<button type=\"submit\">Open</button></form>"))
_UNIFORM_JSON = json_bytes({"errors": [UNIFORM_NOT_FOUND]})


def uniform(req: Request) -> Response:
    """The one answer for every link this request may not fetch (and for every missing one)."""
    if _wants_html(req):
        return Response(404, list(PAGE_HEADERS), b"" if req.method == "HEAD" else _UNIFORM_PAGE,
                        content_length=len(_UNIFORM_PAGE))
    headers = SECURITY_HEADERS + [("content-type", "application/json"), ("x-reduct-error", UNIFORM_NOT_FOUND)]
    return Response(404, headers, b"" if req.method == "HEAD" else _UNIFORM_JSON, content_length=len(_UNIFORM_JSON))


def _lookup(ctx: AppContext, link_id: str) -> LinkRecord | None:
    try:
        return ctx.links.get(link_id) if ctx.links is not None else None
    except NotFoundError:
        return None


def _download_page(req: Request, ctx: AppContext, rec: LinkRecord) -> Response:
    size = served_size(ctx, rec)
    href = html.escape(ticket_url(req, ctx, rec, prepaid=False))
    body = (f"<h1>{html.escape(rec.file_name)}</h1>"
            f"<p>{html.escape(size_human(size))} &middot; available until {expiry_day(rec.expire_at)} (UTC)</p>"
            f"<a class=\"button\" href=\"{href}\" download>Download</a>")
    page = _page(rec.file_name, body)
    return Response(200, list(PAGE_HEADERS), b"" if req.method == "HEAD" else page, content_length=len(page))


async def _serve(req: Request, ctx: AppContext, rec: LinkRecord, *, count: bool) -> Response:
    try:
        return await serve_admitted(req, ctx, rec, count=count)
    except NotFoundError:
        return uniform(req)            # the record went away, or the last download was just taken


async def _ticketed(req: Request, ctx: AppContext, rec: LinkRecord | None, link_id: str, text: str) -> Response:
    room = ctx.link_room
    now = time.time()
    ticket = check_ticket(room.key.material, text, link_id, now) if room is not None else None
    if ticket is None or rec is None or rec.revoked or is_expired(rec.expire_at, now) or not issuer_alive(ctx, rec):
        return uniform(req)
    if not ticket.prepaid and is_used_up(rec.downloads, rec.max_downloads) \
            and not session_live(rec.sessions.get(client_ip(req)), now):
        return uniform(req)
    return await _serve(req, ctx, rec, count=not ticket.prepaid)


# GET|HEAD link/<id>[?download=1|?ticket=...|?password=...]
@answers
async def fetch(req: Request, ctx: AppContext, link_id: str) -> Response:
    rec = _lookup(ctx, link_id)
    if "ticket" in req.query:
        return await _ticketed(req, ctx, rec, link_id, req.query["ticket"])
    admitted = await admit(req, ctx, rec, offered(req))
    if admitted is None:
        return uniform(req)
    if _wants_html(req) and "download" not in req.query:
        return _download_page(req, ctx, admitted)
    return await _serve(req, ctx, admitted, count=True)


async def _form(req: Request) -> dict[str, str]:
    raw = await req.body.read_all(MAX_FORM_BYTES)
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInputError("Invalid form: expected application/x-www-form-urlencoded UTF-8") from None
    return {k: v for k, v in pairs if k in ("password", "api_key")}


# POST link/<id>  (the page's form: password=..., api_key=...)
@answers
async def unlock(req: Request, ctx: AppContext, link_id: str) -> Response:
    form = await _form(req)
    admitted = await admit(req, ctx, _lookup(ctx, link_id), offered(req, form))
    if admitted is None:
        return uniform(req)
    # 303: the browser fetches the file with GET; the ticket carries what the form proved.
    return Response(303, [("location", ticket_url(req, ctx, admitted, prepaid=False)), *SECURITY_HEADERS])


ROUTES = [
    Route("GET", "link/{link_id}", fetch),
    Route("POST", "link/{link_id}", unlock),
]
