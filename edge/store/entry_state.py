"""The data of an entry and of a record being written, and what an entry sees of its bucket and engine.

Owns: ``EntryState`` (every field of an entry, its naming and its running totals; ``entry.Entry``
adds the public methods), ``PendingRecord`` (every field of one record being written;
``entry_write.RecordWriter`` adds write/finish/abort), and the two Protocols of what lies above
an entry: ``BucketSide`` (what entry code uses of its bucket, ``bucket.Bucket`` is one) and
``EngineSide`` (what buckets and entries use of the engine, ``engine.Engine`` is one).
Must not: do I/O, hold logic beyond naming and the delta bookkeeping, import any store module
above ``blocks``/``files``/``torn`` (not even for annotations).

Why a module of state: the functions of an entry are split by concern (entry_write, entry_read,
entry_journal, entry_index, entry_blocks, entry_load) and each takes the entry. They take this
state, not ``Entry``, and they see the bucket and the engine through the Protocols, so the store's
imports draw as a tree, annotations included (tests/unit/test_layers.py checks it):
files, ring, blocks -> torn -> entry_state -> entry_* -> entry -> bucket -> engine.
"""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol

from edge.formats.frame import encode_head
from edge.formats.metadata import is_meta_entry
from edge.store.blocks import Block, block_file_name, index_file_name

if TYPE_CHECKING:
    from edge.durable import Damage
    from edge.model import BucketSettings, EntryInfo
    from edge.store.blocks import IndexCache
    from edge.store.files import FdCache, SyncToken, UnsyncedFolders
    from edge.store.torn import TornFiles

META_BLOCK_SIZE = 128 * 1024  # upstream's block size for $meta entries
_RECENT_FLUSHES = 4


class EngineSide(Protocol):
    """What a bucket and its entries use of the engine (engine.Engine)."""

    data_path: Path
    fds: FdCache
    index_cache: IndexCache
    unsynced: UnsyncedFolders
    torn: TornFiles
    stats: Counter[str]
    recovery_report: list[str]
    damaged: list[Damage]
    loaded: bool
    disk_usage: int
    pending: int
    due: int

    def check_room(self, need: int) -> None: ...


class BucketSide(Protocol):
    """What an entry uses of its bucket (bucket.Bucket)."""

    name: str
    settings: BucketSettings
    stats: Counter[str]

    @property
    def engine(self) -> EngineSide: ...

    @property
    def path(self) -> Path: ...

    @property
    def fds(self) -> FdCache: ...

    def _size_delta(self, delta: int) -> None: ...

    def _disk_delta(self, delta: int) -> None: ...

    def _due_delta(self, delta: int) -> None: ...

    def _reserve(self, entry: EntryState, need: int) -> None: ...

    def _release(self, reserved: int) -> None: ...

    def _fifo_note(self, entry: EntryState) -> None: ...

    _bounds_gen: int  # bumped with every entry's _gen (the bucket's cached time bounds)


class PendingRecord:
    """One record being written: its fields (entry_write.RecordWriter adds the methods)."""

    def __init__(self, entry: EntryState, block: Block, ts_us: int, length: int, meta: bytes, reserved: int):
        self._entry = entry
        self.block = block
        self.ts_us = ts_us
        self.length = length
        self.head = encode_head(ts_us, length, meta)
        self.meta = meta
        self.reserved = reserved  # bytes reserved against the quota
        self.received = 0
        self.crc = 0
        self.chunks: list[bytes] = []
        self.state = "open"  # open -> ready -> published | aborted
        self.stream_start = -1  # file offset of the frame when streaming
        self.decoded: tuple[str, Mapping[str, str]] = ("", {})  # what ``meta`` encodes
        self.kicked = 0  # streaming: file offset up to which writeback was started
        self.unpublished = False  # its frame (streamed) is in the file, not published yet

    @property
    def streaming(self) -> bool:
        return self.stream_start >= 0


class EntryState:
    """Every field of an entry (see entry.py for what they mean to its modules)."""

    def __init__(self, bucket: BucketSide, name: str):
        self.bucket = bucket
        self.name = name
        self.blocks: list[Block] = []
        self._ids: list[int] = []
        self.size = 0
        self.record_count = 0
        self.disk = 0  # bytes of every file in the entry folder (apparent size)
        self._due = 0  # bytes the indexes of its unsealed blocks will take (see _due_delta)
        self._pending_ts: set[int] = set()
        self._writers: set[PendingRecord] = set()
        self._ready: list[PendingRecord] = []
        # The last few flushes: (block paths, new folders, journal written, their group commit's token)
        self._recent: deque[tuple[set[str], set[Path], bool, SyncToken]] = deque(maxlen=_RECENT_FLUSHES)
        self._touched: set[str] = set()  # block paths written since the last flush() returned
        self._new_dirs: set[Path] = set()
        self._journal_dirty = False
        self._journal_ops = 0  # ops in journal.log
        self._journal_size = 0
        self._journal_stale = False  # journal.log names ops the blocks no longer have
        self._live_ops = 0  # ops the blocks' journal state holds (labelled + removed)
        self._summary_size = 0
        self._summary_records = 0
        self._to_seal: set[int] = set()
        self._overlaps: set[int] = set()  # see entry_blocks
        self._fifo_key: int | None = None  # the bucket's FIFO heap knows us by this block id
        # Bumped (``_changed``) by every change of what info() reports beyond size/count/blocks/
        # name (time bounds, a block's first bytes): info() is cached under it (entry.Entry.info).
        self._gen = 0
        self._info: EntryInfo | None = None
        self._info_key: tuple[int, int, int, int, str] | None = None
        self._blk_owner: tuple[str, str] | None = None
        self._blk_keys: dict[int, str] = {}

    def _changed(self) -> None:
        """Something info() reports (bounds, records, blocks) changed: its cache and the
        bucket's cached bounds are stale."""
        self._gen += 1
        self.bucket._bounds_gen += 1

    # --- naming -----------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.bucket.path / self.name

    @property
    def is_meta(self) -> bool:
        return is_meta_entry(self.name)

    def _blk(self, block_id: int) -> Path:
        return self.dir / block_file_name(block_id)

    def _blk_key(self, block_id: int) -> str:
        """``str(self._blk(block_id))`` from a cache: three Path joins per record read cost
        ~20 % of a 1 KB batch read. The cache follows bucket and entry renames."""
        owner = (self.bucket.name, self.name)
        if self._blk_owner != owner:
            self._blk_owner = owner
            self._blk_keys = {}
        key = self._blk_keys.get(block_id)
        if key is None:
            key = self._blk_keys[block_id] = str(self.dir / block_file_name(block_id))
        return key

    def _idx(self, block_id: int) -> Path:
        return self.dir / index_file_name(block_id)

    @property
    def _max_block_size(self) -> int:
        return META_BLOCK_SIZE if self.is_meta else self.bucket.settings.max_block_size

    # --- totals -----------------------------------------------------------------------------

    @property
    def block_count(self) -> int:
        # Blocks without bytes exist only while their first writer is in flight (at the end).
        n = len(self.blocks)
        for b in reversed(self.blocks):
            if b.file_size > 0:
                break
            n -= 1
        return n

    def _disk_delta(self, delta: int) -> None:
        self.disk += delta
        self.bucket._disk_delta(delta)

    def _due_delta(self, b: Block, delta: int) -> None:
        """Bytes ``b``'s index will take once sealed (counted against quotas before they exist)."""
        b.idx_due += delta
        self._due += delta
        self.bucket._due_delta(delta)

    @property
    def has_unflushed(self) -> bool:
        return bool(self._writers or self._ready)
