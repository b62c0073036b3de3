"""The query cursor: walks one or many entries in timestamp order and yields matching records.

Owns: the per-entry filter pipeline (time range, ``$meta`` tombstones, ``when`` + legacy
conditions with their per-entry state, strict errors, ``$limit``/``limit`` stop, ``#ctx_before``
/ ``#ctx_after`` context records, ``#select_labels``), the multi-entry merge (global ts order, ties
by entry name) and the continuous-query refresh (resume after the last ts seen per entry).
Must not: import trio or HTTP, read payloads, or materialise a result: every entry is read lazily
through ``Entry.iter_refs`` (block by block), and at most one pending record per entry is held,
plus the bounded ``#ctx_before`` buffer.

Why a scan budget: a selective ``when`` over a large entry may examine millions of records before
one matches. ``next()`` gives up after ``budget`` examined records and returns ``BUSY`` so the
async caller can checkpoint and keep the event loop responsive (the store is synchronous).
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Final, Iterator, Literal, Mapping

from edge.errors import NotFoundError
from edge.query.plan import QueryPlan
from edge.formats.metadata import is_meta_entry
from edge.query.when import Duration, combine

if TYPE_CHECKING:
    from edge.store import Bucket, Entry, RecordRef

SCAN_BUDGET = 2000   # records examined per next() call before handing control back


class _Busy(enum.Enum):
    BUSY = "busy"


BUSY: Final = _Busy.BUSY   # next(): nothing decided yet, call again (after a checkpoint)
Busy = Literal[_Busy.BUSY]
_EMPTY: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Match:
    """One record of a query result: the store's ref plus the labels the client gets."""

    entry: str
    ref: RecordRef                  # payload via Entry.read_payload
    labels: Mapping[str, str]
    computed: Mapping[str, str] = field(default_factory=dict)

    @property
    def ts_us(self) -> int:
        return self.ref.ts_us

    @property
    def size(self) -> int:
        return self.ref.size

    @property
    def content_type(self) -> str:
        return self.ref.content_type


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int):
        self.left = left


class _Stream:
    """One entry: its iterator, its condition state and its context windows."""

    def __init__(self, name: str, entry: Entry, plan: QueryPlan, start_us: int | None, stop_us: int | None):
        self.name = name
        self.entry = entry
        self.plan = plan
        legacy, cond = plan.conditions()
        # `when` first, then the legacy filter: a legacy `limit` counts returned records only.
        self.condition = combine(cond, legacy)
        self.meta = is_meta_entry(name)
        self.stop_us = stop_us
        self.last_ts: int | None = None
        self.it: Iterator[RecordRef] = entry.iter_refs(start_us, stop_us)
        self.dry = False          # iterator exhausted (continuous: until refresh)
        self.stopped = False      # $limit / limit: no more records, ever
        self.ready: deque[Match] = deque()
        d = plan.directives
        self.select = set(d.select_labels) if d.select_labels else None
        self.before = d.ctx_before if d.ctx_before else None
        self.after = d.ctx_after if d.ctx_after else None
        self.before_buf: deque[RecordRef] = deque(maxlen=self.before if isinstance(self.before, int) else None)
        self.after_left = 0                     # ctx_after as a count
        self.after_until: int | None = None     # ctx_after as a duration: last ts inside

    def _match(self, ref: RecordRef) -> Match:
        labels = ref.labels
        if self.select is not None:
            labels = {k: v for k, v in labels.items() if k in self.select}
        return Match(self.name, ref, labels, _EMPTY)

    def refresh(self) -> None:
        """Continuous queries: look again after the last record examined."""
        if self.stopped or not self.dry:
            return
        start = self.plan.start_us
        if self.last_ts is not None:
            start = self.last_ts + 1 if start is None else max(start, self.last_ts + 1)
        self.it = self.entry.iter_refs(start, self.stop_us)
        self.dry = False

    def pull(self, budget: _Budget) -> Match | None | Busy:
        """The next match of this entry, None when dry/stopped, or BUSY when out of budget."""
        while True:
            if self.ready:
                return self.ready.popleft()
            if self.stopped or self.dry:
                return None
            if budget.left <= 0:
                return BUSY
            ref = next(self.it, None)
            if ref is None:
                self.dry = True
                return None
            budget.left -= 1
            self.last_ts = ref.ts_us
            # Attachments "deleted" by a remove=true label update stay readable by ts, never by query.
            if self.meta and ref.labels.get("remove") == "true":
                continue
            self._examine(ref)

    def _examine(self, ref: RecordRef) -> None:
        cond = self.condition
        matched = True if cond is None else cond.evaluate(ref)   # strict errors propagate
        ts = ref.ts_us
        if matched:
            if self.before is not None:
                if isinstance(self.before, Duration):
                    lowest = ts - self.before.us
                    self.ready.extend(self._match(r) for r in self.before_buf if r.ts_us >= lowest)
                else:
                    self.ready.extend(self._match(r) for r in self.before_buf)
                self.before_buf.clear()
            self.ready.append(self._match(ref))
            if isinstance(self.after, Duration):
                self.after_until = ts + self.after.us
            elif self.after:
                self.after_left = self.after
        elif self.after_left > 0:
            self.after_left -= 1
            self.ready.append(self._match(ref))
        elif self.after_until is not None and ts <= self.after_until:
            self.ready.append(self._match(ref))
        elif self.before is not None:
            self.before_buf.append(ref)
            if isinstance(self.before, Duration):
                while self.before_buf and self.before_buf[0].ts_us < ts - self.before.us:
                    self.before_buf.popleft()
        if cond is not None and cond.stopped:
            self.stopped = True


