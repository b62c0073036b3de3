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

This module holds the Entry's public methods; its state, naming and totals are
``entry_state.EntryState`` (its base class), and the work is done by modules of functions that
take that state, split by concern (each states its own rules):

- ``entry_write``: RecordWriter, begin_write, buffering/streaming, flush and publication
- ``entry_read``: RecordRef, get/latest/iter_refs, exact bounds and the payload reads
- ``entry_journal``: update_labels/remove_record, block deletion, journal.log and its compaction
- ``entry_index``: loading a block's index on demand, sealing, ``blocks.sum``
- ``entry_blocks``: the block map (order, overlaps, the bucket's FIFO key)
- ``entry_load``: start-up loading and recovery (summary trust, rescans, torn tails, replay)

The underscore fields of the state are private to these modules; the rest of the store uses only the
public methods (and ``_recent``/``_delete_block``/``_fifo_key``, for renames, shutdown and FIFO).
"""

from __future__ import annotations

from typing import Generator, Iterator, Mapping

from edge.model import EntryInfo
from edge.store import entry_journal, entry_load, entry_read, entry_write, files
from edge.store.blocks import Block
from edge.store.entry_journal import JOURNAL
from edge.store.entry_read import RecordRef
from edge.store.entry_state import META_BLOCK_SIZE, EntryState
from edge.store.entry_write import RecordWriter

__all__ = ["Entry", "RecordRef", "RecordWriter", "JOURNAL", "MARKER", "META_BLOCK_SIZE"]

MARKER = ".entry"


class Entry(EntryState):
    """An entry's public methods over its state (entry_state.EntryState: fields, naming, totals)."""

    # --- info -------------------------------------------------------------------------------

    @property
    def oldest_ts(self) -> int:
        return entry_read.oldest_ts(self)

    @property
    def latest_ts(self) -> int:
        return entry_read.latest_ts(self)

    def info(self) -> EntryInfo:
        """The same object while nothing it reports changed (GET /b/<bucket> asks for 1000
        entries; the wire layer encodes each object once). Valid while ``_gen`` (bumped by
        every change of bounds and blocks) and the running totals are what they were."""
        key = (self._gen, self.size, self.record_count, len(self.blocks), self.name)
        if self._info is None or key != self._info_key:
            self._info = EntryInfo(self.name, self.size, self.record_count, self.block_count, self.oldest_ts,
                                   self.latest_ts)
            # computing the bounds may load an index (exact bounds: _gen moves): key taken before
            self._info_key = key
        return self._info

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
                entry_write.abort(self, w)
        self.flush()
        entry_write.seal_all(self)
        self._recent.clear()

    def load(self, report: list[str]) -> None:
        """Read block indexes (or rescan blocks), recover torn tails, replay the journal; see
        entry_load.load."""
        entry_load.load(self, report)
        self._changed()
