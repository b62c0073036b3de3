"""Replications (spec §13): the registry, the write hooks that log events, one sender task each.

Owns: ``<data>/.edge/replications.json`` (atomic), provisioning from ``RS_REPLICATION_<ID>_*``,
the write/update hooks on ``StorageService`` (filter by ``entries`` and ``when``, append to the
replication's ``ReplicationLog`` and hand its Durability to the write being acknowledged), and
the sender tasks in the serving nursery (destination bucket creation, batch protocol v1 POST and
PATCH, compression, retries with exponential backoff, diagnostics).
Must not: know our own HTTP layer, hold more than one batch of payload in memory, or advance a
log cursor before the destination answered 200.

Durability of the log (the choice): a write hook returns the log's Durability; a StorageService
that sets ``merges_hook_durability`` merges it into the write's own, so one group commit syncs
record and event together. With an older StorageService the hook fdatasyncs the log itself
before returning (correct, slower). Either way the event is on disk before the 200.

Memory/files while catching up: the sender reads at most ``LOOKAHEAD`` small events from the log
and payloads of at most ~8 MB at a time, a round on the wire and the next one together (records
up to 1 MiB are read once and kept until sent, bigger ones streamed 1 MiB at a time) from the
store; the log keeps one writer fd and one reader fd open.

Pipelining (catch-up speed): a round sends up to ``PIPELINE`` batches at once, each on its own
connection, so the destination's group commit syncs them together and neither side waits for the
other's round trip; the log cursor still advances only over batches that were answered, in log
order. A round holds only writes whose (entry, ts) differ, or a single label-update batch (an
update must not overtake the write of its record), and stops at ``MAX_BYTES`` of payload. While
a round is on the wire the next one is read from the store and prepared (within what is left of
``MAX_BYTES``), so the source's reading overlaps the destination's writing; it is sent only once
the round before it was answered, so rounds reach the destination in log order as before.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, Mapping, Protocol
from urllib.parse import quote

import trio

from ..errors import (AlreadyExistsError, ConflictError, CorruptRecordError, EdgeError, InvalidInputError,
                      NotFoundError)
from ..formats import batch_v1
from ..model import BIG_RECORD_BYTES
from ..query.select import select_entries
from ..query.when import compile_when
from ..query.when.condition import Condition
from ..replication.client import ConnectError, HttpClient, HttpError, HttpResponse
from ..replication.diagnostics import Diagnostics
from ..replication.log import UPDATE, WRITE, Event, ReplicationLog
from ..replication.log import sweep as sweep_logs
from ..replication.settings import ReplicationSettings, parse_env_replications, parse_settings, to_record, to_wire
from .. import blocking
from .. import durable
from ..store import files

if TYPE_CHECKING:
    from ..config import Config
    from ..durable import Damage
    from ..store import Durability, Engine, Entry, RecordRef
    from .storage import WrittenMeta
    from .storage import StorageService
    from .system_events import SystemEvents

log = logging.getLogger("edge.replication")

MAX_RECORDS = 80
MAX_BYTES = 8_000_000
MAX_HEADER_BYTES = 256_000
LOOKAHEAD = 2048  # events buffered: two rounds of PIPELINE x MAX_RECORDS fit
PIPELINE = 4  # batches in flight per round, one connection each
COALESCE_BYTES = 256 * 1024
YIELD_BYTES = 256 * 1024  # payload read between two checkpoints (a record counts 4 KiB at least)
BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 10.0
CONNECT_RETRY_MAX_S = 1.0   # a destination that refuses connections is tried again this often
RETRY_STATUSES = {401, 403, 404, 408, 425, 429}


Send = Callable[[HttpClient], Awaitable[None]]  # sends one prepared batch on a connection


class _Retry(Exception):
    """The destination cannot take the batch now; keep it and try again after a backoff."""


def _version_tuple(text: str | None) -> tuple[int, int]:
    try:
        major, minor = (text or "0.0").split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


class _View:
    __slots__ = ("ts_us", "labels", "computed")

    def __init__(self, ts_us: int, labels: Mapping[str, str]):
        self.ts_us, self.labels = ts_us, labels
        self.computed: dict[str, str] = {}


class Replication:
    def __init__(self, service: "ReplicationService", name: str, settings: ReplicationSettings,
                 provisioned: bool, rlog: ReplicationLog):
        self.service, self.name, self.provisioned, self.log = service, name, provisioned, rlog
        self.diagnostics = Diagnostics()
        self.scope: trio.CancelScope | None = None
        self.failing = False
        self._last_failure = ""   # the failure last logged at info level
        self.skipped = 0          # events whose record was gone before it could be sent
        self._wake = trio.Event()
        self._dropped_seen = rlog.dropped
        self._damaged_seen = rlog.damaged_events
        self.damaged: str | None = None   # read from a damaged file: paused until set again
        self.apply(settings)

    def apply(self, settings: ReplicationSettings) -> None:
        self.settings = settings
        self._entry_ok: dict[str, bool] = {}
        self._conditions: dict[str, Condition] = {}
        self._template = compile_when(settings.when)[0] if settings.when else None
        self._buffer: deque[Event] = deque()
        self._bucket_ready = False
        self._dst_version = (0, 0)
        self.failing = False
        self.log.rewind()

    # --- the hook side ----------------------------------------------------------------------

    def matches_entry(self, entry: str) -> bool:
        ok = self._entry_ok.get(entry)
        if ok is None:
            patterns = list(self.settings.entries)
            ok = True if not patterns else bool(select_entries(patterns, [entry]))
            if len(self._entry_ok) > 10_000:
                self._entry_ok.clear()
            self._entry_ok[entry] = ok
        return ok

    def matches_record(self, entry: str, ts_us: int, labels: Mapping[str, str]) -> bool:
        if self._template is None:
            return True
        cond = self._conditions.get(entry)
        if cond is None:   # stateful operators count per entry, over the event stream
            cond = self._conditions[entry] = self._template.clone_fresh()
        return bool(cond.evaluate(_View(ts_us, labels)))

    def log_event(self, kind: int, entry: str, ts_us: int, update: Mapping[str, str] | None = None) -> Durability:
        durability = self.log.append(kind, entry, ts_us, update)
        if self.log.dropped != self._dropped_seen:
            lost = self.log.dropped - self._dropped_seen
            self._dropped_seen = self.log.dropped
            self.diagnostics.error(507, f"Transaction log is full ({self.log.limit} events): "
                                        f"dropped {lost} oldest event(s), {self.log.dropped} in total", lost)
        self._wake.set()
        return durability

    # --- info -------------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.settings.mode != "disabled" and not self.failing

    def info(self) -> dict:
        out = {"name": self.name, "mode": self.settings.mode, "is_active": self.is_active,
               "is_provisioned": self.provisioned, "pending_records": self.log.pending}
        if self.damaged is not None:
            out["damaged"] = self.damaged
        return out

    def detail(self) -> dict:
        return {"info": self.info(), "settings": to_wire(self.settings),
                "diagnostics": {"hourly": self.diagnostics.hourly()}}

    def wake(self) -> None:
        self._wake.set()

    # --- the sender -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        clients = [HttpClient(settings.dst_host, timeout_s=self.service.timeout_s,
                              verify_ssl=self.service.verify_ssl, ca_path=self.service.ca_path)
                   for _ in range(PIPELINE)]
        client = clients[0]
        backoff = BACKOFF_START_S
        with trio.CancelScope() as scope:
            self.scope = scope
            task_status.started()
            try:
                while True:
                    if self.settings.mode != "enabled" or self.log.pending == 0:
                        self.failing = False if self.log.pending == 0 else self.failing
                        await self._wake.wait()
                        self._wake = trio.Event()
                        continue
                    try:
                        if not self._bucket_ready:
                            await self._ensure_bucket(client)
                        started = time.monotonic()
                        try:
                            await self._send_round(clients)
                        finally:
                            self.diagnostics.busy_s += time.monotonic() - started
                        self.failing = False
                        backoff = BACKOFF_START_S
                    except (HttpError, _Retry, EdgeError) as exc:
                        # A destination that takes no connection is probed again within
                        # CONNECT_RETRY_MAX_S (a connect attempt costs it nothing), so a catch-up
                        # starts soon after it is back; one that answers but fails backs off.
                        wait = min(backoff, CONNECT_RETRY_MAX_S) if isinstance(exc, ConnectError) else backoff
                        text = str(exc)
                        if isinstance(exc, HttpError):
                            self.diagnostics.unreachable(text)
                        # Logged when a failure starts or changes; repeats only at debug level.
                        level = logging.DEBUG if self.failing and text == self._last_failure else logging.INFO
                        log.log(level, "replication '%s': %s; retrying in %.1f s", self.name, text, wait)
                        self.failing, self._last_failure = True, text
                        with trio.move_on_after(wait):
                            await trio.sleep_forever()
                        backoff = min(backoff * 2, BACKOFF_MAX_S)
            finally:
                with trio.CancelScope(shield=True):
                    for c in clients:
                        await c.aclose()

    def _headers(self) -> list[tuple[str, str]]:
        token = self.settings.dst_token
        return [("Authorization", f"Bearer {token}")] if token else []

    def _note_version(self, resp: HttpResponse) -> None:
        if resp.header("x-reduct-api"):
            self._dst_version = _version_tuple(resp.header("x-reduct-api"))

    async def _ensure_bucket(self, client: HttpClient) -> None:
        path = f"/api/v1/b/{quote(self.settings.dst_bucket, safe='')}"
        resp = await client.request("GET", path, self._headers())
        self._note_version(resp)
        if resp.status == 404:
            resp = await client.request("POST", path, self._headers())
            if resp.status not in (200, 409):
                self._request_error(resp, 1)
                raise _Retry(f"cannot create bucket '{self.settings.dst_bucket}': {resp.status}")
        elif resp.status != 200:
            self._request_error(resp, 1)
            raise _Retry(f"destination bucket check answered {resp.status}")
        self._bucket_ready = True

    def _request_error(self, resp: HttpResponse, n: int) -> None:
        message = resp.header("x-reduct-error") or resp.body[:200].decode("utf-8", "replace")
        self.diagnostics.error(resp.status, message, n)

    def _fill(self) -> None:
        if len(self._buffer) < LOOKAHEAD // 2:
            self._buffer.extend(self.log.read(LOOKAHEAD - len(self._buffer)))
            if self.log.damaged_events != self._damaged_seen:
                lost = self.log.damaged_events - self._damaged_seen
                self._damaged_seen = self.log.damaged_events
                line = self.log.report[-1]
                log.warning("replication '%s' transaction log: %s", self.name, line)
                self.diagnostics.error(500, f"Transaction log damaged: {line}", lost)

    def _next_run(self, start: int, seen: set[tuple[str, int]]) -> list[Event]:
        """The events from buffer position ``start`` one batch may carry: one kind, one entry, no
        (entry, ts) twice (in the batch nor in the round so far), at most MAX_RECORDS."""
        first = self._buffer[start]
        run: list[Event] = []
        for k in range(start, len(self._buffer)):
            ev = self._buffer[k]
            key = (ev.entry, ev.ts_us)
            if ev.kind != first.kind or ev.entry != first.entry or key in seen or len(run) >= MAX_RECORDS:
                break
            run.append(ev)
            seen.add(key)
        return run

    async def _prepare_round(self, start: int, slots: int, budget: int) -> list[tuple[int, int, Send | None]]:
        """The batches of one round from buffer position ``start``: (events used, payload bytes,
        its sender; None: nothing to send), at most ``slots`` of them and about ``budget`` bytes."""
        sends: list[tuple[int, int, Send | None]] = []
        seen: set[tuple[str, int]] = set()
        pos, payload = start, 0
        while len(sends) < slots and pos < len(self._buffer) and payload < budget:
            if sends and self._buffer[pos].kind != WRITE:
                break   # an update waits for the writes before it
            run = self._next_run(pos, seen)
            if not run:
                break
            if run[0].kind == WRITE:
                used, nbytes, send = await self._prepare_writes(run)
                payload += nbytes
                sends.append((used, nbytes, send))
            else:
                sends.append((len(run), 0, self._updates_sender(run)))
            pos += sends[-1][0]
            if run[0].kind != WRITE:
                break
        return sends

    async def _send_round(self, clients: list[HttpClient]) -> None:
        """Rounds of up to ``len(clients)`` batches at once (see the module header), back to back
        while there is something to send: while one round is on the wire, the next one is read
        from the store and prepared (it is sent only once the round before it was answered).
        Commits, in log order, what was answered; raises the first failure after committing the
        batches before it."""
        self._fill()
        if not self._buffer:
            self.log.commit(self.log.head)   # everything buffered was dropped meanwhile
            return
        sends = await self._prepare_round(0, len(clients), MAX_BYTES)
        while sends:
            results: list[BaseException | None] = [None] * len(sends)

            async def one(k: int, send: Send | None) -> None:
                if send is None:
                    return
                try:
                    await send(clients[k])
                except (HttpError, _Retry, EdgeError) as exc:
                    results[k] = exc

            ahead: list[tuple[int, int, Send | None]] = []
            ahead_error: EdgeError | None = None
            async with trio.open_nursery() as nursery:
                for k, (_, _, send) in enumerate(sends):
                    nursery.start_soon(one, k, send)
                # Meanwhile: the next round, within what is left of MAX_BYTES of payload in memory.
                budget = MAX_BYTES - sum(nbytes for _, nbytes, _ in sends)
                if self.settings.mode == "enabled" and budget > 0:
                    try:
                        self._fill()
                        ahead = await self._prepare_round(sum(used for used, _, _ in sends), len(clients), budget)
                    except EdgeError as exc:
                        ahead_error = exc   # after this round's commit
            for (used, _, _), error in zip(sends, results):
                if error is not None:
                    raise error
                last = None
                for _ in range(used):
                    last = self._buffer.popleft()
                if last is not None:
                    self.log.commit(last.seq + 1)
            if ahead_error is not None:
                raise ahead_error
            sends = ahead if self.settings.mode == "enabled" else []

    def _dst_path(self, entry: str) -> str:
        return (f"/api/v1/b/{quote(self.settings.dst_bucket, safe='')}/"
                f"{quote(self.settings.dst_entry(entry), safe='/$')}/batch")

    async def _prepare_writes(self, run: list[Event]) -> tuple[int, int, Send | None]:
        """Read and verify a prefix of ``run`` for one POST batch: (events consumed, payload bytes,
        the coroutine function that sends it on a client, or None if nothing is left to send)."""
        try:
            entry = self.service.engine.get_bucket(self.settings.src_bucket).get_entry(run[0].entry)
        except NotFoundError:
            self.skipped += len(run)
            return len(run), 0, None
        refs: list[tuple[RecordRef, str, bytes | None]] = []
        used, total, header_bytes, since = 0, 0, 0, 0
        for ev in run:
            if refs and (total >= MAX_BYTES or header_bytes >= MAX_HEADER_BYTES):
                break
            used += 1
            try:
                ref = entry.get(ev.ts_us)
                # Verify before the first byte leaves: a record whose payload fails its CRC is
                # reported and skipped, never sent as good and never retried forever.
                payload = b"".join(entry.read_payload(ref)) if ref.size <= BIG_RECORD_BYTES else None
                if payload is None:   # a big one is checked in a worker thread, through its own fd
                    fd, _ = entry.payload_fd(ref)
                    try:
                        await blocking.run_cpu(entry.verify_payload, fd, ref)
                    finally:
                        os.close(fd)
                since += ref.size + 4096
                if since >= YIELD_BYTES:   # a batch reads up to MAX_BYTES: let requests in between
                    since = 0
                    await trio.sleep(0)
            except NotFoundError:
                self.skipped += 1   # removed (or evicted) before we could send it
                continue
            except CorruptRecordError as exc:
                self.diagnostics.error(500, exc.message)
                continue
            value = batch_v1.format_record_header(ref.size, ref.content_type, ref.labels)
            refs.append((ref, value, payload))
            total += ref.size
            header_bytes += len(value) + 40
        if not refs:
            return used, 0, None
        refs.sort(key=lambda r: r[0].ts_us)
        path = self._dst_path(run[0].entry)

        async def send(client: HttpClient) -> None:
            headers = self._headers() + [("Content-Type", "application/octet-stream")]
            headers += [(batch_v1.time_header_name(ref.ts_us), value) for ref, value, _ in refs]
            body: AsyncIterator[bytes | memoryview] = self._payloads(entry, [(r, p) for r, _, p in refs])
            length: int | None = total
            compression = self.settings.compression
            if compression != "none" and self._dst_version >= (1, 21):
                headers.append(("Content-Encoding", compression))
                body, length = _compressed(body, compression), None
            resp = await client.request("POST", path, headers, body, length)
            self._note_version(resp)
            self._account(resp, len(refs), total)

        return used, total, send

    async def _payloads(self, entry: Entry, refs: list[tuple[RecordRef, bytes | None]]) -> AsyncIterator[bytes | memoryview]:
        # Small records are coalesced so 80 x 1 KB leave in one send, not 80.
        pending = bytearray()
        for ref, payload in refs:
            for chunk in ([payload] if payload is not None else entry.read_payload(ref)):
                if len(chunk) >= COALESCE_BYTES:
                    if pending:
                        yield bytes(pending)
                        pending.clear()
                    yield chunk
                else:
                    pending += chunk
                    if len(pending) >= COALESCE_BYTES:
                        yield bytes(pending)
                        pending.clear()
        if pending:
            yield bytes(pending)

    def _updates_sender(self, run: list[Event]) -> Send:
        headers = self._headers() + [("Content-Type", "application/octet-stream")]
        headers += [(batch_v1.time_header_name(ev.ts_us), batch_v1.format_record_header(0, "", ev.update or {}))
                    for ev in run]
        path = self._dst_path(run[0].entry)

        async def send(client: HttpClient) -> None:
            resp = await client.request("PATCH", path, headers, b"")
            self._note_version(resp)
            self._account(resp, len(run))

        return send

    def _account(self, resp: HttpResponse, n: int, nbytes: int = 0) -> None:
        if resp.status == 200:
            failed = 0
            for name, value in resp.headers:
                if name.startswith(batch_v1.ERROR_PREFIX):
                    status_text, _, message = value.partition(",")
                    if status_text.strip() == "409":
                        continue   # already there (a re-send after a crash): delivered
                    failed += 1
                    self.diagnostics.error(int(status_text) if status_text.strip().isdigit() else 0, message)
            self.diagnostics.ok(n - failed, nbytes if not failed else nbytes * (n - failed) // max(n, 1))
            return
        self._request_error(resp, n)
        error = resp.header("x-reduct-error") or ""
        if resp.status == 404 and error.startswith("Bucket"):
            self._bucket_ready = False
        if resp.status >= 500 or resp.status in RETRY_STATUSES and not error.startswith("Entry"):
            raise _Retry(f"destination answered {resp.status} {error}")
        # Every other 4xx: the destination refuses this batch for good; it is counted, not retried.


class _Compressor(Protocol):
    def compress(self, data: bytes | memoryview, /) -> bytes: ...
    def flush(self) -> bytes: ...


async def _compressed(body: AsyncIterator[bytes | memoryview], kind: str) -> AsyncIterator[bytes]:
    comp: _Compressor
    if kind == "gzip":
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    else:
        import zstandard

        comp = zstandard.ZstdCompressor(level=3).compressobj()
    async for chunk in body:
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()


class ReplicationService:
    def __init__(self, engine: Engine, storage: StorageService, config: Config, port_of: Callable[[], int] | None = None):
        env = dict(config.env)
        self.engine, self.storage, self.config = engine, storage, config
        # The port we listen on, asked when needed: with RS_PORT=0 it is known only once bound.
        self._port_of = port_of or (lambda: config.port)
        self.state_dir = config.data_path / ".edge"
        self.registry_path = self.state_dir / "replications.json"
        self.logs_dir = self.state_dir / "replications"
        room = config.replication
        self.timeout_s, self.log_size = room.timeout_s, room.log_size
        self.verify_ssl, self.ca_path = room.verify_ssl, room.ca_path
        self.env = env
        self.replications: dict[str, Replication] = {}
        # From a damaged replications.json, unreadable: name -> (reason, the old item or None).
        # Listed as paused and damaged; nothing is queued or sent for them.
        self.unreadable: dict[str, tuple[str, dict | None]] = {}
        self.damage: durable.Damage | None = None
        self.nursery: trio.Nursery | None = None
        self._writer = blocking.StateWriter(self._snapshot, self._write_file)

    @property
    def _nursery(self) -> trio.Nursery:
        """The service's nursery (set by its run); what is started here lives until shutdown."""
        if self.nursery is None:
            raise RuntimeError("the %s service is not running" % type(self).__name__)
        return self.nursery

    # --- persistence ------------------------------------------------------------------------

    def _open_log(self, name: str) -> ReplicationLog:
        return ReplicationLog.open(self.logs_dir / quote(name, safe=""), self.log_size)

    def load(self) -> list[str]:
        """Registry + provisioning. A damaged ``replications.json`` never stops start-up: it is
        set aside, and what can still be read of it is listed *paused and damaged* (readable
        settings: a paused replication that keeps queuing but sends nothing; unreadable ones:
        listed only) until someone sets them again (PUT, PATCH mode) or removes them."""
        lines = []
        reg = durable.load_list_registry(self.registry_path, "replications")
        self.damage = reg.damage
        if reg.damage is not None:
            lines.append(f"{reg.damage.describe()}: its replications are paused")
        for doc in reg.docs:
            try:
                settings = parse_settings(doc["settings"])
            except (EdgeError, KeyError, TypeError) as exc:
                reg.suspect.append((doc["name"], f"unreadable settings: {exc}", doc))
                continue
            self.replications[doc["name"]] = Replication(self, doc["name"], settings, bool(doc.get("provisioned")),
                                                         self._open_log(doc["name"]))
        for name, reason, old in reg.suspect:
            try:
                settings = parse_settings(old["settings"]).with_mode("paused")  # type: ignore[index]
            except (EdgeError, KeyError, TypeError, AttributeError):
                self.unreadable[name] = (reason, old)
                lines.append(f"replication '{name}' is damaged ({reason}); listed, not run")
                continue
            rep = Replication(self, name, settings, False, self._open_log(name))
            rep.damaged = reason
            self.replications[name] = rep
            lines.append(f"replication '{name}' is damaged ({reason}); paused until set again")
        wanted = parse_env_replications(self.env)
        for name, settings in wanted.items():
            self.unreadable.pop(name, None)
            existing = self.replications.get(name)
            if existing is None:
                self.replications[name] = Replication(self, name, settings, True, self._open_log(name))
            else:
                existing.provisioned = True
                existing.damaged = None
                existing.apply(settings)
            lines.append(f"Provisioned replication '{name}'")
        for name, rep in self.replications.items():
            if rep.provisioned and name not in wanted:
                rep.provisioned = False
                lines.append(f"Replication '{name}' is no longer provisioned")
            lines += [f"replication '{name}' transaction log: {line}" for line in rep.log.report]
        self._write_file(self._snapshot())   # start-up, before anything is served
        keep = {quote(n, safe="") for n in [*self.replications, *self.unreadable]}
        for folder in ([] if self.damage is not None else sweep_logs(self.logs_dir, keep)):
            lines.append(f"removed the transaction log {folder} of a replication that no longer exists")
        return lines

    async def _save(self) -> None:
        """Write the registry in a worker thread (edge.blocking), newest state last."""
        await self._writer.save()

    def _write_file(self, data: bytes) -> None:
        with files.translate_errors():
            durable.write_state(self.registry_path, data, mode=0o644)

    def _snapshot(self) -> bytes:
        docs = []
        for r in self.replications.values():
            doc = {"name": r.name, "provisioned": r.provisioned, "settings": to_record(r.settings)}
            docs.append(doc if r.damaged is None else durable.suspect_record(r.name, r.damaged, doc))
        docs += [durable.suspect_record(n, reason, doc) for n, (reason, doc) in self.unreadable.items()]
        return json.dumps({"replications": docs}, indent=1).encode()

    # --- hooks (synchronous, before the write is acknowledged) -----------------------------

    def _finish(self, durability: Durability | None) -> Durability | None:
        if durability is None:
            return None
        if self.storage.merges_hook_durability:
            return durability
        durability.sync()   # a storage that does not merge: make the event durable right here
        return None

    def on_write(self, bucket: str, entry: str, ts_us: int, meta: WrittenMeta) -> Durability | None:
        durability: Durability | None = None
        for rep in self.replications.values():
            s = rep.settings
            if s.src_bucket != bucket or s.mode == "disabled" or not rep.matches_entry(entry):
                continue
            if not rep.matches_record(entry, ts_us, meta[2]):
                continue
            d = rep.log_event(WRITE, entry, ts_us)
            if durability is None:
                durability = d
            else:
                durability.merge(d)
        return self._finish(durability)

    def on_update(self, bucket: str, entry: str, ts_us: int, update: Mapping[str, str]) -> Durability | None:
        durability: Durability | None = None
        for rep in self.replications.values():
            s = rep.settings
            if s.src_bucket != bucket or s.mode == "disabled" or not rep.matches_entry(entry):
                continue
            if rep._template is not None:
                try:
                    labels = self.engine.get_bucket(bucket).get_entry(entry).get(ts_us).labels
                except NotFoundError:
                    continue
                if not rep.matches_record(entry, ts_us, labels):
                    continue
            d = rep.log_event(UPDATE, entry, ts_us, dict(update))
            if durability is None:
                durability = d
            else:
                durability.merge(d)
        return self._finish(durability)

    # --- the API ----------------------------------------------------------------------------

    def get(self, name: str) -> Replication:
        rep = self.replications.get(name)
        if rep is None:
            if name in self.unreadable:
                raise ConflictError(f"Replication '{name}' was read from a damaged replications.json "
                                    f"({self.unreadable[name][0]}): its settings are lost; set them again "
                                    "(PUT) or remove it")
            raise NotFoundError(f"Replication '{name}' does not exist")
        return rep

    def check_exists(self, name: str) -> None:
        """404 unless ``name`` is a replication, healthy or damaged (PUT and DELETE mend those)."""
        if name not in self.replications and name not in self.unreadable:
            raise NotFoundError(f"Replication '{name}' does not exist")

    def _validate(self, name: str, settings: ReplicationSettings) -> None:
        try:
            self.engine.get_bucket(settings.src_bucket)
        except NotFoundError:
            raise NotFoundError(f"Source bucket '{settings.src_bucket}' for replication '{name}' does not exist") from None
        if settings.src_bucket == settings.dst_bucket and self._is_self(settings.dst_host):
            raise InvalidInputError("Source and destination buckets must be different")

    def _is_self(self, url: str) -> bool:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        local = {"localhost", "127.0.0.1", "::1", "0.0.0.0", self.config.host}
        return parts.hostname in local and (parts.port or 80) == self._port_of()

    async def create(self, name: str, doc: object) -> None:
        if name in self.replications:
            raise AlreadyExistsError(f"Replication '{name}' already exists")
        settings = parse_settings(doc)
        self._validate(name, settings)
        rep = Replication(self, name, settings, False, await blocking.run_disk(self._open_log, name))
        self.replications[name] = rep
        await self._save()
        await self._nursery.start(rep.run)

    async def update(self, name: str, doc: object) -> None:
        if name in self.unreadable:   # lost settings, set again: a new replication over its old log
            settings = parse_settings(doc)
            self._validate(name, settings)
            rep = Replication(self, name, settings, False, await blocking.run_disk(self._open_log, name))
            self.replications[name] = rep
            del self.unreadable[name]
            await self._save()
            await self._nursery.start(rep.run)
            return
        rep = self.get(name)
        if rep.provisioned:
            raise ConflictError(f"Can't update provisioned replication '{name}'")
        settings = parse_settings(doc, previous=rep.settings)
        self._validate(name, settings)
        old = rep.settings
        if rep.scope is not None:
            rep.scope.cancel()
        if settings.src_bucket != old.src_bucket:   # old events name records of another bucket
            await blocking.run_disk(rep.log.destroy)
            rep.log = await blocking.run_disk(self._open_log, name)
        rep.apply(settings)
        rep.damaged = None
        await self._save()
        await self._nursery.start(rep.run)

    async def set_mode(self, name: str, mode: str) -> None:
        rep = self.get(name)
        rep.settings = rep.settings.with_mode(mode)
        rep.damaged = None   # a human looked at it and chose
        await self._save()
        rep.wake()

    async def remove(self, name: str) -> None:
        if name in self.unreadable:
            del self.unreadable[name]
            await blocking.run_disk(lambda: self._open_log(name).destroy())
            await self._save()
            return
        rep = self.get(name)
        if rep.provisioned:
            raise ConflictError(f"Can't remove provisioned replication '{name}'")
        if rep.scope is not None:
            rep.scope.cancel()
        del self.replications[name]
        await blocking.run_disk(rep.log.destroy)
        await self._save()

    def list_info(self) -> list[dict]:
        lost = [{"name": n, "mode": "paused", "is_active": False, "is_provisioned": False, "pending_records": 0,
                 "damaged": reason} for n, (reason, _) in self.unreadable.items()]
        return [r.info() for r in self.replications.values()] + lost

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the sender tasks; close the logs when the server stops."""
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                for rep in self.replications.values():
                    await nursery.start(rep.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            for rep in self.replications.values():
                rep.log.close()


async def start(nursery: trio.Nursery, engine: Engine, storage: StorageService, config: Config,
                events: SystemEvents | None, damaged: list[Damage], port_of: Callable[[], int]) -> ReplicationService:
    """Room starter: registry + provisioning, the hooks, and the sender tasks. ``port_of``: the port
    we listen on (the bound one when RS_PORT=0), for the self-loop check."""
    service = ReplicationService(engine, storage, config, port_of=port_of)
    for line in service.load():   # small files; Trio objects are made here, on the Trio thread
        log.info("replication: %s", line)
    if service.damage is not None:
        damaged.append(service.damage)
        log.error("replication: %s", service.damage.describe())
    storage.write_hooks.append(service.on_write)
    storage.update_hooks.append(service.on_update)
    if events is not None:
        events.watch_replications(service)   # $system replication diagnostics
    await nursery.start(service.run)
    return service
