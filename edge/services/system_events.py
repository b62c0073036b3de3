"""``$system`` events as a Trio room: the bounded queue, the one writer task, the timers.

Owns: ``SystemEvents`` (``ctx.events``): the producers' entry points, which never block, never
raise and never do I/O (``emit``, the request hook ``observe_request``, the storage write hook,
``lifecycle_run``, the log capture handler); the bounded queue and its dropped counter; the
writer that turns queued events into records of the lazily created, provisioned ``$system``
bucket through the ordinary write path (entry lock, append, ``flush``, group commit), so an
event survives ``kill -9`` exactly as any acknowledged write does; the audit window (flushed
every ``EDGE_AUDIT_FLUSH_S`` and at shutdown), the usage window (every ``EDGE_USAGE_INTERVAL_S``)
and the replication sampler.
Must not: make a request wait for an event or fail because of one; log through a logger it
captures (its own logger ``edge.system_events`` is never captured, so a failing write cannot
feed itself); write events about a replication whose source is ``$system`` (shipping the
diagnostics must not produce more diagnostics to ship).

Why one writer: events from many producers (requests, the log handler on any thread, the
lifecycle and replication tasks) are grouped per entry, appended under one entry lock and made
durable by one group commit per pass, so their cost does not grow with the request rate.
Why a bounded queue: under a flood (or while the disk is full) events are dropped and counted
(``edge_system_events_dropped`` in ``/metrics``) instead of growing memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol
from urllib.parse import unquote

import trio

from ..errors import EdgeError, NotFoundError
from ..model import QuotaType
from ..sysevents.audit import UNAUTHORIZED, AuditWindow
from ..sysevents.records import CONTENT_TYPE, LIFECYCLE, LOGS, REPLICATIONS, SYSTEM_BUCKET, SystemEvent
from ..sysevents.usage import BucketUsage, UsageWindow
from .metrics import read_counts

if TYPE_CHECKING:
    from ..model import BucketSettings
    from ..store import Bucket, Durability, Engine, Entry
    from ..config import Config
    from .commit import Flusher
    from .replication import ReplicationService
    from .storage import StorageService, WrittenMeta

log = logging.getLogger("edge.system_events")

WRITE_INTERVAL_S = 1.0          # the writer's pass; a full queue wakes it earlier
WAKE_AT = 256                   # queued events that wake the writer at once
REPLICATION_SAMPLE_S = 10.0     # replication diagnostics: one event per window with transfers, and state changes
FINAL_FLUSH_S = 3.0             # at shutdown: time to write what is left
MAX_LOG_MESSAGE = 4096
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "ERROR": logging.ERROR}


class CallerLike(Protocol):
    """``edge.server.types.Caller`` as seen from here (services do not import HTTP)."""

    @property
    def token_name(self) -> str: ...

    @property
    def client_ip(self) -> str | None: ...


class RequestLike(Protocol):
    method: str
    path: str

    @property
    def caller(self) -> CallerLike | None: ...


class ResponseLike(Protocol):
    status: int
    headers: list[tuple[str, str]]

    @property
    def body(self) -> object: ...
    @property
    def content_length(self) -> int | None: ...


def _now_us() -> int:
    return time.time_ns() // 1000


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def _source_file(pathname: str) -> str:
    """``.../site-packages/edge/http/app.py`` -> ``edge/http/app.py``."""
    i = pathname.rfind("/edge/")
    return pathname[i + 1:] if i >= 0 else pathname.rsplit("/", 1)[-1]


def _batch_entries(response: ResponseLike) -> list[str]:
    """The entries a batch-protocol-v2 read answered (``x-reduct-entries``, percent-encoded)."""
    for name, value in response.headers:
        if name.lower() == "x-reduct-entries":
            return [unquote(e.strip()) for e in value.split(",") if e.strip()]
    return []


class _LogCapture(logging.Handler):
    """The server's own log lines at or above the level, as ``logs/<instance>/messages`` events."""

    def __init__(self, events: "SystemEvents", level: int):
        super().__init__(level)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == log.name or record.name.startswith(log.name + "."):
            return
        if self.events.writing and threading.current_thread() is threading.main_thread():
            return   # logged by the store while writing events: capturing it could feed itself
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller's log call
            message = str(record.msg)
        level = _level_name(record.levelno)
        self.events.emit(SystemEvent(LOGS, "messages", "log", 200, message[:MAX_LOG_MESSAGE],
                                     int(record.created * 1_000_000),
                                     {"level": level, "target": record.name, "file": _source_file(record.pathname),
                                      "line": record.lineno}, level=level))