class QueryCursor:
    """Merges the streams of the selected entries; ``next()`` -> Match | None | BUSY.

    ``resolve`` (continuous io queries) returns the current entry names, so entries created
    after the query started join it on ``refresh()``.
    """

    def __init__(self, bucket: Bucket, plan: QueryPlan, entry_names: list[str],
                 resolve: Callable[[], list[str]] | None = None):
        self.bucket = bucket
        self.plan = plan
        self.resolve = resolve
        self.streams: dict[str, _Stream] = {}
        self._heads: list[tuple[int, str, Match]] = []   # heap: one pending match per entry
        self._waiting: set[str] = set()                   # streams whose head is not pulled yet
        self._pushed: list[Match] = []
        self.delivered = 0
        for name in entry_names:
            self._add(name)

    def _add(self, name: str) -> None:
        try:
            entry = self.bucket.get_entry(name)
        except NotFoundError:  # removed between selection and now: it simply has no records
            return
        plan = self.plan
        stop = plan.stop_us
        if stop is None and not plan.continuous:
            # Default stop = latest + 1 *at creation*: a finite query does not chase new writes.
            stop = entry.latest_ts + 1 if entry.record_count else 0
        if plan.continuous:
            stop = None
        self.streams[name] = _Stream(name, entry, plan, plan.start_us, stop)
        self._waiting.add(name)

    @property
    def finished(self) -> bool:
        """No record will ever come (continuous queries finish only through a limit)."""
        if self._pushed or self._heads or any(s.ready for s in self.streams.values()):
            return False
        if self.plan.continuous:
            return bool(self.streams) and all(s.stopped for s in self.streams.values())
        return all(s.stopped or s.dry for s in self.streams.values())

    def refresh(self) -> None:
        if self.resolve is not None:
            for name in self.resolve():
                if name not in self.streams:
                    self._add(name)
        for name, stream in self.streams.items():
            if stream.dry and not stream.stopped:
                stream.refresh()
                self._waiting.add(name)

    def push_back(self, match: Match) -> None:
        """Return a match the caller could not use (a full batch); it comes out next."""
        self._pushed.append(match)

    def next(self, budget: int = SCAN_BUDGET) -> Match | None | Busy:
        if self._pushed:
            return self._pushed.pop()
        b = _Budget(budget)
        for name in sorted(self._waiting):
            stream = self.streams[name]
            got = stream.pull(b)
            if got is BUSY:
                return BUSY
            self._waiting.discard(name)
            if got is not None:
                heapq.heappush(self._heads, (got.ts_us, name, got))
        if not self._heads:
            return None
        _, name, match = heapq.heappop(self._heads)
        self._waiting.add(name)
        self.delivered += 1
        return match
