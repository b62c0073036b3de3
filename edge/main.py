"""The root nursery: every long-lived task of the server is started here and nowhere else.

Owns: the order of start-up (recovery finishes before we listen) and shutdown (stop accepting,
let in-flight requests finish within the grace deadline, cancel background tasks, drain the
flusher, close the store). The nesting of the nurseries below *is* that order.
Must not: contain request logic or parse the environment (``cli.py`` builds the Config).

    durable  (lives longest: the last acknowledged writes still get their fsync)
      flusher.run
      serving  (everything a client can reach, and the background jobs that serve them)
        the rooms, started by ``start_rooms`` in this order (each starter puts its tasks here):
          provisioning (token access times), system events writer, query reaper,
          attachment-upload reaper, tus upload reaper, mail sender, replication senders,
          lifecycles, metrics sampler
        serve_http ... then cancels `serving` once drained

Every service is built here, by name and type, into the one ``AppContext`` the handlers get.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import ssl
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

import trio

from . import __version__, sdnotify
from .auth import device_token
from .auth.repository import TokenRepository
from .auth.throttle import AuthThrottle
from .config import AuthMode, Config
from .durable import Damage, make_dirs
from .formats import checksum
from .http.app import build_app
from .http.context import AppContext
from .server.client_address import TrustedProxies
from .server.front import HttpConfig, serve_http
from .server.tls import server_context
from .server.types import Request, Response
from .services import (attachment_uploads, lifecycles, links, mail, metrics, provisioning, queries, replication,
                       system_events, upload_links, uploads)
from .services.commit import Flusher
from .services.provisioning import auth_throttle
from .services.storage import StorageService
from .store import Engine
from . import blocking
from .http import payload

log = logging.getLogger("edge")



def _open_engine(config: Config) -> Engine:
    make_dirs(config.data_path)   # a fresh data folder must survive a power cut too
    return Engine.open(config.data_path, defaults=config.default_bucket, limits=config.engine_limits)


def _open_tokens(config: Config) -> TokenRepository:
    mode = config.auth_mode
    repo = TokenRepository.open(config.data_path, auth_enabled=config.auth_enabled)
    if mode is AuthMode.DISABLED:
        ignored = [v for v, set_ in (("RS_API_TOKEN", config.api_token), ("RS_INIT_API_TOKEN", config.init_api_token)) if set_]
        log.warning("authentication is DISABLED (RS_DISABLE_AUTH=true): every client that reaches this port has "
                    "full access%s", f"; {' and '.join(ignored)} ignored" if ignored else "")
        return repo
    now = datetime.now(timezone.utc)
    env = dict(config.env)
    if mode is AuthMode.INIT:
        env["RS_API_TOKEN"] = ""  # 1.21: created once, not provisioned (spec §2.1)
        env["RS_INIT_API_TOKEN"] = config.init_api_token
    else:
        env["RS_API_TOKEN"] = config.api_token  # the flag may override the variable
        env.pop("RS_INIT_API_TOKEN", None)
    for line in repo.provision(env, now):
        log.info("tokens: %s", line)
    if mode is AuthMode.GENERATED:
        created = device_token.ensure(repo, config.data_path, now)
        path = device_token.secret_path(config.data_path)
        if created is not None:
            log.warning("authentication is on: no RS_API_TOKEN, RS_INIT_API_TOKEN or RS_DISABLE_AUTH was set, so a "
                        "full-access token '%s' unique to this device was created; its secret is in %s (readable "
                        "by this user only). Send it as 'Authorization: Bearer <secret>'.",
                        device_token.DEVICE_TOKEN_NAME, created.absolute())
        else:
            hint = f"; the generated token's secret is in {path.absolute()}" if path.exists() else ""
            log.info("authentication is on (tokens in %s)%s", repo.path, hint)
    return repo


async def start_rooms(serving: trio.Nursery, config: Config, engine: Engine, flusher: Flusher,
                      storage: StorageService, tokens: TokenRepository, throttle: AuthThrottle,
                      damaged: list[Damage], port_of: Callable[[], int]) -> AppContext:
    """Start every room in order, each putting its tasks into ``serving``; the handlers' context.

    The order matters: buckets are provisioned before anything can see them; the events room
    exists before the rooms that emit events; the link registry before mail (receipts) and the
    metrics recorder last (it samples the others). Damaged state files found by any room are
    collected in ``damaged``.
    """
    await provisioning.start(serving, engine, config, tokens)
    events = await system_events.start(serving, engine, storage, flusher, config)
    query_registry = await queries.start(serving, engine, storage, config)
    link_room = await links.start(config, damaged)
    attachments = await attachment_uploads.start(serving, config, engine, storage, damaged)
    tus = await uploads.start(serving, config, engine, storage, damaged)
    upload_link_service = await upload_links.start(config, damaged)
    mail_service = await mail.start(serving, config, link_room.registry, damaged)
    replication_service = await replication.start(serving, engine, storage, config, events, damaged, port_of)
    lifecycle_service = await lifecycles.start(serving, engine, storage, config, events, damaged)
    recorder = await metrics.start(serving, engine, storage, flusher, config)
    return AppContext(config=config, engine=engine, flusher=flusher, storage=storage, tokens=tokens,
                      throttle=throttle, queries=query_registry, link_room=link_room,
                      attachment_uploads=attachments, uploads=tus, upload_links=upload_link_service,
                      mail=mail_service, replication=replication_service, lifecycles=lifecycle_service,
                      metrics=recorder, events=events, damaged=damaged)


async def watch_signals(stopping: trio.Event) -> None:
    """SIGTERM/SIGINT start the graceful shutdown; repeats are ignored until the very end.

    The receiver stays open for the whole drain (it runs in the ``durable`` nursery): the one-file
    binary gets a SIGTERM sent to its process group twice (directly and forwarded by the
    launcher), and a second signal must not kill the process mid-drain. SIG_IGN first, so that
    closing the receiver at the end restores "ignore", not "die".
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if stopping.is_set():
                log.info("received %s again; already shutting down", name)
                continue
            log.info("received %s, shutting down", name)
            sdnotify.notify("STOPPING=1")
            stopping.set()


