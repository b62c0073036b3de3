"""The write path of an entry: RecordWriter, block choice, buffering/streaming, publication.

Owns: RecordWriter (one record being written), block choice and rotation (spec 15.2), quota
reservation through the bucket, buffered records (one writev per block at flush) and streamed
ones (written through once past BIG_RECORD_BYTES), aborts, publication into the in-memory index
at flush, the Durability a flush hands back, and when blocks get sealed (entry_index writes the
``.idx`` of a block that no longer takes regular appends).
Must not: publish a record before its whole frame is written, sync anything itself (durability
is the caller's next step), call the OS except through ``files``, import trio.

Functions take the entry's state (entry_state.EntryState); Entry.begin_write and Entry.flush
delegate here.
"""

from __future__ import annotations

import bisect
from typing import Mapping

from edge.errors import BadRequestError, ConflictError, EdgeError, StorageIOError
from edge.formats import journal as jfmt
from edge.formats.frame import HEADER, TRAILER, encode_meta, encode_trailer
from edge.formats.metadata import check_record_metadata
from edge.formats.sizes import record_size
from edge.store import entry_blocks, entry_index, files
from edge.store.blocks import IDX_FIXED, IDX_META, IDX_ROW, Block, BlockIndex, Removed
from edge.store.entry_journal import JOURNAL, journal_append
from edge.store.entry_read import locate
from edge.store.entry_state import EntryState, PendingRecord
from edge.formats.checksum import crc32
from edge.model import BIG_RECORD_BYTES


WRITEBACK_STEP = 2 << 20  # a streaming record starts the disk's writeback every this many bytes
WRITEBACK_MIN = 1 << 20  # a flush that writes at least this much starts its writeback at once


class RecordWriter(PendingRecord):
    """One record being written (its fields: entry_state.PendingRecord); see Entry.begin_write."""

    def write(self, chunk: bytes | memoryview) -> None:
        if self.state != "open":
            raise BadRequestError("Record is not open for writing")
        n = len(chunk)
        if self.received + n > self.length:
            self.abort()
            raise BadRequestError("Content is bigger than in content-length")
        self.crc = crc32(chunk, self.crc)
        self.received += n
        if self.streaming:
            stream_append(self._entry, self, [chunk])
            return
        self.chunks.append(bytes(chunk))
        if self.received > BIG_RECORD_BYTES:  # written through from here on
            try_stream(self._entry, self)

    def finish(self) -> None:
        if self.state != "open":
            raise BadRequestError("Record is not open for writing")
        if self.received < self.length:
            self.abort()
            raise BadRequestError("Content is smaller than in content-length")
        if self.streaming:
            stream_append(self._entry, self, [encode_trailer(self.crc)])
            self.block.streamer = None
        self.state = "ready"
        self._entry._ready.append(self)

    def abort(self) -> None:
        if self.state in ("open", "ready"):
            abort(self._entry, self)


def choose_block(entry: EntryState, ts_us: int, length: int) -> Block:
    j = bisect.bisect_right(entry._ids, ts_us)
    if j:
        b = entry.blocks[j - 1]
        count = b.count + b.pending
        full = (
            b.streamer is not None
            or (count > 0 and b.next_begin + b.reserved + length > entry._max_block_size)
            or count >= entry.bucket.settings.max_block_records
        )
        if not full or b.id == ts_us:
            return b
    b = Block(ts_us)
    b.index = BlockIndex()
    entry_blocks.insert(entry, j, b)
    entry.bucket.engine.index_cache.add(b, loaded=False)
    if j == len(entry.blocks) - 1 and j > 0:
        entry._to_seal.add(entry.blocks[j - 1].id)
    return b


def drop_if_unused(entry: EntryState, b: Block) -> None:
    if b.file_size == 0 and b.pending == 0 and not b.count:
        if entry_blocks.position(entry, b) >= 0:
            entry_blocks.remove(entry, b)
            entry.bucket.engine.index_cache.discard(b)
            entry._to_seal.discard(b.id)


