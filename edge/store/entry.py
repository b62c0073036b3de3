"""One entry: its blocks, journal, writers and readers.

Owns: the entry folder (``<id>.blk``, ``<id>.idx``, ``blocks.sum``, ``journal.log``, ``.entry``),
block choice and rotation (spec 15.2), buffered and streamed record writes, publication at flush,
label updates/removals through the journal, startup recovery of the entry, and its running
totals: size (spec formula), record count, bytes on disk.
Must not: call the OS except through ``files``, decide quotas (it asks its bucket), import trio.

Visibility rule: a record is in the index only after flush() wrote its whole frame; readers
therefore never see a partial or aborted record. Durability is the caller's next step.

Memory: every block's summary (``blocks.Block``) is in memory, its per-record index only while it
is in the engine's ``IndexCache``; every read or write goes through ``entry_index.ensure_index``.

This module holds the Entry's state, its naming and info, and its public methods; the work is
done by modules of functions that take the Entry, split by concern (each states its own rules):

- ``entry_write``: RecordWriter, begin_write, buffering/streaming, flush and publication
- ``entry_read``: RecordRef, get/latest/iter_refs, exact bounds and the payload reads
- ``entry_journal``: update_labels/remove_record, block deletion, journal.log and its compaction
- ``entry_index``: loading a block's index on demand, sealing, ``blocks.sum``
- ``entry_blocks``: the block map (order, overlaps, the bucket's FIFO key)
- ``entry_load``: start-up loading and recovery (summary trust, rescans, torn tails, replay)

The underscore fields below are private to these modules; the rest of the store uses only the
public methods (and ``_recent``/``_delete_block``/``_fifo_key``, for renames, shutdown and FIFO).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Generator, Iterator, Mapping

from edge.formats.metadata import is_meta_entry
from edge.model import EntryInfo
from edge.store import entry_journal, entry_load, entry_read, entry_write, files
from edge.store.blocks import Block, block_file_name, index_file_name
from edge.store.entry_journal import JOURNAL
from edge.store.entry_read import RecordRef
from edge.store.entry_write import RecordWriter

if TYPE_CHECKING:
    from edge.store.bucket import Bucket

__all__ = ["Entry", "RecordRef", "RecordWriter", "JOURNAL", "MARKER", "META_BLOCK_SIZE"]

META_BLOCK_SIZE = 128 * 1024  # upstream's block size for $meta entries
MARKER = ".entry"
_RECENT_FLUSHES = 4


class Entry:
    def __init__(self, bucket: "Bucket", name: str):
        self.bucket = bucket
        self.name = name
        self.blocks: list[Block] = []
        self._ids: list[int] = []
        self.size = 0
        self.record_count = 0
        self.disk = 0  # bytes of every file in the entry folder (apparent size)
        self._due = 0  # bytes the indexes of its unsealed blocks will take (see _due_delta)
        self._pending_ts: set[int] = set()
        self._writers: set[RecordWriter] = set()
        self._ready: list[RecordWriter] = []
        self._recent: deque[tuple[set[str], set[Path], bool]] = deque(maxlen=_RECENT_FLUSHES)
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
        self._blk_owner: tuple[str, str] | None = None
        self._blk_keys: dict[int, str] = {}

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

    # --- info -------------------------------------------------------------------------------

    @property
    def oldest_ts(self) -> int:
        return entry_read.oldest_ts(self)

    @property
    def latest_ts(self) -> int:
        return entry_read.latest_ts(self)

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

    def info(self) -> EntryInfo:
        return EntryInfo(self.name, self.size, self.record_count, self.block_count, self.oldest_ts, self.latest_ts)

    # --- reading (entry_read) ---------------------------------------------------------------

    def get(self, ts_us: int) -> RecordRef:
        return entry_read.get(self, ts_us)

    def latest(self) -> RecordRef:
        return entry_read.latest(self)

    def iter_refs(self, start_us: int | None = None, stop_us: int | None = None) -> Iterator[RecordRef]:
        """Ascending ts in [start, stop); see entry_read.iter_refs."""
        return entry_read.iter_refs(self, start_us, stop_us)

    def read_payload(self, ref: RecordRef, chunk_size: int = 1 << 20,
                     bufs: tuple[bytearray, bytearray] | None = None) -> Generator[bytes | memoryview, None, None]:
        """Chunks, crc-checked after the last; with ``bufs`` see entry_read._checked_chunks."""
        return entry_read.read_payload(self, ref, chunk_size, bufs)

    def read_verified(self, refs: list[RecordRef], span_limit: int = 4 << 20) -> list[bytes | memoryview]:
        """The payloads of ``refs`` (in order), each verified; see entry_read.read_verified."""
        return entry_read.read_verified(self, refs, span_limit)

    def read_range(self, ref: RecordRef, offset: int, length: int) -> bytes:
        return entry_read.read_range(self, ref, offset, length)

    def payload_fd(self, ref: RecordRef) -> tuple[int, int]:
        """(dup'd fd, payload offset) for os.sendfile; the caller closes the fd."""
        return entry_read.payload_fd(self, ref)

    def verify_payload(self, fd: int, ref: RecordRef, chunk_size: int = 1 << 20) -> None:
        """Check ``ref``'s payload through a ``payload_fd`` dup; safe in a worker thread (see
        entry_read.verify_payload). Raises CorruptRecordError on a mismatch or a short file."""
        entry_read.verify_payload(self, fd, ref, chunk_size)

    # --- writing (entry_write) --------------------------------------------------------------

    def begin_write(self, ts_us: int, length: int, content_type: str, labels: Mapping[str, str]) -> RecordWriter:
        return entry_write.begin_write(self, ts_us, length, content_type, labels)

    def flush(self) -> files.Durability:
        """Write and publish every finished record, return what must be synced; see
        entry_write.flush."""
        return entry_write.flush(self)

    # --- metadata changes (entry_journal) ---------------------------------------------------

    def update_labels(self, ts_us: int, update: Mapping[str, str]) -> None:
        entry_journal.update_labels(self, ts_us, update)

    def remove_record(self, ts_us: int) -> None:
        entry_journal.remove_record(self, ts_us)

    def _delete_block(self, b: Block) -> int:
        """Remove a block's files and index; returns the bytes of size freed (the bucket's
        FIFO eviction calls this)."""
        return entry_journal.delete_block(self, b)

    def evict_oldest_block(self) -> int:
        return entry_journal.evict_oldest_block(self)

    # --- lifecycle (entry_load for start-up) ------------------------------------------------

    def close(self) -> None:
        """Abort open writers, flush, seal every block (the newest too: the next start then scans
        nothing; its first write unseals it again)."""
        for w in list(self._writers):
            if w.state == "open":
                w.abort()
        self.flush()
        entry_write.seal_all(self)
        self._recent.clear()

    def load(self, report: list[str]) -> None:
        """Read block indexes (or rescan blocks), recover torn tails, replay the journal; see
        entry_load.load."""
        entry_load.load(self, report)