class SystemEvents:
    def __init__(self, engine: Engine, storage: "StorageService", flusher: "Flusher", config: "Config"):
        self.engine, self.storage, self.flusher, self.config = engine, storage, flusher, config
        self.instance = config.instance_name
        self.audit_on = config.audit_on
        self.max_queued = config.system_events_queue
        self._queue: deque[SystemEvent] = deque()
        self._lock = threading.Lock()          # the log handler may run on a worker thread
        self._wake = trio.Event()
        self._audit = AuditWindow()
        self._usage = UsageWindow()
        self._usage_started = time.monotonic()
        self._last_ts: dict[str, int] = {}
        self._replications: "ReplicationService | None" = None
        self._rep_seen: dict[str, tuple[int, int, int, float, bool]] = {}
        self._capture: _LogCapture | None = None
        self._warned_at = 0.0
        self.writing = False               # inside write_pending (on the Trio thread)
        self.queued_high = 0
        self.dropped = 0
        self.written = 0
        self.write_failures = 0

    # --- producers: never block, never raise, no I/O ---------------------------------------

    def emit(self, event: SystemEvent) -> None:
        with self._lock:
            if len(self._queue) >= self.max_queued:
                self.dropped += 1
                return
            self._queue.append(event)
            n = len(self._queue)
        if n >= WAKE_AT and threading.current_thread() is threading.main_thread():
            self._wake.set()

    def observe_request(self, req: RequestLike, response: ResponseLike, handler: object,
                        params: Mapping[str, str], seconds: float) -> None:
        """The app hook, after every routed response: audit the caller, count reads for usage."""
        status = response.status
        bucket = params.get("bucket")
        if bucket is not None and status in (200, 206) and req.method in ("GET", "HEAD"):   # reads only
            records, nbytes = read_counts(req.method, status, handler, response)
            if records:
                entry = params.get("entry")
                entries = [entry] if entry else _batch_entries(response)
                self._usage.read(bucket, entries, records, nbytes)
        caller = req.caller      # None when the handler did not authenticate (/alive, /ready, the console files)
        if caller is None or not self.audit_on:
            return
        token = UNAUTHORIZED if status == 401 else caller.token_name
        self._audit.add(token, req.method, req.path, caller.client_ip, status, seconds)

    def on_write(self, bucket: str, entry: str, ts_us: int, meta: WrittenMeta) -> None:
        """Storage write hook: (size, content type, labels) of each acknowledged record."""
        self._usage.wrote(bucket, entry, meta[0])

    def lifecycle_run(self, name: str, action: str, bucket: str, duration_s: float, processed_records: int,
                      processed_blocks: int, last_processed_ts: int | None, caught_up: bool,
                      error: str | None) -> None:
        message = error or f"{action} processed {processed_records} records in bucket '{bucket}'"
        self.emit(SystemEvent(LIFECYCLE, name, "lifecycle_run", 500 if error else 200, message, _now_us(),
                              {"policy_name": name, "action_type": action, "bucket": bucket,
                               "duration": round(duration_s, 6), "processed_records": processed_records,
                               "processed_blocks": processed_blocks, "last_processed_ts": last_processed_ts,
                               "caught_up": caught_up}))

    def watch_replications(self, service: "ReplicationService") -> None:
        self._replications = service

    # --- the windows -------------------------------------------------------------------------

    def _flush_audit(self) -> None:
        if len(self._audit):
            for event in self._audit.drain(_now_us()):
                self.emit(event)

    def _storage_snapshot(self) -> list[BucketUsage]:
        out = []
        for name in self.engine.bucket_names():
            try:
                bucket = self.engine.get_bucket(name)
                infos = bucket.entry_infos()
                size = bucket.info().size
            except NotFoundError:   # removed meanwhile
                continue
            out.append(BucketUsage(name, size, len(infos), sum(e.block_count for e in infos),
                                   sum(e.record_count for e in infos)))
        return out

    def _flush_usage(self) -> None:
        now = time.monotonic()
        duration, self._usage_started = now - self._usage_started, now
        for event in self._usage.drain(_now_us(), duration, self._storage_snapshot()):
            self.emit(event)

    def _sample_replications(self) -> None:
        service = self._replications
        if service is None:
            return
        for name, rep in list(service.replications.items()):
            if rep.settings.src_bucket == SYSTEM_BUCKET:
                continue   # its own transfers are not written: no loop
            d = rep.diagnostics
            now = (d.total_ok, d.total_errored, d.total_bytes, d.busy_s, rep.is_active)
            before = self._rep_seen.get(name, (0, 0, 0, 0.0, True))   # first seen failing is a change
            self._rep_seen[name] = now
            if now[:3] == before[:3] and now[4] == before[4]:
                continue
            ok, failed, nbytes = now[0] - before[0], now[1] - before[1], now[2] - before[2]
            status, message = (200, f"{ok} records replicated") if not failed and now[4] else d.last_error
            if now[4] != before[4]:
                message = ("destination reachable again: " if now[4] else "destination failing: ") + message
            self.emit(SystemEvent(REPLICATIONS, name, "replication", status, message, _now_us(), {
                "replication_name": name, "is_active": now[4], "pending_records": rep.log.pending,
                "written_records": ok, "failed_records": failed, "replicated_data_size": nbytes,
                "duration": round(now[3] - before[3], 6)}))
        for gone in set(self._rep_seen) - set(service.replications):
            del self._rep_seen[gone]

    # --- the writer --------------------------------------------------------------------------

    def _bucket_settings(self) -> BucketSettings:
        return self.config.default_bucket.merged(quota_type=QuotaType.FIFO,
                                                 quota_size=self.config.system_events_quota_size)

    def apply_settings(self) -> None:
        """At start: an existing ``$system`` gets the configured quota and the provisioned flag."""
        try:
            bucket = self.engine.get_bucket(SYSTEM_BUCKET)
        except NotFoundError:
            return
        settings = self._bucket_settings()
        if bucket.settings != settings or not bucket.is_provisioned:
            bucket.is_provisioned = True
            bucket.update_settings(settings)

    async def _system_bucket(self) -> Bucket:
        try:
            return self.engine.get_bucket(SYSTEM_BUCKET)
        except NotFoundError:
            log.info("creating the %s bucket (FIFO quota %d bytes)", SYSTEM_BUCKET, self.config.system_events_quota_size)
            return await self.storage.create_bucket(SYSTEM_BUCKET, self._bucket_settings(), system=True)

    def _take(self) -> list[SystemEvent]:
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
        return events

    def _next_ts(self, entry: Entry, name: str, ts_us: int) -> int:
        last = self._last_ts.get(name)
        if last is None:
            last = entry.latest_ts if entry.record_count else -1
        ts = max(ts_us, last + 1)
        self._last_ts[name] = ts
        return ts

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("system events: %s (later failures within a minute are only counted)", what)

    async def write_pending(self) -> None:
        events = self._take()
        if not events:
            return
        self.writing = True
        try:
            await self._write(events)
        finally:
            self.writing = False

    async def _write(self, events: list[SystemEvent]) -> None:
        self.queued_high = max(self.queued_high, len(events))
        try:
            bucket = await self._system_bucket()
        except EdgeError as exc:
            self.write_failures += len(events)
            self._warn(f"cannot create {SYSTEM_BUCKET}: {exc.message}")
            return
        by_entry: dict[str, list[SystemEvent]] = {}
        for event in events:
            by_entry.setdefault(event.entry(self.instance), []).append(event)
        durability = None
        for name, batch in by_entry.items():
            d = await self._write_entry(bucket, name, batch)
            if d is not None:
                if durability is None:
                    durability = d
                else:
                    durability.merge(d)
            await trio.sleep(0)
        if durability is not None:
            try:
                await self.flusher.wait_durable(durability)
            except EdgeError as exc:
                self._warn(f"fsync failed: {exc.message}")

    async def _write_entry(self, bucket: Bucket, name: str, batch: Iterable[SystemEvent]) -> Durability | None:
        async with self.storage.entry_lock(SYSTEM_BUCKET, name):
            try:
                entry = await self.storage.open_entry(bucket, name)
            except EdgeError as exc:
                self.write_failures += len(list(batch))
                self._warn(f"cannot open {SYSTEM_BUCKET}/{name}: {exc.message}")
                return None
            done: list[tuple[int, int, str, Mapping[str, str]]] = []
            for event in batch:
                event = replace(event, ts_us=self._next_ts(entry, name, event.ts_us))
                body, labels = event.body(self.instance), event.labels()
                try:
                    writer = entry.begin_write(event.ts_us, len(body), CONTENT_TYPE, labels)
                    try:
                        writer.write(body)
                        writer.finish()
                    except BaseException:
                        writer.abort()
                        raise
                except EdgeError as exc:   # disk full, quota: counted, never raised to a producer
                    self.write_failures += 1
                    self._warn(f"cannot write {SYSTEM_BUCKET}/{name}: {exc.message}")
                    continue
                done.append((event.ts_us, len(body), CONTENT_TYPE, labels))
            try:
                durability = entry.flush()
            except EdgeError as exc:
                self.write_failures += len(done)
                self._warn(f"cannot flush {SYSTEM_BUCKET}/{name}: {exc.message}")
                return None
            self.written += len(done)
            extra = self.storage.after_write(SYSTEM_BUCKET, name, done)   # replication of $system, usage
            if extra is not None:
                durability.merge(extra)
            return durability

    async def _every(self, seconds: float, action: Callable[[], None]) -> None:
        while True:
            await trio.sleep(seconds)
            action()
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        level = self.config.system_events_log_level
        if level != "OFF":
            self._capture = _LogCapture(self, _LEVELS[level])
            logging.getLogger("edge").addHandler(self._capture)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._every, self.config.audit_flush_s, self._flush_audit)
                nursery.start_soon(self._every, self.config.usage_interval_s, self._flush_usage)
                nursery.start_soon(self._every, REPLICATION_SAMPLE_S, self._sample_replications)
                task_status.started()
                while True:
                    with trio.move_on_after(WRITE_INTERVAL_S):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    await self.write_pending()
        finally:
            # Shutdown: what the windows hold is written too (the flusher outlives us).
            with trio.CancelScope(shield=True) as final:
                final.deadline = trio.current_time() + FINAL_FLUSH_S
                self._flush_audit()
                self._flush_usage()
                self._sample_replications()
                await self.write_pending()
            if self._capture is not None:
                logging.getLogger("edge").removeHandler(self._capture)

    def statistics(self) -> dict[str, int]:
        with self._lock:
            queued = len(self._queue)
        return {"queued": queued, "dropped": self.dropped, "written": self.written,
                "write_failures": self.write_failures}


async def start(nursery: trio.Nursery, engine: Engine, storage: StorageService, flusher: Flusher,
                config: Config) -> SystemEvents | None:
    """Room starter: the events room (None when ``RS_SYSTEM_EVENTS_ENABLED=false``) and its writer."""
    if not config.system_events_enabled:
        return None
    events = SystemEvents(engine, storage, flusher, config)
    events.apply_settings()
    storage.write_hooks.append(events.on_write)
    await nursery.start(events.run)
    return events