def disk_need(length: int, meta: bytes) -> int:
    """Bytes one record costs on disk: its frame, and its share of the block's .idx (an array
    row and, at worst, its own copy of the metadata)."""
    return HEADER.size + len(meta) + length + TRAILER.size + 40 + len(meta)


def begin_write(entry: EntryState, ts_us: int, length: int, content_type: str, labels: Mapping[str, str]) -> RecordWriter:
    if ts_us < 0 or length < 0:
        raise BadRequestError("Bad timestamp or length")
    check_record_metadata(content_type, labels)  # every write path passes here: nothing unreadable is stored
    j = bisect.bisect_right(entry._ids, ts_us)
    if j and entry.blocks[j - 1].unverified:
        # The block this write may go to, checked before the duplicate check looks at it.
        entry_index.verify(entry, entry.blocks[j - 1])
    if ts_us in entry._pending_ts or locate(entry, ts_us) is not None:
        raise ConflictError(f"A record with timestamp {ts_us} already exists")
    meta = encode_meta(content_type, labels)
    b = choose_block(entry, ts_us, length)
    # No index load: the duplicate check above loaded it if the block's range covers ts_us; an
    # append past the newest record needs only the summary (see blocks.py).
    b.pending += 1  # protects the block from FIFO eviction and sealing
    need = disk_need(length, meta)
    try:
        entry.bucket._reserve(entry, need)
    except BaseException:
        b.pending -= 1
        drop_if_unused(entry, b)
        raise
    b.reserved += length
    entry._pending_ts.add(ts_us)
    w = RecordWriter(entry, b, ts_us, length, meta, need)
    w.decoded = (content_type, labels)
    entry._writers.add(w)
    return w


def release(entry: EntryState, w: PendingRecord) -> None:
    entry._writers.discard(w)
    entry._pending_ts.discard(w.ts_us)
    if not entry._writers:
        # A set never shrinks as it empties: after a batch of 1000 records each would keep a
        # table of 2048 slots (~64 KiB per entry for both, 64 MiB at 1000 entries). Fresh ones.
        entry._writers = set()
        entry._pending_ts = set()
    w.block.pending -= 1
    if w.unpublished:
        w.unpublished = False
        w.block.unpublished -= 1
    w.block.reserved -= w.length
    entry.bucket._release(w.reserved)
    w.chunks = []


def abort(entry: EntryState, w: PendingRecord) -> None:
    b = w.block
    if w.streaming and w.state == "open":
        if b.streamer is w:
            fd, _ = entry.bucket.fds.get(entry._blk(b.id))
            files.truncate(fd, w.stream_start)
            entry._disk_delta(w.stream_start - b.file_size)
            b.file_size = w.stream_start
            entry._changed()
            b.streamer = None
    elif w.streaming and w.state == "ready":
        # the frame is complete on disk; drop it by size if nothing follows, else by journal
        if b.file_size == w.stream_start + len(w.head) + w.length + TRAILER.size:
            fd, _ = entry.bucket.fds.get(entry._blk(b.id))
            files.truncate(fd, w.stream_start)
            entry._disk_delta(w.stream_start - b.file_size)
            b.file_size = w.stream_start
            entry._changed()
        else:
            # Counted as a frame that the journal removed, so the block's totals match its file.
            poff = w.stream_start + len(w.head)
            ct, labels = w.decoded
            size = record_size(w.ts_us, b.next_begin, w.length, ct, labels, False)
            b.next_begin += w.length
            b.frames += 1
            b.frames_size += size
            journal_append(entry, jfmt.JournalOp(jfmt.OP_REMOVE, w.ts_us, b.id, poff, size=size, orig=size))
            if b.removed is None:
                b.removed = []
            b.removed.append(Removed(w.ts_us, poff, size))
            entry._live_ops += 1
            entry._due_delta(b, IDX_ROW + IDX_META + len(w.meta) + (0 if b.idx_due else IDX_FIXED))
    if w in entry._ready:
        entry._ready.remove(w)
    w.state = "aborted"
    release(entry, w)
    drop_if_unused(entry, b)


