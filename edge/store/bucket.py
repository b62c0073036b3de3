"""One bucket: its settings, its entries, its sizes and its quota.

Owns: ``<bucket>/settings.json``, the entry tree (names per spec 6.1, implicit parents with an
``.entry`` marker), entry rename/removal, the running ``size`` (ReductStore's figure) and
``disk_usage`` (bytes of its files), quota enforcement (the arithmetic is ring.py's; eviction is
carried out here, oldest block first from a heap), and the engine-wide limits on the write path
(the storage cap, the free-space reserve: the numbers are the engine's).
Must not: call the OS except through ``files``, know about HTTP or trio.

The quota is a disk quota: a write reserves what its frame and its share of the block index
will take on disk, and FIFO evicts (HARD refuses) until ``disk_usage`` plus that fits. Only the
index of the block being filled is written later, at sealing, so the files of a bucket stay
within its quota plus one block. ``size`` is still reported as ReductStore computes it.

Both figures are kept incrementally: entries report every change through ``_size_delta`` and
``_disk_delta``, so the quota check of a write costs O(1), and an eviction pops the oldest
block from the heap of per-entry oldest blocks (O(log entries)) instead of looking at them all.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

from edge.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    StorageIOError,
    StorageLimitError,
)
from edge import durable
from edge.formats.metadata import BUCKET_NAME_ERROR, check_bucket_name, check_entry_name, is_meta_entry  # noqa: F401
from edge.model import BucketInfo, BucketSettings, EntryInfo, QuotaType
from edge.formats.frame import encode_meta
from edge.store import files, ring
from edge.store.blocks import Block
from edge.store.entry import JOURNAL, MARKER, Entry
from edge.store.entry_write import disk_need

if TYPE_CHECKING:
    from edge.store.entry_state import EngineSide, EntryState

SETTINGS = "settings.json"
# The name rules live with the other stored-name rules (formats/metadata.py); re-exported here.
MARKER_PAYLOAD = b"edge entry\n"   # sealed (edge.durable): an earlier version wrote it empty


def _parse_marker(raw: bytes) -> bytes:
    if raw not in (MARKER_PAYLOAD, b""):
        raise ValueError("not an entry marker")
    return raw


def parents_of(name: str) -> list[str]:
    """"a/b/c" -> ["a", "a/b"]; "a/$meta" -> ["a"]."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def settings_to_json(settings: BucketSettings, is_provisioned: bool) -> bytes:
    return json.dumps(
        {
            "quota_type": settings.quota_type.value,
            "quota_size": settings.quota_size,
            "max_block_size": settings.max_block_size,
            "max_block_records": settings.max_block_records,
            "is_provisioned": is_provisioned,
        },
        indent=1,
    ).encode()


def settings_from_json(data: bytes, defaults: BucketSettings) -> tuple[BucketSettings, bool]:
    try:
        obj = json.loads(data)
        settings = defaults.merged(
            quota_type=QuotaType(obj["quota_type"]) if obj.get("quota_type") else None,
            quota_size=obj.get("quota_size"),
            max_block_size=obj.get("max_block_size"),
            max_block_records=obj.get("max_block_records"),
        )
        return settings, bool(obj.get("is_provisioned", False))
    except (ValueError, TypeError, AttributeError) as exc:
        raise StorageIOError(f"Bad bucket settings: {exc}") from None


