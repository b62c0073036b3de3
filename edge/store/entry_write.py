"""The write path of an entry: RecordWriter, block choice, buffering/streaming, publication.

Owns: RecordWriter (one record being written), block choice and rotation (spec 15.2), quota
reservation through the bucket, buffered records (one writev per block at flush) and streamed
ones (written through once past STREAM_THRESHOLD), aborts, publication into the in-memory index
at flush, the Durability a flush hands back, and sealing (writing the ``.idx`` of a block that
no longer takes regular appends).
Must not: publish a record before its whole frame is written, sync anything itself (durability
is the caller's next step), call the OS except through ``files``, import trio.

Functions take the Entry (see entry.py); Entry.begin_write and Entry.flush delegate here.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Mapping

from edge.errors import BadRequestError, ConflictError, CorruptRecordError, EdgeError, StorageIOError
from edge.formats import journal as jfmt
from edge.formats.frame import HEADER, NEED_MORE, TRAILER, FrameHead, decode_head, encode_head, encode_meta, encode_trailer
from edge.formats.index import IndexRecord, encode_index
from edge.formats.sizes import record_size
from edge.store import files
from edge.store.blocks import Block
from edge.store.entry_journal import JOURNAL, journal_append
from edge.store.entry_read import locate
from edge.formats.checksum import crc32

if TYPE_CHECKING:
    from edge.store.entry import Entry

STREAM_THRESHOLD = 1 << 20  # buffered bytes above which a record is written through
WRITEBACK_STEP = 2 << 20  # a streaming record starts the disk's writeback every this many bytes


class RecordWriter:
    """One record being written; see Entry.begin_write."""

    def __init__(self, entry: "Entry", block: Block, ts_us: int, length: int, meta: bytes, reserved: int):
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

    @property
    def streaming(self) -> bool:
        return self.stream_start >= 0

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
        if self.received > STREAM_THRESHOLD:
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


def choose_block(entry: "Entry", ts_us: int, length: int) -> Block:
    j = bisect.bisect_right(entry._ids, ts_us)
    if j:
        b = entry.blocks[j - 1]
        count = len(b) + b.pending
        full = (
            b.streamer is not None
            or (count > 0 and b.next_begin + b.reserved + length > entry._max_block_size)
            or count >= entry.bucket.settings.max_block_records
        )
        if not full or b.id == ts_us:
            return b
    if j and (j < len(entry.blocks) or entry.blocks[j - 1].pending or
              (len(entry.blocks[j - 1]) and entry.blocks[j - 1].max_ts > ts_us)):
        entry._disjoint = False
    b = Block(ts_us)
    entry.blocks.insert(j, b)
    entry._ids.insert(j, ts_us)
    if j == len(entry.blocks) - 1 and j > 0:
        entry._to_seal.add(entry.blocks[j - 1].id)
    return b


def drop_if_unused(entry: "Entry", b: Block) -> None:
    if b.file_size == 0 and b.pending == 0 and not len(b):
        i = bisect.bisect_left(entry._ids, b.id)
        if i < len(entry.blocks) and entry.blocks[i] is b:
            del entry.blocks[i]
            del entry._ids[i]


def begin_write(entry: "Entry", ts_us: int, length: int, content_type: str, labels: Mapping[str, str]) -> RecordWriter:
    if ts_us < 0 or length < 0:
        raise BadRequestError("Bad timestamp or length")
    if ts_us in entry._pending_ts or locate(entry, ts_us) is not None:
        raise ConflictError(f"A record with timestamp {ts_us} already exists")
    meta = encode_meta(content_type, labels)
    b = choose_block(entry, ts_us, length)
    b.pending += 1  # protects the block from FIFO eviction while we make room
    need = record_size(ts_us, b.next_begin + b.reserved, length, content_type, labels, False)
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


def release(entry: "Entry", w: RecordWriter) -> None:
    entry._writers.discard(w)
    entry._pending_ts.discard(w.ts_us)
    w.block.pending -= 1
    w.block.reserved -= w.length
    entry.bucket._release(w.reserved)
    w.chunks = []


def abort(entry: "Entry", w: RecordWriter) -> None:
    b = w.block
    if w.streaming and w.state == "open":
        if b.streamer is w:
            fd, _ = entry.bucket.fds.get(entry._blk(b.id))
            files.truncate(fd, w.stream_start)
            b.file_size = w.stream_start
            b.streamer = None
    elif w.streaming and w.state == "ready":
        # the frame is complete on disk; drop it by size if nothing follows, else by journal
        if b.file_size == w.stream_start + len(w.head) + w.length + TRAILER.size:
            fd, _ = entry.bucket.fds.get(entry._blk(b.id))
            files.truncate(fd, w.stream_start)
            b.file_size = w.stream_start
        else:
            poff = w.stream_start + len(w.head)
            journal_append(entry, jfmt.JournalOp(jfmt.OP_REMOVE, w.ts_us, b.id, poff))
            b.removed.append((w.ts_us, poff))
    if w in entry._ready:
        entry._ready.remove(w)
    w.state = "aborted"
    release(entry, w)
    drop_if_unused(entry, b)


def open_block_for_write(entry: "Entry", b: Block) -> int:
    fd, created = entry.bucket.fds.get(entry._blk_key(b.id), create=True)
    if created:
        entry._new_dirs.add(entry.dir)
    if b.has_idx:
        # appending to a sealed block (belated write): its index no longer describes it
        files.unlink(entry._idx(b.id))
        b.has_idx = False
        entry._to_seal.add(b.id)
    return fd


def try_stream(entry: "Entry", w: RecordWriter) -> None:
    b = w.block
    # Only the sole writer of a block may write through; otherwise frames would interleave.
    if b.streamer is not None or b.pending != 1:
        return
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
    b.file_size = files.fd_size(fd)
    b.streamer = w
    w.chunks = []
    entry._touched.add(entry._blk_key(b.id))


def stream_append(entry: "Entry", w: RecordWriter, chunks: list) -> None:
    b = w.block
    fd, _ = entry.bucket.fds.get(entry._blk_key(b.id))
    try:
        b.file_size += files.append(fd, chunks)
    except EdgeError:
        abort(entry, w)
        raise
    if b.file_size - w.kicked >= WRITEBACK_STEP:
        files.start_writeback(fd, w.kicked, b.file_size - w.kicked)
        w.kicked = b.file_size


def flush(entry: "Entry") -> files.Durability:
    """Write every finished buffered record (one writev per block), publish them, return
    what must be synced. The Durability also covers the blocks written by the previous few
    flushes: a record may have been written by another writer's flush whose sync is still
    running, and syncing a clean file again is cheap."""
    ready, entry._ready = entry._ready, []
    by_block: dict[int, list[RecordWriter]] = {}
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
                b.file_size = pos
        for w in writers:
            publish(entry, w)
        entry._touched.add(entry._blk_key(block_id))
    seal_ready_blocks(entry)
    if entry._touched or entry._new_dirs or entry._journal_dirty:
        entry._recent.append((entry._touched, entry._new_dirs, entry._journal_dirty))
        entry._touched, entry._new_dirs, entry._journal_dirty = set(), set(), False
    if error is not None:
        raise error
    return durability(entry)


def durability(entry: "Entry") -> files.Durability:
    d = files.Durability()
    for paths, dirs, journal in entry._recent:
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


def publish(entry: "Entry", w: RecordWriter) -> None:
    b = w.block
    begin = b.next_begin
    b.next_begin += w.length
    ct_labels = entry.metas.intern_known(w.meta, *w.decoded)
    ct, labels = entry.metas.get(ct_labels)
    size = record_size(w.ts_us, begin, w.length, ct, labels, False)
    b.insert(w.ts_us, w.stream_start + len(w.head), w.length, begin, ct_labels, False, size)
    b.idx_dirty = True
    release(entry, w)
    w.state = "published"
    entry.size += size
    entry.record_count += 1
    entry.bucket._size_delta(size)
    entry.bucket.stats["records_written"] += 1
    entry.bucket.stats["bytes_written"] += w.length


def seal_ready_blocks(entry: "Entry") -> None:
    if not entry._to_seal:
        return
    newest = entry.blocks[-1].id if entry.blocks else None
    for block_id in list(entry._to_seal):
        i = bisect.bisect_left(entry._ids, block_id)
        if i >= len(entry._ids) or entry._ids[i] != block_id:
            entry._to_seal.discard(block_id)
            continue
        b = entry.blocks[i]
        if b.id == newest or b.pending or b.streamer is not None:
            continue
        seal(entry, b)
        entry._to_seal.discard(block_id)


def seal(entry: "Entry", b: Block) -> None:


    """Write the .idx of a block that no longer takes regular appends."""
    if b.file_size == 0:
        return
    path = entry._blk(b.id)
    fd, _ = entry.bucket.fds.get(path)
    # No fsync here (three of them, inline, were ~30 % of a 1 KB batch write): the .idx is a
    # cache. Every frame it lists is synced by group commit before it is acknowledged, and
    # entry_load.load_idx trusts an .idx only if its crc, the .blk size it names and the last frame
    # agree with the .blk on disk; a missing, torn or early .idx means a rescan, never loss.
    # Walk the frame headers through a read window: small frames (1 KB records) come 1 MiB
    # at a time (two preads per frame made sealing ~20 % of a 1 KB batch write); after a
    # big frame only the next header's neighbourhood is read, never the payloads.
    recs, pos = [], 0
    window, wstart, frame_len = b"", 0, 0
    while pos < b.file_size:
        head = decode_head(window, pos - wstart) if pos - wstart <= len(window) else NEED_MORE
        if head is NEED_MORE:
            window = files.pread(fd, pos, (1 << 20) if frame_len < (256 << 10) else (64 << 10))
            wstart = pos
            head = decode_head(window)
            if head is NEED_MORE and len(window) >= HEADER.size:
                meta_len = HEADER.unpack_from(window)[3]
                window = files.pread(fd, pos, HEADER.size + meta_len)
                head = decode_head(window)
        if not isinstance(head, FrameHead):
            raise CorruptRecordError(f"Block {b.id} of {entry.bucket.name}/{entry.name} ends inside a frame")
        recs.append(IndexRecord(head.ts_us, pos, head.payload_len, head.meta))
        frame_len = head.frame_len
        pos += frame_len
    files.replace_unsynced(entry._idx(b.id), encode_index(pos, recs))
    b.has_idx = True
    b.idx_dirty = False