async def serve(config: Config, *, shutdown: trio.Event | None = None, handle_signals: bool = False,
                on_ready: Callable[[list[str]], None] | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the server until ``shutdown`` is set (or SIGTERM/SIGINT when ``handle_signals``)."""
    stopping = shutdown if shutdown is not None else trio.Event()

    # A bad certificate or key stops start-up before anything else is touched.
    ssl_context = server_context(config.cert_path, config.cert_key_path) if config.tls_enabled else None

    log.info("edge %s starting; data in %s; crc32 by %s", __version__, config.data_path, checksum.IMPLEMENTATION)
    for line in config.describe():
        log.debug("setting %s", line)
    payload.SENDFILE = config.read_sendfile
    if config.test_slow_fsync_ms:
        log.warning("EDGE_TEST_SLOW_FSYNC_MS=%s: every fsync sleeps first (a test knob, never for real data)",
                    config.test_slow_fsync_ms)
        blocking.slow_down_fsync(config.test_slow_fsync_ms)
    engine = await blocking.run_disk(_open_engine, config)
    for line in engine.recovery_report:
        log.warning("recovery: %s", line)
    try:
        flusher = Flusher(config.sync_policy)
        storage = StorageService(engine, flusher)
        tokens = _open_tokens(config)
        damaged: list[Damage] = list(engine.damaged)
        if tokens.damage is not None:
            damaged.append(tokens.damage)
            log.error("tokens: %s; only the configured tokens work until it is repaired", tokens.damage.describe())
        throttle = config.auth_throttle.throttle()
        async with trio.open_nursery() as durable:
            await durable.start(flusher.run)
            if handle_signals:
                durable.start_soon(watch_signals, stopping)  # open until the very end of the drain
            async with trio.open_nursery() as serving:
                ctx = await start_rooms(serving, config, engine, flusher, storage, tokens, throttle, damaged,
                                        port_of=lambda: config.port)   # the bound one once RS_PORT=0 is bound
                app = build_app(ctx)
                bound = await serving.start(partial(_serve_then_cancel, serve_http, app, config, ssl_context, stopping,
                                                    serving.cancel_scope))
                urls = [f"{config.scheme}://{h if ':' not in h else f'[{h}]'}:{p}" for h, p in bound]
                if config.port == 0:   # RS_PORT=0: links and self-checks name the port we got
                    ctx.config = config = dataclasses.replace(config, port=bound[0][1])
                log.info("listening on %s", ", ".join(urls))
                if config.port_file:
                    await blocking.run_disk(_write_port_file, config.port_file, bound[0][1])
                if on_ready is not None:
                    on_ready(urls)
                task_status.started(urls)
            # No client can reach us any more: make everything acknowledged durable.
            await flusher.drain()
            durable.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await blocking.run_disk(engine.close)
        log.info("stopped")


def _write_port_file(path: str, port: int) -> None:
    """EDGE_PORT_FILE: the port as one decimal line, replaced atomically (a reader never sees a
    partial file); written once listening, so its presence means the server accepts connections."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, target)


async def _serve_then_cancel(serve_http: Callable[..., Awaitable[None]],
                             app: Callable[[Request], Awaitable[Response]], config: Config,
                             ssl_context: ssl.SSLContext | None,
                             stopping: trio.Event, serving_scope: trio.CancelScope,
                             *, task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED) -> None:
    http_config = HttpConfig(graceful_timeout_s=config.graceful_timeout_s,
                             keep_alive_timeout_s=config.keep_alive_timeout_s,
                             head_timeout_s=config.head_timeout_s,
                             body_timeout_s=config.io_operation_timeout_s,
                             body_grace_s=config.body_grace_s,
                             body_min_rate=config.body_min_rate,
                             tls_handshake_timeout_s=config.tls_handshake_timeout_s,
                             max_connections=config.max_connections,
                             max_connections_per_address=config.max_connections_per_address,
                             large_head_memory=config.large_head_memory,
                             trusted_proxies=TrustedProxies.parse(",".join(config.trusted_proxies)),
                             ssl_context=ssl_context,
                             max_header_bytes=max(config.batch_max_metadata_size, 64 * 1024))
    await serve_http(app, host=config.host, port=config.port, shutdown=stopping, config=http_config,
                     task_status=task_status)
    serving_scope.cancel()  # the front has drained: background jobs of the serving scope stop now
