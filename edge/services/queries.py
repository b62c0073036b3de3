"""The query registry: ids, TTLs, the reaper, batch filling, continuous wake-ups, remove queries.

Owns: the two id tables (entry-level ids for ``/b/{b}/{e}?q=`` and ``/batch?q=``, bucket-level
ids for ``/io/{b}/read``; one global counter from 1, spec §9.1), the TTL of each query (refreshed
on every read, on the Trio clock), ``reap_forever()``, the batch filling rules of §9.6 (with the
``#batch_*`` / ``#record_timeout`` overrides of §10.6), continuous queries (204 while idle, woken
by ``StorageService.new_data`` the moment a flush lands) and remove queries (§9.1, §8.5).
Must not: import ``edge.http`` or build responses (it returns ``Batch`` values; the resource
modules turn them into headers and streamed bodies), read payloads, or hold more than one batch
of refs per read.

Why a reaper task and not lazy expiry only: an abandoned query pins an iterator over the blocks of
its entries (and a ``#ctx_before`` buffer); nobody may ever touch it again, so expiry must not
depend on a later request. ``get()`` still checks the deadline, so a read at ``ttl`` + epsilon is a
404 even if the reaper has not run yet (``ttl: 0`` is unusable at once).

Why finished queries stay: the spec's clients poll once more after the last batch; they get 204
until the TTL expires, then 404 (upstream's "broken channel" 400 is deliberately not copied).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from edge.config import Config
from edge.errors import EdgeError, InvalidInputError, NotFoundError
from edge.formats.batch_v1 import format_record_header, time_header_name
from edge.formats.batch_v2 import ReadBatchEncoder
from edge.query.cursor import BUSY, Match, QueryCursor
from edge.query.plan import QueryPlan, extension_names
from edge.formats.metadata import is_meta_entry
from edge.query.select import select_entries

if TYPE_CHECKING:
    from edge.store import Bucket, Engine, Entry
    from .storage import StorageService

ENTRY, BUCKET = "entry", "bucket"


def not_found(query_id: int) -> NotFoundError:
    return NotFoundError(f"Query {query_id} not found and it might have expired. Check TTL in your query request.")


@dataclass
class Batch:
    """One read's worth of records, in body order, and the headers that describe them."""

    matches: list[Match]
    last: bool
    entries: dict[str, "Entry"]                        # name -> Entry, for read_payload
    record_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(m.size for m in self.matches)


class Query:
    __slots__ = ("id", "scope", "bucket", "entry", "plan", "cursor", "ttl_s", "deadline", "lock",
                 "error", "ended")

    def __init__(self, qid: int, scope: str, bucket: str, entry: str | None, plan: QueryPlan,
                 cursor: QueryCursor, now: float):
        self.id = qid
        self.scope = scope
        self.bucket = bucket
        self.entry = entry
        self.plan = plan
        self.cursor = cursor
        self.ttl_s = plan.ttl_s
        self.deadline = now + plan.ttl_s
        self.lock = trio.Lock()             # one read at a time: a cursor is not re-entrant
        self.error: EdgeError | None = None  # surfaced on the read after the batch it interrupted
        self.ended = False                   # delivered its end (or failed): 204 from now on

    def touch(self) -> None:
        self.deadline = trio.current_time() + self.ttl_s


@dataclass(frozen=True)
class RegistryStatistics:
    entry_queries: int
    bucket_queries: int
    opened: int
    reaped: int