def open_block_for_write(entry: EntryState, b: Block) -> int:
    fd, created = entry.bucket.fds.get(entry._blk_key(b.id), create=True)
    if created:
        entry._new_dirs.add(entry.dir)
    if b.unverified:
        entry_index.verify(entry, b)
    if b.has_idx:
        # appending to a sealed block (a belated write, or the newest block after a restart)
        entry_index.unseal(entry, b)
        if b is not entry.blocks[-1]:
            entry._to_seal.add(b.id)
    return fd


def try_stream(entry: EntryState, w: PendingRecord) -> None:
    b = w.block
    # Only the sole writer of a block may write through; otherwise frames would interleave.
    if b.streamer is not None or b.pending != 1:
        return
    # From now on the file holds a frame that is not published: the index must be loaded now
    # (it cannot be rebuilt from the file until the frame is published) and stays pinned.
    entry_index.ensure_index(entry, b)
    fd = open_block_for_write(entry, b)
    start = b.file_size
    try:
        files.append(fd, [w.head, *w.chunks])
    except EdgeError:
        files.truncate(fd, start)
        w.state = "open"
        abort(entry, w)
        raise
    w.stream_start = start
    w.kicked = start
    w.unpublished = True
    b.unpublished += 1
    size = files.fd_size(fd)
    entry._disk_delta(size - b.file_size)
    b.file_size = size
    entry._changed()
    b.streamer = w
    w.chunks = []
    entry._touched.add(entry._blk_key(b.id))


def stream_append(entry: EntryState, w: RecordWriter, chunks: list) -> None:
    b = w.block
    fd, _ = entry.bucket.fds.get(entry._blk_key(b.id))
    try:
        n = files.append(fd, chunks)
        b.file_size += n
        entry._disk_delta(n)
    except EdgeError:
        abort(entry, w)
        raise
    if b.file_size - w.kicked >= WRITEBACK_STEP:
        files.start_writeback(fd, w.kicked, b.file_size - w.kicked)
        w.kicked = b.file_size


def flush(entry: EntryState) -> files.Durability:
    """Write every finished buffered record (one writev per block), publish them, return
    what must be synced. The Durability also covers the blocks written by the previous few
    flushes: a record may have been written by another writer's flush whose sync is still
    running, and syncing a clean file again is cheap."""
    ready, entry._ready = entry._ready, []
    token = files.SyncToken()  # done once this flush's group commit is: until then FIFO spares
    by_block: dict[int, list[PendingRecord]] = {}
    for w in ready:
        by_block.setdefault(w.block.id, []).append(w)
    error: BaseException | None = None
    for block_id, writers in by_block.items():
        b = writers[0].block
        buffered = [w for w in writers if not w.streaming]
        if buffered:
            try:
                fd = open_block_for_write(entry, b)
                start = b.file_size
                iov: list[bytes] = []
                for w in buffered:
                    iov.append(w.head)
                    iov.extend(w.chunks)
                    iov.append(encode_trailer(w.crc))
                try:
                    files.append(fd, iov)
                except EdgeError:
                    files.truncate(fd, start)  # nothing of a failed batch may stay behind
                    raise
            except BaseException as exc:
                for w in buffered:
                    w.state = "aborted"
                    release(entry, w)
                drop_if_unused(entry, b)
                error = error or exc
                writers = [w for w in writers if w.streaming]
            else:
                pos = start
                for w in buffered:
                    w.stream_start = pos  # frame offset, same meaning as for streamed frames
                    pos += len(w.head) + w.length + TRAILER.size
                entry._disk_delta(pos - b.file_size)
                b.file_size = pos
                if pos - start >= WRITEBACK_MIN:
                    files.start_writeback(fd, start, pos - start)   # the sync after this flush waits less
        for w in writers:
            publish(entry, w)
        if writers:
            if b.acks is None:
                b.acks = [token]
            else:
                b.acks.append(token)
        entry._touched.add(entry._blk_key(block_id))
    seal_ready_blocks(entry)
    entry.bucket.engine.index_cache.shrink()  # what the publishes above added
    if entry._touched or entry._new_dirs or entry._journal_dirty:
        entry._recent.append((entry._touched, entry._new_dirs, entry._journal_dirty, token))
        entry._touched, entry._new_dirs, entry._journal_dirty = set(), set(), False
    if error is not None:
        token.done = True  # nobody will wait for this flush's sync
        raise error
    return durability(entry, token)


