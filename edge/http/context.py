"""What every handler may reach: the server's long-lived services, built once in ``main``.

Owns: the AppContext value and ``authorize()``, the single entry point for permission checks.
Must not: create services (``main.py`` does), hold per-request state.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from ..auth.policy import Policy
from ..auth.repository import TokenRepository
from ..auth.throttle import AuthThrottle
from ..auth.tokens import Token
from ..config import Config
from ..durable import Damage
from ..links import LinkRegistry
from ..server.types import Caller, Request
from ..services.attachment_uploads import AttachmentUploads
from ..services.commit import Flusher
from ..services.lifecycles import LifecycleService
from ..services.links import LinkRoom
from ..services.mail import MailService
from ..services.metrics import Recorder
from ..services.queries import QueryRegistry
from ..services.replication import ReplicationService
from ..services.storage import StorageService
from ..services.system_events import SystemEvents
from ..services.upload_links import UploadLinkService
from ..services.uploads import UploadService
from ..store import Engine


@dataclass
class AppContext:
    """Every service a handler may use, each under its own typed name (``main.serve`` fills it).

    Every room is always present except ``events``: ``None`` when ``RS_SYSTEM_EVENTS_ENABLED=false``.
    """

    config: Config
    engine: Engine
    flusher: Flusher
    storage: StorageService
    tokens: TokenRepository
    throttle: AuthThrottle
    queries: QueryRegistry
    link_room: LinkRoom               # key, registry, resolve cache (services.links)
    attachment_uploads: AttachmentUploads   # LiquidFiles attachments (services.attachment_uploads)
    uploads: UploadService            # tus (services.uploads)
    upload_links: UploadLinkService   # upload links (services.upload_links)
    mail: MailService                 # outbox and sender (services.mail); sending only with EDGE_SMTP_HOST
    replication: ReplicationService
    lifecycles: LifecycleService
    metrics: Recorder                 # request counters and rate history (services.metrics)
    events: SystemEvents | None       # $system events; None when RS_SYSTEM_EVENTS_ENABLED=false
    damaged: list[Damage] = field(default_factory=list)    # state files found damaged at start-up
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def links(self) -> LinkRegistry:
        """The share-link registry (``link_room.registry``)."""
        return self.link_room.registry

    def uptime_s(self) -> int:
        return int(time.monotonic() - self.started_monotonic)


def client_ip(req: Request) -> str:
    """The client's address: resolved by the app from the peer and trusted proxies' headers
    (``client_address.resolve_client``, ``EDGE_TRUSTED_PROXIES``), else the TCP peer."""
    if req.address:
        return req.address
    return req.client[0] if req.client else ""


_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def public_base_url(req: Request, ctx: AppContext) -> str:
    """Base of URLs handed out (links, upload locations), ending in ``/``.

    ``RS_PUBLIC_URL`` when configured; otherwise the Host the client used, so that a browser on
    the LAN gets a URL it can reach (the listen address 0.0.0.0 is not one), with ``https`` when
    TLS is on; otherwise the configured listen address.
    """
    if ctx.config.public_url:
        return ctx.config.public_base_url
    host = req.headers.get("host")
    if host and _HOST_RE.match(host):
        return f"{ctx.config.scheme}://{host}{ctx.config.api_base_path}"
    return ctx.config.public_base_url


def _token_name(authorization: str | None) -> str | None:
    """The ``<name>`` of a presented ``Bearer <name>-<32 hex>`` secret, if it has that shape."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    name, dash, tail = authorization[7:].strip().rpartition("-")
    if not dash or not name or len(tail) != 32 or len(name) > 256:
        return None
    return name


def authorize(req: Request, ctx: AppContext, policy: Policy | None) -> Token:
    """Authenticate the bearer token and check ``policy``; returns the token (401/403 raised here).

    Order (spec §2.3): the permission check runs before any existence check, so handlers call
    this first. With authentication disabled the repository hands back the synthetic
    full-access token, so every policy passes. The failed-token throttle is asked only once a
    token turned out to be unknown: a valid token is never refused because of other requests
    (``edge/auth/throttle.py``).
    """
    token = _authenticate(req, ctx, req.headers.get("authorization"))
    if policy is not None:
        policy.check(token)
    return token


def authorize_api_key(req: Request, ctx: AppContext, key: str | None, policy: Policy | None) -> Token:
    """``authorize`` for the vendor APIs, whose clients send the token as an API key
    (``X-API-KEY``, or the user name of HTTP Basic) instead of ``Authorization: Bearer``."""
    from ..errors import UnauthorizedError

    if key is None and ctx.config.auth_enabled:
        raise UnauthorizedError("No API key in request")
    token = _authenticate(req, ctx, None if key is None else "Bearer " + key)
    if policy is not None:
        policy.check(token)
    return token


def _authenticate(req: Request, ctx: AppContext, authorization: str | None) -> Token:
    from ..errors import EdgeError, UnauthorizedError
    from ..sysevents.audit import UNAUTHORIZED

    now = datetime.now(timezone.utc)
    if not ctx.config.auth_enabled:
        token = ctx.tokens.authenticate(None, "", now)
        if ctx.events is not None and ctx.events.audit_on:
            req.caller = Caller(token.name, client_ip(req) or None)
        return token
    ip = client_ip(req)
    try:
        token = ctx.tokens.authenticate(authorization, ip, now)
    except UnauthorizedError as exc:
        req.caller = Caller(UNAUTHORIZED, ip or None)   # audited as "unauthorized"
        # Only wrong secrets count: clients probing /info without a token must not lock themselves out.
        if ctx.throttle is not None and exc.message == "Invalid token":
            name = _token_name(authorization)
            ctx.throttle.check(ip, time.monotonic(), name)
            ctx.throttle.record_failure(ip, time.monotonic(), name)
        raise
    except EdgeError:
        req.caller = Caller(UNAUTHORIZED, ip or None)   # throttled (429)
        raise
    req.caller = Caller(token.name, ip or None)
    return token


class Created(Protocol):
    """What the creator rule reads of a link (share, upload or FileLink record)."""

    @property
    def id(self) -> str: ...
    @property
    def creator(self) -> str: ...


def require_creator_or_full_access(token: Token, rec: Created, what: str) -> None:
    """Changing a link (share or upload) needs its creator's token or a full-access one."""
    from ..errors import ForbiddenError

    if not (token.permissions.full_access or token.name == rec.creator):
        raise ForbiddenError(f"Token '{token.name}' can't change {what} '{rec.id}': "
                             "only its creator or a full-access token can")
