"""One bucket: its settings, its entries, its size and its quota.

Owns: ``<bucket>/settings.json``, the entry tree (names per spec 6.1, implicit parents with an
``.entry`` marker), entry rename/removal, the running ``size`` and quota enforcement (the
arithmetic is ring.py's; eviction is carried out here).
Must not: call the OS except through ``files``, know about HTTP or trio.

Size is kept incrementally: entries report every change through ``_size_delta``, so a write
costs O(1) for the quota check; only an actual FIFO eviction looks at the entries.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from edge.errors import (
    AlreadyExistsError,
    ConflictError,
    DiskFullError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    StorageIOError,
    StorageLimitError,
)
from edge.model import BucketInfo, BucketSettings, EntryInfo, QuotaType
from edge.store import files, ring
from edge.store.entry import JOURNAL, MARKER, Entry

if TYPE_CHECKING:
    from edge.store.engine import Engine

SETTINGS = "settings.json"
_BUCKET_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ENTRY_RE = re.compile(r"^[A-Za-z0-9_/-]+$")
BUCKET_NAME_ERROR = "Bucket or entry name can contain only letters, digests and [-,_] symbols"


def check_bucket_name(name: str) -> None:
    if not _BUCKET_RE.match(name or ""):
        raise InvalidInputError(BUCKET_NAME_ERROR)


def check_entry_name(name: str) -> None:
    base = name
    if name == "$meta":
        return
    if name.endswith("/$meta"):
        base = name[: -len("/$meta")]
    if not base or base.startswith("/") or base.endswith("/") or "//" in base:
        raise InvalidInputError("Entry name must be non-empty and must not contain empty path segments")
    if not _ENTRY_RE.match(base):
        raise InvalidInputError("Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'")


def parents_of(name: str) -> list[str]:
    """"a/b/c" -> ["a", "a/b"]; "a/$meta" -> ["a"]."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def is_meta_name(name: str) -> bool:
    return name == "$meta" or name.endswith("/$meta")


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
    def __init__(self, engine: "Engine", name: str, settings: BucketSettings, is_provisioned: bool = False):
        self.engine = engine
        self.name = name
        self.settings = settings
        self.is_provisioned = is_provisioned
        self.entries: dict[str, Entry] = {}
        self.size = 0  # spec 15.2 size of every published record, $meta included
        self._pending = 0  # sizes reserved by writers not yet flushed
        self.stats: Counter[str] = engine.stats

    @property
    def path(self) -> Path:
        return self.engine.data_path / self.name

    @property
    def fds(self) -> files.FdCache:
        return self.engine.fds

    # --- settings ---------------------------------------------------------------------------

    def save(self) -> None:
        files.atomic_write(self.path / SETTINGS, settings_to_json(self.settings, self.is_provisioned))

    def update_settings(self, settings: BucketSettings) -> None:
        self.settings = settings
        self.save()

    # --- loading ----------------------------------------------------------------------------

    def load(self, report: list[str]) -> None:
        for name in sorted(self._scan_entry_names(self.path, "")):
            entry = Entry(self, name)
            self.entries[name] = entry
            entry.load(report)

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
        return sorted(n for n in self.entries if include_meta or not is_meta_name(n))

    def entry_infos(self) -> list[EntryInfo]:
        return [self.entries[n].info() for n in self.entry_names()]

    def info(self) -> BucketInfo:
        visible = [e for n, e in self.entries.items() if not is_meta_name(n) and e.record_count]
        return BucketInfo(
            self.name,
            sum(1 for n in self.entries if not is_meta_name(n)),
            self.size,
            min((e.oldest_ts for e in visible), default=0),
            max((e.latest_ts for e in visible), default=0),
            self.is_provisioned,
        )

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

    def _create_entry(self, name: str) -> Entry:
        entry = Entry(self, name)
        files.make_dirs(entry.dir)   # durable: the parent of each created folder is fsynced
        # the marker keeps an entry without blocks (an implicit parent) across restarts
        if files.touch(entry.dir / MARKER):
            files.fsync_dir(entry.dir)
        self.entries[name] = entry
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
        files.remove_tree(self.path / name)
        for n in family:
            entry = self.entries.pop(n)
            self._size_delta(-entry.size)

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
        self.fds.drop_under(self.path / old)
        files.rename(self.path / old, self.path / new)
        for n in family:
            entry = self.entries.pop(n)
            entry.name = new + n[len(old) :]
            entry._recent.clear()  # paths changed; the rename itself fsynced the folders
            self.entries[entry.name] = entry

    # --- size and quota ---------------------------------------------------------------------

    def _size_delta(self, delta: int) -> None:
        self.size += delta

    def _release(self, reserved: int) -> None:
        self._pending -= reserved

    def _reserve(self, entry: Entry, need: int) -> None:
        """Make room for ``need`` bytes (payload + metadata) or raise; then reserve them."""
        s = self.settings
        used = self.size + self._pending
        if s.quota_type == QuotaType.HARD:
            if not ring.fits(used, need, s.quota_size):
                raise QuotaExceededError(f"Quota of '{self.name}' exceeded")
        elif s.quota_type == QuotaType.FIFO:
            if need > s.quota_size:
                raise PayloadTooLargeError(
                    f"Record of {need} bytes is larger than the quota of '{self.name}' ({s.quota_size} bytes)"
                )
            if not ring.fits(used, need, s.quota_size):
                self._evict_for(need)
        free = self.engine.free_bytes(self.engine.data_path)
        if free < need:
            raise DiskFullError(files.DISK_FULL_MESSAGE)
        self._pending += need

    def _fifo_candidates(self) -> Iterator[tuple[tuple[Entry, int], int]]:
        """Evictable blocks, oldest first by their oldest record, across non-$meta entries."""
        heap = []
        for n, e in self.entries.items():
            if is_meta_name(n):
                continue
            evictable = [b for b in e.blocks if len(b) and b.evictable]
            if evictable:
                heap.append((evictable[0].min_ts, n, 0, evictable))
        heapq.heapify(heap)
        while heap:
            _, n, k, blocks = heapq.heappop(heap)
            b = blocks[k]
            yield (self.entries[n], b.id), b.size
            if k + 1 < len(blocks):
                heapq.heappush(heap, (blocks[k + 1].min_ts, n, k + 1, blocks))

    def _evict_for(self, need: int) -> None:
        victims = ring.fifo_victims(self.size + self._pending, need, self.settings.quota_size, self._fifo_candidates())
        if victims is None:
            raise StorageLimitError(f"Failed to keep quota of '{self.name}'")
        for entry, block_id in victims:
            for b in entry.blocks:
                if b.id == block_id:
                    entry._delete_block(b)
                    self.stats["blocks_evicted"] += 1
                    break

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        for entry in self.entries.values():
            entry.close()