class Bucket:
    def __init__(self, engine: EngineSide, name: str, settings: BucketSettings, is_provisioned: bool = False):
        self.engine = engine
        self.name = name
        self.settings = settings
        self.is_provisioned = is_provisioned
        self.entries: dict[str, Entry] = {}
        self._sorted: list[Entry] | None = None  # see _visible; None whenever ``entries`` changes
        self._bounds_gen = 0  # bumped by every entry change (EntryState._changed) and entry set change
        self._bounds: tuple[int, int, int] | None = None  # (_bounds_gen, oldest, latest) of info()
        self.size = 0  # spec 15.2 size of every published record, $meta included
        self.disk_usage = 0  # bytes of the bucket's entry files (apparent size; settings.json aside)
        self._due = 0  # bytes the indexes of unsealed blocks will take when they are sealed
        self._pending = 0  # disk bytes reserved by writers not yet flushed
        self.stats: Counter[str] = engine.stats
        # FIFO: (id of an entry's oldest block, tie-breaker, entry); an item is current only while
        # it equals the entry's ``_fifo_key`` (stale ones are skipped when popped).
        self._fifo_heap: list[tuple[int, int, Entry]] = []
        self._fifo_seq = itertools.count()
        self.damaged: durable.Damage | None = None   # settings.json damaged: reads only

    @property
    def path(self) -> Path:
        return self.engine.data_path / self.name

    @property
    def fds(self) -> files.FdCache:
        return self.engine.fds

    # --- settings ---------------------------------------------------------------------------

    def save(self) -> None:
        files.write_state(self.path / SETTINGS, settings_to_json(self.settings, self.is_provisioned))

    def update_settings(self, settings: BucketSettings) -> None:
        self.settings = settings
        self.save()
        self.damaged = None   # set again by a human: writes are accepted again

    # --- loading ----------------------------------------------------------------------------

    def load(self, report: list[str]) -> None:
        for name in sorted(self._scan_entry_names(self.path, "")):
            entry = Entry(self, name)
            self.entries[name] = entry
            self._entries_changed()
            self._check_marker(entry, report)
            entry.load(report)
            self._fifo_note(entry)

    def _check_marker(self, entry: Entry, report: list[str]) -> None:
        """A damaged ``.entry`` marker is set aside and written again (it only says "an entry
        lives here", which the folder already tells)."""
        path = entry.dir / MARKER
        _, damage, _ = files.load_state(path, _parse_marker)
        if damage is not None:
            self.engine.damaged.append(damage)
            report.append(f"{self.name}/{entry.name}: {damage.describe()}; marker written again")
            files.write_state(path, MARKER_PAYLOAD)   # before entry.load, which counts both files

    def _scan_entry_names(self, folder: Path, prefix: str) -> Iterator[str]:
        for e in files.list_dir(folder):
            if not e.is_dir(follow_symlinks=False) or e.name.startswith("."):
                continue
            name = f"{prefix}{e.name}"
            inner = files.list_dir(Path(e.path))
            if any(
                c.name.endswith(".blk") or c.name in (JOURNAL, MARKER) or c.is_dir(follow_symlinks=False)
                for c in inner
            ):
                yield name
            yield from self._scan_entry_names(Path(e.path), name + "/")

    # --- entries ----------------------------------------------------------------------------

    def entry_names(self, include_meta: bool = False) -> list[str]:
        if include_meta:
            return sorted(self.entries)
        return [e.name for e in self._visible()]

    def _entries_changed(self) -> None:
        self._sorted = None
        self._bounds_gen += 1

    def _visible(self) -> list[Entry]:
        """The entries a client sees ($meta ones aside), by name; kept until the set changes."""
        if self._sorted is None:
            self._sorted = [self.entries[n] for n in sorted(self.entries) if not is_meta_entry(n)]
        return self._sorted

    def entry_infos(self) -> list[EntryInfo]:
        return [e.info() for e in self._visible()]

    def info(self, entries: list[EntryInfo] | None = None) -> BucketInfo:
        """``entries``: this bucket's ``entry_infos()`` if the caller has them already. The
        bounds are cached until an entry changes; then each entry's cached info is looked at."""
        cached = self._bounds
        if entries is None and cached is not None and cached[0] == self._bounds_gen:
            _, first, last = cached   # nothing changed since: O(1) (GET /info, GET /list)
        else:
            gen = self._bounds_gen   # before: computing the bounds may load an index
            infos = self.entry_infos() if entries is None else entries
            first = min((i.oldest_record for i in infos if i.record_count), default=0)
            last = max((i.latest_record for i in infos if i.record_count), default=0)
            self._bounds = (gen, first, last)
        return BucketInfo(self.name, len(self._visible()), self.size, first, last, self.is_provisioned,
                          disk_usage=self.disk_usage)

    def _not_found(self, name: str) -> NotFoundError:
        return NotFoundError(f"Entry '{name}' not found in bucket '{self.name}'")

    def get_entry(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            raise self._not_found(name)
        return entry

    def get_or_create_entry(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is not None:
            return entry
        check_entry_name(name)
        for n in [*parents_of(name), name]:
            if n not in self.entries:
                self._create_entry(n)
        return self.entries[name]

    def entry_files_step(self, name: str) -> Callable[[], None] | None:
        """The file part of creating entry ``name`` (and its missing parents), or None if it
        exists: its folders and markers, fsynced. It touches no bucket state, so the server runs
        it in a worker thread (edge.blocking) before ``get_or_create_entry``, which then finds
        the files and only registers the entries."""
        if name in self.entries:
            return None
        check_entry_name(name)
        dirs = [self.path / n for n in [*parents_of(name), name] if n not in self.entries]
        return partial(_make_entry_files, dirs)

    def _create_entry(self, name: str) -> Entry:
        entry = Entry(self, name)
        _make_entry_files([entry.dir])   # nothing left to do if entry_files_step ran
        entry._disk_delta(files.file_size(entry.dir / MARKER) or 0)   # a file of the entry, as at load
        self.entries[name] = entry
        self._entries_changed()
        self._fifo_note(entry)
        return entry

    def _family(self, name: str) -> list[str]:
        return [n for n in self.entries if n == name or n.startswith(name + "/")]

    def remove_entry(self, name: str) -> None:
        self.get_entry(name)
        family = self._family(name)
        for n in family:
            if self.entries[n].has_unflushed:
                raise ConflictError(f"Entry '{n}' in bucket '{self.name}' has writes in progress")
        self.fds.drop_under(self.path / name)
        files.remove_tree(self.path / name)  # the bucket folder is synced before this returns
        self.engine.unsynced.forget_under(self.path / name)
        self.engine.torn.forget([self.entries[n] for n in family])
        for n in family:
            entry = self.entries.pop(n)
            self._entries_changed()
            self._size_delta(-entry.size)
            self._disk_delta(-entry.disk)
            self._due_delta(-entry._due)
            for b in entry.blocks:
                self.engine.index_cache.discard(b)
            entry._fifo_key = None

    def rename_entry(self, old: str, new: str) -> None:
        self.get_entry(old)
        check_entry_name(new)
        if new in self.entries or new == old or new.startswith(old + "/"):
            raise AlreadyExistsError(f"Entry '{new}' already exists in bucket '{self.name}'")
        family = self._family(old)
        for n in family:
            if self.entries[n].has_unflushed:
                raise ConflictError(f"Entry '{n}' in bucket '{self.name}' has writes in progress")
        for p in parents_of(new):
            if p not in self.entries:
                self._create_entry(p)
        self.settle_folders([self.entries[n] for n in family], self.path / old)
        self.fds.drop_under(self.path / old)
        files.rename(self.path / old, self.path / new)  # both parents synced before this returns
        for n in family:
            entry = self.entries.pop(n)
            entry.name = new + n[len(old) :]
            self.entries[entry.name] = entry
            self._entries_changed()
            self._fifo_note(entry)  # may have become (or stopped being) a $meta entry

    def settle_folders(self, entries: list[Entry], under: Path) -> None:
        """Before entries move (an entry or bucket rename): sync the folders whose names are not
        synced yet (new blocks of writers still waiting for their group commit, removed blocks),
        inline. Their Durabilities name the folders by path, and a renamed path no longer
        exists, so their folder syncs would silently do nothing. Renames are rare; a folder
        without such a change costs nothing here."""
        unsynced = self.engine.unsynced
        for entry in entries:
            if entry.dir in unsynced or any(dirs for _, dirs, _, _ in entry._recent) or entry._new_dirs:
                files.fsync_dir(entry.dir)
            entry._recent.clear()  # its paths change; everything in it is synced or dup'd
        unsynced.sync_now(under)

    # --- size and quota ---------------------------------------------------------------------

    def _size_delta(self, delta: int) -> None:
        self.size += delta

    def _disk_delta(self, delta: int) -> None:
        self.disk_usage += delta
        self.engine.disk_usage += delta

    def _due_delta(self, delta: int) -> None:
        self._due += delta
        self.engine.due += delta

    @property
    def committed(self) -> int:
        """What the quota is checked against: the files, the indexes due, the reservations."""
        return self.disk_usage + self._due + self._pending

    def _release(self, reserved: int) -> None:
        self._pending -= reserved
        self.engine.pending -= reserved

    def check_quota(self, length: int, content_type: str, labels: Mapping[str, str]) -> None:
        """Would a record of this shape be refused by the quota right now? (Raises like a write
        would, without evicting or reserving anything: for uploads that stage bytes first.)"""
        self._check_quota(disk_need(length, encode_meta(content_type, labels)))

    def _check_quota(self, need: int) -> bool:
        """Raise if ``need`` can never fit; True if FIFO has to evict first."""
        if self.damaged is not None:
            raise ConflictError(f"Bucket '{self.name}' is read-only: its settings file is damaged "
                                f"({self.damaged.reason}); set its settings again to accept writes")
        s = self.settings
        if s.quota_type == QuotaType.HARD:
            if not ring.fits(self.committed, need, s.quota_size):
                raise QuotaExceededError(f"Quota of '{self.name}' exceeded")
        elif s.quota_type == QuotaType.FIFO:
            if need > s.quota_size:
                raise PayloadTooLargeError(
                    f"Record of {need} bytes is larger than the quota of '{self.name}' ({s.quota_size} bytes)"
                )
            return not ring.fits(self.committed, need, s.quota_size)
        return False

    def _reserve(self, entry: EntryState, need: int) -> None:
        """Make room for ``need`` bytes on disk or raise; then reserve them. Nothing is written
        before this, so a refusal leaves nothing behind."""
        if self._check_quota(need):
            self._evict_for(need)
        self.engine.check_room(need)
        self._pending += need
        self.engine.pending += need

    def _fifo_note(self, entry: EntryState) -> None:
        """The entry's oldest block may have changed: keep the heap's key for it current."""
        key = None
        current = self.entries.get(entry.name)
        if entry.blocks and not is_meta_entry(entry.name) and current is entry:
            key = entry.blocks[0].id
        if key != entry._fifo_key:
            entry._fifo_key = key
            if key is not None and current is not None:  # current is entry: the heap holds Entry
                heapq.heappush(self._fifo_heap, (key, next(self._fifo_seq), current))

    def _fifo_candidates(self, touched: list[Entry]) -> Iterator[tuple[tuple[Entry, Block], int]]:
        """Evictable blocks, oldest first (by the id of each entry's oldest block), across
        non-$meta entries; pops current heap items into ``touched`` (the caller puts them back).
        Within an entry its blocks follow in order, interleaved with the other entries by id."""
        heap = self._fifo_heap
        local: list[tuple[int, int, Entry, int]] = []  # (block id, seq, entry, position)
        while True:
            while heap and heap[0][2]._fifo_key != heap[0][0]:
                heapq.heappop(heap)  # stale
            if heap and (not local or heap[0][0] < local[0][0]):
                key, _, entry = heapq.heappop(heap)
                entry._fifo_key = None
                touched.append(entry)
                k = 0
            elif local:
                key, _, entry, k = heapq.heappop(local)
            else:
                return
            blocks = entry.blocks
            while k < len(blocks) and not (blocks[k].file_size and blocks[k].evictable):
                k += 1
            if k < len(blocks):
                b = blocks[k]
                if k + 1 < len(blocks):
                    heapq.heappush(local, (blocks[k + 1].id, next(self._fifo_seq), entry, k + 1))
                yield (entry, b), b.file_size + b.idx_size + b.idx_due

    def _evict_for(self, need: int) -> None:
        touched: list[Entry] = []
        try:
            victims = ring.fifo_victims(self.committed, need, self.settings.quota_size,
                                        self._fifo_candidates(touched))
            if victims is None:
                raise StorageLimitError(f"Failed to keep quota of '{self.name}'")
            for entry, b in victims:
                entry._delete_block(b)
                self.stats["blocks_evicted"] += 1
        finally:
            for entry in touched:
                self._fifo_note(entry)

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        for entry in self.entries.values():
            entry.close()


def _make_entry_files(dirs: list[Path]) -> None:
    for d in dirs:
        files.make_dirs(d)   # durable: the parent of each created folder is fsynced
        # the marker keeps an entry without blocks (an implicit parent) across restarts
        if files.file_size(d / MARKER) is None:
            files.write_state(d / MARKER, MARKER_PAYLOAD)
