"""Usage statistics: what was written and read per bucket in one window, plus storage figures.

Owns: the per-window counters (bytes, records, distinct entries, per bucket), and turning a
window plus a storage snapshot into ``usage_stats`` events: one ``total`` and one per bucket.
Must not: do I/O, know trio, HTTP or the store (the caller passes ``BucketUsage`` snapshots).

Per-bucket events are written for buckets that changed (reads, writes or storage figures) since
the last window, so an idle device with many buckets does not write a record per bucket per
minute; ``total`` is written every window, so the chart over time has no gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.sysevents.records import USAGE, SystemEvent

TOTAL = "total"
MAX_ENTRIES_TRACKED = 10_000     # distinct entries remembered per bucket and window (then only counted)


@dataclass(frozen=True, slots=True)
class BucketUsage:
    """Storage figures of one bucket at the end of a window."""

    name: str
    storage_bytes: int
    entry_count: int
    block_count: int
    record_count: int


@dataclass(slots=True)
class _Traffic:
    write_bytes: int = 0
    read_bytes: int = 0
    records_written: int = 0
    records_read: int = 0
    written: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)


class UsageWindow:
    def __init__(self) -> None:
        self._traffic: dict[str, _Traffic] = {}
        self._last_storage: dict[str, BucketUsage] = {}

    def _of(self, bucket: str) -> _Traffic:
        t = self._traffic.get(bucket)
        if t is None:
            t = self._traffic[bucket] = _Traffic()
        return t

    def wrote(self, bucket: str, entry: str, nbytes: int) -> None:
        t = self._of(bucket)
        t.write_bytes += nbytes
        t.records_written += 1
        if len(t.written) < MAX_ENTRIES_TRACKED:
            t.written.add(entry)

    def read(self, bucket: str, entries: list[str], records: int, nbytes: int) -> None:
        t = self._of(bucket)
        t.read_bytes += nbytes
        t.records_read += records
        for e in entries:
            if len(t.read) >= MAX_ENTRIES_TRACKED:
                break
            t.read.add(e)

    def drain(self, ts_us: int, duration_s: float, storage: list[BucketUsage]) -> list[SystemEvent]:
        traffic, self._traffic = self._traffic, {}
        last, self._last_storage = self._last_storage, {b.name: b for b in storage}
        events = []
        total = _Traffic()
        for b in storage:
            t = traffic.get(b.name, _Traffic())
            total.write_bytes += t.write_bytes
            total.read_bytes += t.read_bytes
            total.records_written += t.records_written
            total.records_read += t.records_read
            if t.records_written or t.records_read or last.get(b.name) != b:
                events.append(self._event(b.name, ts_us, duration_s, t, len(t.written), len(t.read),
                                          b.storage_bytes, 1, b.entry_count, b.block_count, b.record_count))
        written = sum(len(t.written) for t in traffic.values())
        read = sum(len(t.read) for t in traffic.values())
        events.insert(0, self._event(TOTAL, ts_us, duration_s, total, written, read,
                                     sum(b.storage_bytes for b in storage), len(storage),
                                     sum(b.entry_count for b in storage), sum(b.block_count for b in storage),
                                     sum(b.record_count for b in storage)))
        return events

    @staticmethod
    def _event(name: str, ts_us: int, duration_s: float, t: _Traffic, written_entries: int, read_entries: int,
               storage_bytes: int, bucket_count: int, entry_count: int, block_count: int,
               record_count: int) -> SystemEvent:
        return SystemEvent(USAGE, name, "usage_stats", 200, f"usage of {name}", ts_us, {
            "bucket": None if name == TOTAL else name,
            "duration": round(duration_s, 3), "write_bytes": t.write_bytes, "read_bytes": t.read_bytes,
            "records_written": t.records_written, "records_read": t.records_read,
            "written_entries": written_entries, "read_entries": read_entries, "storage_bytes": storage_bytes,
            "bucket_count": bucket_count, "entry_count": entry_count, "block_count": block_count,
            "record_count": record_count})
