"""The async facade over the synchronous store: locking, streaming bodies in, durability out.

Owns: the per-entry writer locks, pumping an async body into a ``RecordWriter``, waiting for
group commit before a write is acknowledged, and the write hooks later rooms subscribe to
(replication logs, continuous-query wake-ups, metrics).
Must not: know HTTP (a body is anything with ``async receive_some(max_bytes) -> bytes``), call
fsync itself (``commit.Flusher`` does), or let a partial record become visible.

Why per-entry locks: a record's bytes are appended to its entry's active block as they arrive,
so two writers of one entry must not interleave; writers of different entries never wait for
each other. The lock is released before waiting for the fsync, so the next writer's append
overlaps our sync and both share the next group commit.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Callable, Mapping, Protocol

import trio

from .. import blocking
from . import attachments
from ..errors import BadRequestError
from .commit import Flusher

if TYPE_CHECKING:
    from ..model import BucketSettings
    from ..store import Bucket, Durability, Engine, Entry, RecordWriter

CHUNK_BYTES = 1 << 20


class ByteSource(Protocol):
    async def receive_some(self, max_bytes: int = ...) -> bytes: ...


class RecordBody(ByteSource, Protocol):
    """A record's bytes for ``write_record``: ``length`` is what the transport carries (the
    request's Content-Length), None when unknown (chunked, decoded, pieces): then the body is
    read once more after the record to refuse extra bytes."""

    @property
    def length(self) -> int | None: ...


# What a write hook sees of each record: (size, content type, labels).
WrittenMeta = tuple[int, str, Mapping[str, str]]
# (bucket, entry, ts, meta) -> a Durability to join the write's group commit, or None.
WriteHook = Callable[[str, str, int, WrittenMeta], "Durability | None"]
# (bucket, entry, ts, label update) -> a Durability, or None.
UpdateHook = Callable[[str, str, int, Mapping[str, str]], "Durability | None"]
# (ts, size, content type, labels) of a flushed record.
Written = tuple[int, int, str, Mapping[str, str]]


class StorageService:
    def __init__(self, engine: Engine, flusher: Flusher):
        self.engine = engine
        self.flusher = flusher
        self._locks: dict[tuple[str, str], trio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}
        # Called synchronously after a record is flushed and before it is acknowledged.
        self.write_hooks: list[WriteHook] = []
        # Called after labels changed: (bucket, entry, ts, update).
        self.update_hooks: list[UpdateHook] = []
        # Woken after every flush, so continuous queries see new records at once.
        self.new_data = trio.Event()
        # Hooks may return a Durability (e.g. the replication log's fd); it joins the write's own
        # group commit, so the record and its logged event are synced by the same fdatasync pass.
        self.merges_hook_durability = True
        self.records_written = 0
        self.bytes_written = 0
        self._creating_entries = trio.Lock()   # one entry's files at a time (shared parents, markers)

    @asynccontextmanager
    async def entry_lock(self, bucket: str, entry: str) -> AsyncIterator[None]:
        key = (bucket, entry)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = trio.Lock()
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:  # keep the table as small as the set of active writers
                del self._lock_users[key]
                del self._locks[key]

    async def open_entry(self, bucket: Bucket, name: str) -> Entry:
        """``bucket.get_or_create_entry(name)``, a new entry's folders and marker made (and
        fsynced) in a worker thread first: a new entry costs three fsyncs, never on the loop."""
        if name not in bucket.entries:
            async with self._creating_entries:
                step = bucket.entry_files_step(name)
                if step is not None:
                    await blocking.run_disk(step)
        return bucket.get_or_create_entry(name)

    async def create_bucket(self, name: str, settings: BucketSettings, *, system: bool = False) -> Bucket:
        """``engine.create_bucket`` (``create_system_bucket`` with ``system``) with the folder and
        settings file written (and fsynced) in a worker thread."""
        bucket, write_files = self.engine.reserve_bucket(name, settings, system=system)
        try:
            await blocking.run_disk(write_files)
        except BaseException:
            self.engine.removed(name)
            raise
        return self.engine.add_bucket(bucket)

    def notify_new_data(self) -> None:
        self.new_data.set()
        self.new_data = trio.Event()

    async def pump(self, writer: RecordWriter, body: RecordBody, length: int) -> None:
        """Move exactly ``length`` bytes of ``body`` into ``writer``."""
        remaining = length
        while remaining > 0:
            chunk = await body.receive_some(min(remaining, CHUNK_BYTES))
            if not chunk:
                raise BadRequestError("Content is shorter than expected: no more data to read")
            if len(chunk) > remaining:
                raise BadRequestError("Content is bigger than in content-length")
            writer.write(chunk)
            remaining -= len(chunk)
        if body.length != length:
            # The transport carries more than the record length (chunked, or Content-Length larger
            # than x-reduct-content-length): storing a prefix and answering 200 would acknowledge
            # bytes the client never meant as the record.
            if await body.receive_some(1):
                raise BadRequestError("Content is bigger than in content-length")
        writer.finish()

    async def write_record(self, bucket_name: str, entry_name: str, ts_us: int, length: int,
                           content_type: str, labels: dict[str, str], body: RecordBody) -> None:
        """Write one record from a streamed body; returns once it is durable. The ``$meta`` rules
        (``attachments.before_write``) apply, as in batches."""
        bucket = self.engine.get_bucket(bucket_name)
        async with self.entry_lock(bucket_name, entry_name):
            entry = await self.open_entry(bucket, entry_name)
            attachments.before_write(entry, labels)
            writer = entry.begin_write(ts_us, length, content_type, labels)
            try:
                await self.pump(writer, body, length)
            except BaseException:
                writer.abort()
                raise
            durability = entry.flush()
            extra = self._after_write(bucket_name, entry_name, [(ts_us, length, content_type, labels)])
            if extra is not None:
                durability.merge(extra)
        await self.flusher.wait_durable(durability)

    @staticmethod
    def _merge(extra: Durability | None, d: Durability | None) -> Durability | None:
        if d is None:
            return extra
        if extra is None:
            return d
        extra.merge(d)
        return extra

    def _after_write(self, bucket: str, entry: str, records: list[Written]) -> Durability | None:
        extra: Durability | None = None
        for ts_us, size, content_type, labels in records:
            self.records_written += 1
            self.bytes_written += size
            for hook in self.write_hooks:
                extra = self._merge(extra, hook(bucket, entry, ts_us, (size, content_type, labels)))
        self.notify_new_data()
        return extra

    def after_write(self, bucket: str, entry: str, records: list[Written]) -> Durability | None:
        """For batch writers: report flushed records before acknowledging them; returns a
        Durability the caller must merge into its own (or None)."""
        if records:
            return self._after_write(bucket, entry, records)
        return None

    def after_update(self, bucket: str, entry: str, ts_us: int, update: Mapping[str, str]) -> Durability | None:
        extra: Durability | None = None
        for hook in self.update_hooks:
            extra = self._merge(extra, hook(bucket, entry, ts_us, update))
        return extra

    async def update_labels(self, bucket_name: str, entry_name: str, ts_us: int, update: dict[str, str]) -> None:
        entry = self.engine.get_bucket(bucket_name).get_entry(entry_name)
        async with self.entry_lock(bucket_name, entry_name):
            entry.update_labels(ts_us, update)
            durability = entry.flush()
        extra = self.after_update(bucket_name, entry_name, ts_us, update)
        if extra is not None:
            durability.merge(extra)
        await self.flusher.wait_durable(durability)

    async def remove_record(self, bucket_name: str, entry_name: str, ts_us: int) -> None:
        entry = self.engine.get_bucket(bucket_name).get_entry(entry_name)
        async with self.entry_lock(bucket_name, entry_name):
            entry.remove_record(ts_us)
            durability = entry.flush()
        await self.flusher.wait_durable(durability)
