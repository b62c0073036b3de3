"""Start-up provisioning from the environment, and the auth room's one background task.

Owns:
- ``RS_BUCKET_<ID>_NAME`` / ``_QUOTA_TYPE`` / ``_QUOTA_SIZE`` / ``_MAX_BLOCK_SIZE`` /
  ``_MAX_BLOCK_RECORDS`` (spec §16.2): each named bucket is created, or its settings overwritten,
  and flagged ``is_provisioned`` (the HTTP layer then refuses to change, rename or remove it);
- the bad-token throttle limits ``EDGE_AUTH_MAX_FAILURES`` / ``EDGE_AUTH_WINDOW`` /
  ``EDGE_AUTH_BACKOFF`` (``auth_throttle``);
- ``start(ctx, nursery)``: provisions the buckets, then keeps token ``last_access`` times on disk
  (every 60 s and once at shutdown).
Must not: import ``edge.http``; parse ``RS_TOKEN_*`` (``edge.auth`` does, in ``main._open_tokens``);
reach into the store beyond ``Engine``'s public API and ``Bucket.is_provisioned``.

A bad value raises ``ConfigError`` naming the variable: a typo in a quota must stop start-up,
not silently give an unlimited bucket.

Settings missing from the environment take the server defaults (``RS_DEFAULTS_BUCKET_*``), also
for an existing bucket: the environment describes the whole provisioned bucket, so the same
variables always give the same settings whatever the API did before. Buckets that were
provisioned earlier but are no longer configured lose the flag (as tokens do, §16.2); otherwise
they could never be changed or removed again.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Mapping

import trio

from ..auth.throttle import AuthThrottle, ThrottleSettings
from ..config import parse_int, parse_size
from ..errors import ConfigError, InvalidInputError, NotFoundError
from ..model import BucketSettings, QuotaType
from ..store.bucket import check_bucket_name

if TYPE_CHECKING:
    from ..auth.repository import TokenRepository
    from ..config import Config
    from ..store import Engine

log = logging.getLogger("edge.provisioning")

ACCESS_TIMES_PERIOD_S = 60.0
SHUTDOWN_SAVE_TIMEOUT_S = 2.0

_ENV_BUCKET_RE = re.compile(r"RS_BUCKET_(.+)_(NAME|QUOTA_TYPE|QUOTA_SIZE|MAX_BLOCK_SIZE|MAX_BLOCK_RECORDS)")


# --- buckets ----------------------------------------------------------------------------------


def parse_env_buckets(env: Mapping[str, str], defaults: BucketSettings) -> dict[str, BucketSettings]:
    """``RS_BUCKET_<ID>_*`` -> {bucket name: full settings}; ``ConfigError`` naming the variable."""
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    for var, value in env.items():
        m = _ENV_BUCKET_RE.fullmatch(var)
        if m and value.strip():  # an empty variable means "not set", as everywhere in config.py
            groups.setdefault(m.group(1), {})[m.group(2)] = (var, value)
    out: dict[str, BucketSettings] = {}
    owner: dict[str, str] = {}
    for ident in sorted(groups):
        g = groups[ident]
        name_var = f"RS_BUCKET_{ident}_NAME"
        if "NAME" not in g:
            # Settings without a name are a typo in the name variable: refuse rather than ignore.
            others = ", ".join(var for var, _ in g.values())
            raise ConfigError(f"{name_var} is missing (needed by {others})")
        name = g["NAME"][1].strip()
        try:
            check_bucket_name(name)
        except InvalidInputError as exc:
            raise ConfigError(f"{name_var}: '{name}': {exc.message}") from None
        if name in owner:
            raise ConfigError(f"{name_var}: bucket '{name}' is already provisioned by {owner[name]}")
        owner[name] = name_var

        settings = defaults
        if "QUOTA_TYPE" in g:
            var, value = g["QUOTA_TYPE"]
            try:
                settings = settings.merged(quota_type=QuotaType(value.strip().upper()))
            except ValueError:
                raise ConfigError(f"{var}: '{value}' must be NONE, FIFO or HARD") from None
        if "QUOTA_SIZE" in g:
            settings = settings.merged(quota_size=parse_size(g["QUOTA_SIZE"][1], g["QUOTA_SIZE"][0]))
        if "MAX_BLOCK_SIZE" in g:
            var, value = g["MAX_BLOCK_SIZE"]
            size = parse_size(value, var)
            if size < 1:
                raise ConfigError(f"{var}: must be >= 1, got {size}")
            settings = settings.merged(max_block_size=size)
        if "MAX_BLOCK_RECORDS" in g:
            var, value = g["MAX_BLOCK_RECORDS"]
            settings = settings.merged(max_block_records=parse_int(value, var, 1))
        out[name] = settings
    return out


def provision_buckets(engine: "Engine", env: Mapping[str, str], defaults: BucketSettings) -> list[str]:
    """Apply ``RS_BUCKET_<ID>_*`` to ``engine``; returns human log lines.

    Everything is parsed before anything is written, so a bad variable changes nothing.
    Synchronous (store I/O): call it before the server accepts requests.
    """
    wanted = parse_env_buckets(env, defaults)
    lines: list[str] = []
    for name, settings in wanted.items():
        try:
            bucket = engine.get_bucket(name)
        except NotFoundError:
            bucket = engine.create_bucket(name, settings)
            bucket.is_provisioned = True
            bucket.update_settings(settings)  # persists the flag with the settings, atomically
            lines.append(f"Provisioned bucket '{name}' (created)")
            continue
        if bucket.settings != settings or not bucket.is_provisioned:
            bucket.is_provisioned = True
            bucket.update_settings(settings)
        lines.append(f"Provisioned bucket '{name}'")
    for name in engine.bucket_names():
        if name in wanted:
            continue
        bucket = engine.get_bucket(name)
        if bucket.is_provisioned:
            bucket.is_provisioned = False
            bucket.update_settings(bucket.settings)
            lines.append(f"Bucket '{name}' is no longer provisioned")
    return lines


# --- the bad-token throttle -------------------------------------------------------------------


def auth_throttle(env: Mapping[str, str]) -> AuthThrottle:
    """An ``AuthThrottle`` with the limits of ``EDGE_AUTH_*`` (``ThrottleSettings``; unset: its defaults)."""
    return ThrottleSettings.from_env(env).throttle()


# --- the room starter -------------------------------------------------------------------------


async def start(nursery: trio.Nursery, engine: Engine, config: Config, tokens: TokenRepository) -> None:
    """Provision buckets (before any request can see them), then start the access-time saver."""
    for line in provision_buckets(engine, config.env, engine.defaults):
        log.info("provisioning: %s", line)
    nursery.start_soon(save_access_times_forever, tokens)


async def save_access_times_forever(tokens: "TokenRepository", period_s: float = ACCESS_TIMES_PERIOD_S) -> None:
    """Write token ``last_access`` times every ``period_s`` and once more when cancelled.

    ``last_access`` changes on every authenticated request; writing it there would put an fsync
    on every request, so the repository keeps it in memory and we persist it here. A crash loses
    at most a minute of access times, which only makes a ``ttl`` token look idle for longer.

    The save runs on the Trio thread, not in a worker: the repository is not thread-safe and a
    request could mutate it meanwhile. Being synchronous, the final save cannot be cancelled
    anyway; the shielded, bounded scope states the intent (finish it even though we are being
    cancelled, but never hang the shutdown) and stays right should the save ever await.
    """
    try:
        while True:
            await trio.sleep(period_s)
            _save(tokens)
    finally:
        with trio.move_on_after(SHUTDOWN_SAVE_TIMEOUT_S) as scope:
            scope.shield = True
            _save(tokens)


def _save(tokens: "TokenRepository") -> None:
    try:
        tokens.save_access_times()
    except OSError as exc:
        # A full or read-only disk must not take the server down for access times; the next
        # mutation or period tries again (the in-memory times are still dirty).
        log.warning("could not save token access times: %s", exc)
