"""The web console: ``GET <base>ui/`` and ``GET <base>ui/{path+}`` serve ``edge/ui/`` from the package.

Owns: these ROOT routes, the file manifest (every file under ``edge/ui/`` read once, with its
content type and ETag), ``ui/features.json`` (which optional rooms this server has, so the
console can hide what is missing), and the security headers of every console answer:
a strict Content-Security-Policy (no inline script or style, nothing from other origins, no
framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.
Also owns: sending a person who opens a share link in a browser to the console's download page
(``ui/download.html#<link>``: file name, size, a password form, a Download button) instead of
starting a download straight away. Only a top-level navigation qualifies (``Accept`` names
``text/html`` and ``Sec-Fetch-Dest``, when the browser sends it, is ``document``); scripts,
SDKs, ``curl``, ``<img>`` and ``fetch`` get the file as before, and so does ``dl=1`` (the page's
own Download button). The link stays in the fragment, which never reaches a server or a log.
Must not: render anything with data into HTML (the console is static; data arrives as JSON and
is put into the page with ``textContent``), serve a path outside the manifest, or need a build
step (the files are served as they are in the package, also from the one-file executable).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import PurePosixPath

from .. import __version__
from .context import AppContext
from .routing import Route
from ..server.types import Request, Response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-src 'none'; worker-src 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
]
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json", ".map": "application/json", ".svg": "image/svg+xml",
    ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


class _File:
    __slots__ = ("data", "content_type", "etag")

    def __init__(self, data: bytes, content_type: str):
        self.data = data
        self.content_type = content_type
        self.etag = '"' + hashlib.sha256(data).hexdigest()[:24] + '"'


_MANIFEST: dict[str, _File] | None = None


def ui_root() -> resources.abc.Traversable:
    """The console's folder inside the package (a Traversable: works from a wheel or a one-file build)."""
    return resources.files("edge") / "ui"


def _walk(node: resources.abc.Traversable, prefix: PurePosixPath, out: dict[str, _File]) -> None:
    for child in node.iterdir():
        if child.name.startswith((".", "_")):
            continue
        rel = prefix / child.name
        if child.is_dir():
            _walk(child, rel, out)
            continue
        ctype = CONTENT_TYPES.get(PurePosixPath(child.name).suffix.lower())
        if ctype is not None:
            out[str(rel)] = _File(child.read_bytes(), ctype)


def manifest() -> dict[str, _File]:
    global _MANIFEST
    if _MANIFEST is None:
        out: dict[str, _File] = {}
        root = ui_root()
        if root.is_dir():
            _walk(root, PurePosixPath(""), out)
        _MANIFEST = out
    return _MANIFEST


def _headers(extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return extra + list(SECURITY_HEADERS)


def _not_found() -> Response:
    body = b"Not found\n"
    return Response(404, _headers([("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")]),
                    body)


def _serve(req: Request, f: _File) -> Response:
    common = [("etag", f.etag), ("cache-control", "no-cache")]
    if req.headers.get("if-none-match") == f.etag:
        return Response(304, _headers(common))
    if req.method == "HEAD":
        return Response(200, _headers([("content-type", f.content_type)] + common), b"",
                        content_length=len(f.data))
    return Response(200, _headers([("content-type", f.content_type)] + common), f.data)


def features(ctx: AppContext) -> dict:
    """What the console may offer; booleans and the base path only (served without a token)."""
    return {
        "version": __version__,
        "base_path": ctx.config.api_base_path,
        "auth": bool(ctx.config.auth_enabled),
        "uploads": True,
        "upload_links": True,
        "share_links": True,
        "mail": ctx.mail.enabled,
        "metrics": True,
        "metrics_open": ctx.metrics.access == "open",
        "replication": True,
        "system_events": bool(ctx.config.system_events_enabled),
    }


def wants_download_page(req: Request, params: dict[str, str]) -> bool:
    """A browser navigating to a share link (not its own Download button, not a script)."""
    if req.method != "GET" or "dl" in req.query or not req.query_items:
        return False
    dest = req.headers.get("sec-fetch-dest")
    if dest is not None and dest != "document":
        return False
    return "text/html" in (req.headers.get("accept") or "")


# GET <base>api/v1/links/{file_name+}?... from a browser's address bar -> the download page
async def download_page(req: Request, ctx: AppContext, file_name: str) -> Response:
    location = ctx.config.api_base_path + "ui/download.html#" + req.target
    return Response(303, [("location", location), ("cache-control", "no-store"), ("referrer-policy", "no-referrer")])


# GET <base>ui  -> <base>ui/
async def ui_redirect(req: Request, ctx: AppContext) -> Response:
    return Response(302, _headers([("location", ctx.config.api_base_path + "ui/")]))


# GET <base>ui/
async def ui_index(req: Request, ctx: AppContext) -> Response:
    f = manifest().get("index.html")
    return _serve(req, f) if f is not None else _not_found()


# GET <base>ui/{path+}
async def ui_file(req: Request, ctx: AppContext, path: str) -> Response:
    if path == "features.json":
        body = json.dumps(features(ctx)).encode()
        return Response(200, _headers([("content-type", "application/json"), ("cache-control", "no-store")]), body)
    if path.endswith("/"):
        path += "index.html"
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return _not_found()
    f = manifest().get(path)
    return _serve(req, f) if f is not None else _not_found()


# GET <base>favicon.ico: browsers ask for it on any page of the origin (JSON and file downloads too)
async def favicon(req: Request, ctx: AppContext) -> Response:
    f = manifest().get("favicon.svg")
    return _serve(req, f) if f is not None else _not_found()


ROUTES = [
    Route("GET", "favicon.ico", favicon),
    Route("GET", "ui", ui_redirect),
    Route("GET", "ui/", ui_index),
    Route("GET", "ui/{path+}", ui_file),
]
