"""Batch writes, label updates and removals: one request body, many records, one fsync.

Owns: streaming one request body through the records of a batch (v1 and v2 alike: the HTTP
modules turn headers into ``WriteItem``s in body order), per-record errors, the entry locks of a
batch, and the rule "one ``Entry.flush()`` per run of an entry, one ``wait_durable`` per batch".
Must not: know HTTP (statuses come from the ``status_of`` mapper the caller passes in; the body is
anything with ``async receive_some(max_bytes) -> bytes``), parse headers (``formats.batch_v1/v2``),
call fsync (``commit.Flusher``), or let a record be acknowledged before it is durable.

How a write batch runs. Records are taken in body order. Consecutive records of one entry form a
*run*: its entry lock is taken once and held across the run, its records are begun, fed and
finished (the store buffers small ones), and when the run ends the entry is flushed (one
``os.writev``), the write hooks see the records, and the run's Durability joins the batch's. A
long run is also flushed whenever ``RUN_FLUSH_BYTES`` of it are finished (not in a ``$meta``
entry, whose in-batch upsert needs its records unflushed), so the disk writes the first megabytes
of an 8 MB batch of 100 KB records while the rest is still arriving, instead of all of it after
the last byte (the store starts their writeback). After the last run the batch waits once for
group commit, then the caller answers 200.

Errors. A record the store refuses (409 duplicate, quota, 422 entry name, the ``$meta`` rules,
a failing streamed append) becomes ``(key, status, message)`` and its bytes are skipped. Anything
else (short body, cancellation, a failing flush) is request-level: the record in progress and
the finished-but-unflushed records of the current run are aborted; earlier runs, and the parts of
the current run flushed at ``RUN_FLUSH_BYTES``, may already be flushed (as ReductStore keeps the
records of a broken batch it already wrote) but are never acknowledged.

Why not one await per record: a 1 KiB record costs ~2 µs to copy but ~20 µs to schedule. The
body is read in large chunks and sliced (memoryview) at record boundaries; only a record of at
least ``DIRECT_BYTES`` is received on its own, so its chunks reach the store as the very bytes
objects the socket returned, without a slice copy.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Iterable, Mapping, Protocol, TypeVar, cast

from ..errors import BadRequestError, EdgeError
from . import attachments

if TYPE_CHECKING:
    from ..store import Durability, Entry, RecordWriter
    from .storage import StorageService, Written

CHUNK_BYTES = 1 << 20       # one receive for many small records
DIRECT_BYTES = 64 * 1024    # records at least this big are received without slicing
RUN_FLUSH_BYTES = 1 << 20   # a run is flushed whenever this much of it is finished (see the module doc)
SHORT_BODY = "Content is shorter than expected: no more data to read"
LONG_BODY = "Content is bigger than in content-length"

K = TypeVar("K")   # how a failed record is named: opaque here (v1: its ts, v2: (entry index, ts delta))
RecordError = tuple[K, int, str]          # (error key, status, message)
StatusOf = Callable[[BaseException], int]


class BatchRecord(Protocol):
    """What the batch reads of an item (the codecs' items as they are, or ``WriteItem``)."""

    @property
    def ts_us(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


class EntryRecord(BatchRecord, Protocol):
    """An item that names its entry (batches over several entries)."""

    @property
    def entry(self) -> str: ...


I = TypeVar("I", bound=BatchRecord)


class ByteSource(Protocol):
    async def receive_some(self, max_bytes: int, /) -> bytes: ...


@dataclass(slots=True)
class WriteItem(Generic[K]):
    """One record of a write batch; ``key`` names it in the error list (v1: ts, v2: (index, delta))."""

    entry: str
    ts_us: int
    size: int
    content_type: str
    labels: dict[str, str]
    key: K


@dataclass(slots=True)
class ChangeItem(Generic[K]):
    """One record of an update (``update`` = label changes, "" removes) or remove batch."""

    entry: str
    ts_us: int
    key: K
    update: dict[str, str] | None = None


def _item_key(item: WriteItem[K]) -> K:
    return item.key


class _Feeder:
    """Moves body bytes into record writers, ``n`` at a time, across record boundaries."""

    __slots__ = ("body", "data", "view", "pos", "left")

    def __init__(self, body: ByteSource, total: int):
        self.body = body
        self.data = b""
        self.view: memoryview = memoryview(b"")
        self.pos = 0
        self.left = total  # body bytes the batch still declares (never read past them)

    async def _fill(self, need: int) -> None:
        want = need if need >= DIRECT_BYTES else CHUNK_BYTES
        if want > self.left:
            want = self.left
        data = await self.body.receive_some(want)
        if not data:
            raise BadRequestError(SHORT_BODY)
        if len(data) > self.left:  # a body source that ignores max_bytes
            raise BadRequestError(LONG_BODY)
        self.left -= len(data)
        self.data = data
        self.view = memoryview(data)
        self.pos = 0

    async def feed(self, writer: RecordWriter | None, n: int) -> EdgeError | None:
        """Give the next ``n`` body bytes to ``writer`` (None: skip them). A store error ends the
        feeding of that record (the writer aborted itself) and is returned; the bytes are still
        consumed. Body errors raise."""
        error: EdgeError | None = None
        while n:
            avail = len(self.data) - self.pos
            if not avail:
                await self._fill(n)
                avail = len(self.data)
            take = n if n < avail else avail
            if writer is not None:
                try:
                    if take == len(self.data):  # the whole received object: hand it over as is
                        writer.write(self.data)
                    else:
                        writer.write(self.view[self.pos:self.pos + take])
                except EdgeError as exc:
                    writer, error = None, exc
            self.pos += take
            n -= take
        return error

    async def expect_end(self) -> None:
        """For bodies of unknown length: anything after the declared records is an error."""
        if self.pos < len(self.data) or await self.body.receive_some(1):
            raise BadRequestError(LONG_BODY)


class _Run:
    """The records of one entry taken under one lock hold."""

    __slots__ = ("name", "entry", "error", "stack", "writers", "meta_keys", "buffered")

    def __init__(self, name: str):
        self.name = name
        self.entry: Entry | None = None
        self.error: EdgeError | None = None   # the entry cannot be created: every record fails
        self.stack = AsyncExitStack()
        self.writers: list[tuple[RecordWriter, Written]] = []
        # $meta key -> writer of this run (in-batch upsert; empty for ordinary entries)
        self.meta_keys: dict[str, RecordWriter] = {}
        self.buffered = 0   # bytes of ``writers`` (finished, not flushed yet)


class BatchWriter(Generic[I, K]):
    """One write batch. ``await run(items)`` returns the per-record errors once everything that
    was written is durable."""

    def __init__(self, storage: StorageService, bucket_name: str, body: ByteSource, total: int, *,
                 status_of: StatusOf, entry: str | None = None,
                 key_of: Callable[[I], K] = _item_key,  # type: ignore[assignment]  # (the default: WriteItem items)
                 check_end: bool = False):
        self.storage = storage
        self.entry = entry
        self.key_of = key_of
        self.bucket_name = bucket_name
        self.bucket = storage.engine.get_bucket(bucket_name)
        self.feeder = _Feeder(body, total)
        self.status_of = status_of
        self.check_end = check_end
        self.errors: list[RecordError[K]] = []
        self.durability: Durability | None = None

    def _fail(self, key: K, exc: EdgeError) -> None:
        self.errors.append((key, self.status_of(exc), exc.message))

    async def _open_run(self, name: str) -> _Run:
        run = _Run(name)
        await run.stack.enter_async_context(self.storage.entry_lock(self.bucket_name, name))
        try:
            run.entry = await self.storage.open_entry(self.bucket, name)
        except EdgeError as exc:
            run.error = exc
        return run

    def _flush_run(self, run: _Run) -> None:
        """Write the run's finished records (one writev), report them, keep what to sync."""
        if not run.writers:
            return
        assert run.entry is not None  # records were begun in it
        writers, run.writers, run.buffered = run.writers, [], 0
        durability = run.entry.flush()
        done = [rec for w, rec in writers if w.state == "published"]
        extra = self.storage.after_write(self.bucket_name, run.name, done)
        if extra is not None:
            durability.merge(extra)
        if self.durability is None:
            self.durability = durability
        else:
            self.durability.merge(durability)

    async def _close_run(self, run: _Run) -> None:
        """Flush the run's records, release the lock."""
        try:
            self._flush_run(run)
        finally:
            await run.stack.aclose()

    async def _abort_run(self, run: _Run) -> None:
        try:
            for w, _ in run.writers:
                w.abort()  # a no-op for published/aborted writers
        finally:
            await run.stack.aclose()

    def _begin(self, run: _Run, item: I) -> RecordWriter | None:
        """A RecordWriter for ``item`` or None after recording its error."""
        if run.error is not None:
            self._fail(self.key_of(item), run.error)
            return None
        entry = run.entry
        assert entry is not None  # set when the run opened without an error
        try:
            key = attachments.before_write(entry, item.labels)   # the $meta rules (None: ordinary entry)
            if key is not None:
                # Upsert inside the batch: a later record with the same key replaces an
                # earlier one the store cannot see yet (finished, not flushed).
                earlier = run.meta_keys.pop(key, None)
                if earlier is not None:
                    earlier.abort()
            writer = entry.begin_write(item.ts_us, item.size, item.content_type, item.labels)
        except EdgeError as exc:
            self._fail(self.key_of(item), exc)
            return None
        if key is not None:
            run.meta_keys[key] = writer
        return writer

    async def run(self, items: Iterable[I]) -> list[RecordError[K]]:
        """``items``: objects with ``ts_us``, ``size``, ``content_type``, ``labels`` (and ``entry``
        unless the batch was given one entry), in body order."""
        feeder = self.feeder
        fixed = self.entry
        run: _Run | None = None
        writer: RecordWriter | None = None
        try:
            for item in items:
                name = fixed if fixed is not None else cast(EntryRecord, item).entry
                if run is None or run.name != name:
                    if run is not None:
                        closing, run = run, None
                        await self._close_run(closing)
                    run = await self._open_run(name)
                writer = self._begin(run, item)
                error = await feeder.feed(writer, item.size)
                if writer is None:
                    continue
                if error is None:
                    try:
                        writer.finish()
                    except EdgeError as exc:
                        error = exc
                if error is not None:
                    self._fail(self.key_of(item), error)
                else:
                    run.writers.append((writer, (item.ts_us, item.size, item.content_type, item.labels)))
                    run.buffered += item.size
                    if run.buffered >= RUN_FLUSH_BYTES and not run.meta_keys:
                        self._flush_run(run)   # the disk starts on them while the rest arrives
                writer = None
            if self.check_end:
                await feeder.expect_end()
            if run is not None:
                closing, run = run, None
                await self._close_run(closing)
        except BaseException:
            if writer is not None:
                writer.abort()
            if run is not None:
                await self._abort_run(run)
            if self.durability is not None:
                self.durability.close()
            raise
        if self.durability is not None:
            await self.storage.flusher.wait_durable(self.durability)
        return self.errors


async def write_batch(storage: StorageService, bucket_name: str, items: Iterable[I], body: ByteSource, total: int,
                      *, status_of: StatusOf, entry: str | None = None,
                      key_of: Callable[[I], K] = _item_key,  # type: ignore[assignment]  # (the default: WriteItem items)
                      check_end: bool = False) -> list[RecordError[K]]:
    """Write ``items`` (body order) from ``body`` (``total`` bytes declared); see the module doc.

    ``entry``: every item belongs to it (v1), else each item's ``entry``. ``key_of(item)`` names
    a failed record in the returned errors (called only on failure, so building keys costs
    nothing per record); the default takes ``item.key`` (``WriteItem``).
    """
    writer: BatchWriter[I, K] = BatchWriter(storage, bucket_name, body, total, status_of=status_of, entry=entry,
                         key_of=key_of, check_end=check_end)
    return await writer.run(items)


async def change_batch(storage: StorageService, bucket_name: str, items: Iterable[ChangeItem[K]], *, remove: bool,
                       status_of: StatusOf) -> list[RecordError[K]]:
    """Update labels (``remove=False``) or remove records, run by run of an entry; a missing entry
    or record is a per-record error. One flush per run, one ``wait_durable`` for the batch."""
    bucket = storage.engine.get_bucket(bucket_name)
    errors: list[RecordError[K]] = []
    durability: Durability | None = None
    updated: list[tuple[str, int, dict[str, str]]] = []
    items = list(items)
    i, n = 0, len(items)
    try:
        while i < n:
            name = items[i].entry
            j = i
            while j < n and items[j].entry == name:
                j += 1
            async with storage.entry_lock(bucket_name, name):
                try:
                    entry = bucket.get_entry(name)
                except EdgeError as exc:
                    errors.extend((it.key, status_of(exc), exc.message) for it in items[i:j])
                    i = j
                    continue
                changed = False
                for it in items[i:j]:
                    try:
                        if remove:
                            entry.remove_record(it.ts_us)
                        else:
                            entry.update_labels(it.ts_us, it.update or {})
                            updated.append((name, it.ts_us, it.update or {}))
                        changed = True
                    except EdgeError as exc:
                        errors.append((it.key, status_of(exc), exc.message))
                if changed:
                    d = entry.flush()
                    if durability is None:
                        durability = d
                    else:
                        durability.merge(d)
            i = j
    except BaseException:
        if durability is not None:
            durability.close()
        raise
    for name, ts, update in updated:
        extra = storage.after_update(bucket_name, name, ts, update)
        if extra is not None:
            if durability is None:
                durability = extra
            else:
                durability.merge(extra)
    if durability is not None:
        await storage.flusher.wait_durable(durability)
    return errors