def durability(entry: EntryState, token: files.SyncToken) -> files.Durability:
    """The syncs a writer waits for: this flush's and the last few flushes' files (see flush),
    and every folder with a removal not yet synced (``files.UnsyncedFolders``), so FIFO's
    evictions are on the disk before the write that needed their space is answered."""
    d = files.Durability()
    d.add_token(token)
    unsynced = entry.bucket.engine.unsynced
    if unsynced:
        unsynced.cover(d, token)  # with the trash to unlink, if this is the first since a removal
    for paths, dirs, journal, synced in entry._recent:
        if synced.ok:
            # That flush's group commit is done: its files and its new names are on the disk.
            # Syncing them again would cost a folder fsync per flush for nothing (a folder is
            # synced once for each name created or removed in it, edge.durable).
            continue
        for p in paths:
            try:
                fd, _ = entry.bucket.fds.get(p)
            except StorageIOError:
                continue  # block deleted meanwhile (FIFO, removal)
            d.add_fd(p, fd)
        for dd in dirs:
            d.add_dir(dd)
        if journal:
            jp = entry.dir / JOURNAL
            try:
                fd, _ = entry.bucket.fds.get(jp)
                d.add_fd(str(jp), fd)
            except StorageIOError:
                pass
    return d


def publish(entry: EntryState, w: PendingRecord) -> None:
    b = w.block
    idx = b.index  # None: not loaded (an in-order append needs none; see blocks.py)
    begin = b.next_begin
    b.next_begin += w.length
    ct, labels = w.decoded
    size = record_size(w.ts_us, begin, w.length, ct, labels, False)
    if idx is not None:
        metas = len(idx.metas)
        idx.insert(w.ts_us, w.stream_start + len(w.head), w.length, begin, idx.intern(w.meta, w.decoded), False)
        new_meta = len(idx.metas) > metas
    else:
        new_meta = True  # not known without the index: counted as new (the quota's upper bound)
    due = IDX_ROW + (IDX_META + len(w.meta) if new_meta else 0) + (0 if b.idx_due else IDX_FIXED)
    entry._due_delta(b, due)
    ts = w.ts_us
    entry._changed()
    if not b.count:
        b.min_ts = b.max_ts = ts
        grew = True
    else:
        if ts < b.min_ts:
            b.min_ts = ts
        grew = ts > b.max_ts
        if grew:
            b.max_ts = ts
    b.count += 1
    b.frames += 1
    b.size += size
    b.frames_size += size
    if grew and (entry.blocks[-1] is not b or b.id in entry._overlaps):
        entry_blocks.note_bounds(entry, b)  # (the newest block overlaps no successor)
    if idx is not None:
        entry.bucket.engine.index_cache.recharge(b)
    release(entry, w)
    w.state = "published"
    entry.size += size
    entry.record_count += 1
    entry.bucket._size_delta(size)
    entry.bucket.stats["records_written"] += 1
    entry.bucket.stats["bytes_written"] += w.length


def seal_ready_blocks(entry: EntryState) -> None:
    if not entry._to_seal:
        return
    newest = entry.blocks[-1].id if entry.blocks else None
    for block_id in list(entry._to_seal):
        i = bisect.bisect_left(entry._ids, block_id)
        if i >= len(entry._ids) or entry._ids[i] != block_id:
            entry._to_seal.discard(block_id)
            continue
        b = entry.blocks[i]
        if b.id == newest or b.busy:
            continue
        if not b.has_idx:
            entry_index.seal(entry, b)
        entry._to_seal.discard(block_id)


def seal_all(entry: EntryState) -> None:
    """At shutdown: every block without writers gets its index and summary record."""
    for b in list(entry.blocks):
        if not b.has_idx and not b.busy and b.file_size > 0:
            entry_index.seal(entry, b)
    entry._to_seal.clear()