class QueryRegistry:
    def __init__(self, engine: Engine, storage: StorageService, config: Config | None = None):
        self.engine = engine
        self.storage = storage
        self.config = config if config is not None else Config()   # the RS_IO_* batch limits
        self._ids = itertools.count(1)
        self._tables: dict[str, dict[int, Query]] = {ENTRY: {}, BUCKET: {}}
        self._changed = trio.Event()
        self._opened = 0
        self._reaped = 0

    # --- lifecycle ------------------------------------------------------------------------

    def _register(self, scope: str, bucket: str, entry: str | None, plan: QueryPlan,
                  cursor: QueryCursor) -> int:
        qid = next(self._ids)
        names = extension_names(plan)
        if names:  # no extensions are built in; the id is spent, like upstream
            raise InvalidInputError(f"Unknown extension '{names[0]}' in query id={qid}")
        self._tables[scope][qid] = Query(qid, scope, bucket, entry, plan, cursor, trio.current_time())
        self._opened += 1
        self._changed.set()  # the reaper may need to wake earlier than it planned
        return qid

    def open_entry(self, bucket_name: str, entry_name: str, plan: QueryPlan) -> int:
        """An entry-level query; 404 if the bucket or the entry does not exist."""
        bucket = self.engine.get_bucket(bucket_name)
        bucket.get_entry(entry_name)
        return self._register(ENTRY, bucket_name, entry_name, plan, QueryCursor(bucket, plan, [entry_name]))

    def open_bucket(self, bucket_name: str, plan: QueryPlan) -> int:
        """A multi-entry (io) query; patterns matching nothing give a query whose read is 204."""
        bucket = self.engine.get_bucket(bucket_name)

        def resolve() -> list[str]:
            return select_entries(plan.entries, bucket.entry_names(include_meta=True))

        cursor = QueryCursor(bucket, plan, resolve(), resolve if plan.continuous else None)
        return self._register(BUCKET, bucket_name, None, plan, cursor)

    def get(self, query_id: int, scope: str) -> Query:
        table = self._tables[scope]
        query = table.get(query_id)
        if query is None:
            raise not_found(query_id)
        if trio.current_time() >= query.deadline:
            del table[query_id]
            self._reaped += 1
            raise not_found(query_id)
        query.touch()
        return query

    def reap_expired(self) -> int:
        now = trio.current_time()
        removed = 0
        for table in self._tables.values():
            for qid in [qid for qid, q in table.items() if now >= q.deadline]:
                del table[qid]
                removed += 1
        self._reaped += removed
        return removed

    async def reap_forever(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drop expired queries at their deadline; sleeps until the earliest one (or a new query)."""
        task_status.started()
        while True:
            self.reap_expired()
            deadline = min((q.deadline for t in self._tables.values() for q in t.values()), default=math.inf)
            self._changed = trio.Event()
            with trio.move_on_at(deadline):
                await self._changed.wait()

    def statistics(self) -> RegistryStatistics:
        return RegistryStatistics(len(self._tables[ENTRY]), len(self._tables[BUCKET]), self._opened, self._reaped)

    # --- reading --------------------------------------------------------------------------

    async def next_batch(self, query: Query, *, head: bool = False, v2: bool = False,
                         max_records: int | None = None) -> Batch | None:
        """The next batch of ``query``; None means "no content" (204)."""
        async with query.lock:
            try:
                return await self._fill(query, head, v2, max_records)
            finally:
                query.touch()  # a read that waited counts as access at its end too

    async def _fill(self, query: Query, head: bool, v2: bool, max_records: int | None) -> Batch | None:
        if query.error is not None:
            error, query.error = query.error, None
            query.ended = True
            raise error
        if query.ended:
            return None
        plan, cursor = query.plan, query.cursor
        d = plan.directives
        cfg = self.config
        limit_records = max_records or d.batch_records or cfg.batch_max_records
        limit_size = d.batch_size if d.batch_size is not None else cfg.batch_max_size
        limit_meta = d.batch_metadata_size if d.batch_metadata_size is not None else cfg.batch_max_metadata_size
        timeout_s = d.batch_timeout_s if d.batch_timeout_s is not None else cfg.batch_timeout_s
        record_timeout_s = d.record_timeout_s if d.record_timeout_s is not None else cfg.batch_records_timeout_s
        now = trio.current_time()
        batch_deadline = now + timeout_s

        matches: list[Match] = []
        headers: list[tuple[str, str]] = []
        encoder = ReadBatchEncoder() if v2 else None
        size = meta = 0
        wake: trio.Event | None = None   # new_data event taken *before* the last refresh
        while True:
            try:
                match = cursor.next()
            except EdgeError as exc:  # strict mode: the query is over
                if matches:
                    query.error = exc
                    break
                query.ended = True
                raise
            if match is BUSY:
                await trio.sleep(0)  # a long scan must not starve other connections
                if matches and trio.current_time() > batch_deadline:
                    break
                continue
            if match is None:
                if cursor.finished or not plan.continuous or matches:
                    break
                # Continuous and idle: look again (new entries, new records), then wait for the
                # next flush instead of polling; give up (204) after the record timeout.
                if wake is None:
                    wake = self.storage.new_data if self.storage is not None else trio.Event()
                    cursor.refresh()
                    continue
                with trio.move_on_at(min(batch_deadline, now + record_timeout_s)) as scope:
                    await wake.wait()
                if scope.cancelled_caught:
                    break
                wake = None
                continue
            if matches and not head and match.size > limit_size:
                cursor.push_back(match)  # a record bigger than a batch travels alone
                break
            if encoder is not None:
                if not encoder.can_append(match.entry, match.ts_us):
                    cursor.push_back(match)  # §8.6 ordering rule: close the batch instead
                    break
                meta += encoder.add(match.entry, match.ts_us, match.size, match.content_type,
                                    match.labels, match.computed)
            else:
                name = time_header_name(match.ts_us)
                value = format_record_header(match.size, match.content_type, match.labels, match.computed)
                headers.append((name, value))
                meta += len(name) + len(value) + 2
            matches.append(match)
            size += match.size
            # The record that crosses a limit is still included (§9.6).
            if (len(matches) >= limit_records or meta > limit_meta or (not head and size > limit_size)
                    or trio.current_time() > batch_deadline):
                break

        if not matches:
            if query.error is None and cursor.finished:
                query.ended = True
            return None
        if max_records is not None and not plan.continuous and query.error is None and not cursor.finished:
            await self._look_ahead(query, batch_deadline)
        finished = cursor.finished
        if finished and query.error is None:
            query.ended = True
        # Continuous: "last" means "nothing more right now" (reduct-py ignores it there).
        last = finished or (plan.continuous and match is None)
        if encoder is not None:
            headers = encoder.headers()
        entries = {name: s.entry for name, s in cursor.streams.items()}
        return Batch(matches, bool(last), entries, headers)

    @staticmethod
    async def _look_ahead(query: Query, deadline: float) -> None:
        """Find out whether a record follows, so a one-record read can say ``x-reduct-last: true``
        on the last one (the issue-18 Entry API rule). The record found is pushed back; a scan
        that outlasts the batch deadline gives up (then the read says ``false``, and the next
        one may be 204, which the spec allows)."""
        cursor = query.cursor
        while True:
            try:
                match = cursor.next()
            except EdgeError as exc:   # strict mode: surfaced on the next read, as in _fill
                query.error = exc
                return
            if match is BUSY:
                await trio.sleep(0)
                if trio.current_time() > deadline:
                    return
                continue
            if match is not None:
                cursor.push_back(match)
            return

    # --- removing -------------------------------------------------------------------------

    async def remove(self, bucket_name: str, plan: QueryPlan, entry_name: str | None = None) -> int:
        """Remove what ``plan`` selects; returns the count. ``$meta`` entries are skipped (§12)."""
        bucket = self.engine.get_bucket(bucket_name)
        unknown = extension_names(plan)
        if unknown:
            raise InvalidInputError(f"Unknown extension '{unknown[0]}' in query id={next(self._ids)}")
        if entry_name is not None:
            if is_meta_entry(entry_name):
                return 0
            async with self.storage.entry_lock(bucket_name, entry_name):
                bucket.get_or_create_entry(entry_name)  # upstream quirk: an empty entry, 0 removed
            names = [entry_name]
        else:
            names = [n for n in select_entries(plan.entries, bucket.entry_names(include_meta=True))
                     if not is_meta_entry(n)]
        total = 0
        for name in names:
            total += await self._remove_from(bucket, bucket_name, name, plan)
        return total

    async def _remove_from(self, bucket: "Bucket", bucket_name: str, name: str, plan: QueryPlan) -> int:
        async with self.storage.entry_lock(bucket_name, name):
            try:
                entry = bucket.get_entry(name)
            except NotFoundError:
                return 0
            cursor = QueryCursor(bucket, plan, [name])
            # Streamed: each match is removed as the cursor yields it, so nothing grows with the
            # number of matches. Safe while iterating: the cursor holds an immutable snapshot of
            # the block it is in and finds its place in the block map again by block id.
            removed = 0
            while True:
                match = cursor.next()
                if match is BUSY:
                    await trio.sleep(0)
                    continue
                if match is None:
                    break
                try:
                    entry.remove_record(match.ts_us)
                    removed += 1
                except NotFoundError:  # evicted meanwhile: nothing to remove
                    pass
                if removed % 1000 == 999:
                    await trio.sleep(0)
            durability = entry.flush() if removed else None
        if durability is not None:
            await self.storage.flusher.wait_durable(durability)
        return removed


async def start(nursery: trio.Nursery, engine: Engine, storage: StorageService, config: Config) -> QueryRegistry:
    """Room starter (``edge.main.start_rooms``): the registry and its reaper."""
    registry = QueryRegistry(engine, storage, config)
    await nursery.start(registry.reap_forever)
    return registry
