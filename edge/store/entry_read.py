"""The read path of an entry: finding records and reading their payloads.

Owns: RecordRef (what a reader holds), the lookup of a timestamp in the entry's blocks (the
block map's candidates, then the loaded index of each), the entry's exact oldest/latest
timestamps, ordered iteration over a time range (merging blocks that overlap in time), and
payload reads that verify the frame's crc (streamed, batched in one pread, ranged, or through a
dup'd fd).
Must not: change what is stored (loading an index into the cache and the bucket's corrupt-read
counter are its only writes), call the OS except through ``files``, import trio.

Functions take the entry's state (entry_state.EntryState); Entry's read methods delegate here.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generator, Iterator, Mapping

from edge.errors import CorruptRecordError, NotFoundError
from edge.formats.frame import TRAILER
from edge.store import entry_blocks, files
from edge.store.blocks import Block, BlockIndex
from edge.store.entry_index import ensure_index
from edge.formats.checksum import crc32

if TYPE_CHECKING:
    from edge.store.entry_state import EntryState


@dataclass(frozen=True)
class RecordRef:
    entry: str
    ts_us: int
    size: int
    content_type: str
    labels: Mapping[str, str]
    # private to the store: where the payload lives
    block_id: int = field(default=0, repr=False, compare=False)
    payload_offset: int = field(default=0, repr=False, compare=False)


def make_ref(entry: EntryState, b: Block, idx: BlockIndex, i: int) -> RecordRef:
    ct, labels = idx.labels_of(i)
    return RecordRef(entry.name, idx.ts[i], idx.plen[i], ct, labels, b.id, idx.poff[i])


def locate(entry: EntryState, ts_us: int) -> tuple[Block, BlockIndex, int] | None:
    """The block, its index and the position of ``ts_us``; only blocks whose bounds cover it are
    loaded (an append past the newest record loads nothing)."""
    for b in entry_blocks.candidates(entry, ts_us):
        if b.covers(ts_us):
            idx = ensure_index(entry, b)
            i = idx.find(ts_us)
            if i >= 0:
                return b, idx, i
    return None


def locate_or_raise(entry: EntryState, ts_us: int) -> tuple[Block, BlockIndex, int]:
    found = locate(entry, ts_us)
    if found is None:
        raise NotFoundError(f"Record {ts_us} not found in entry {entry.bucket.name}/{entry.name}")
    return found


def get(entry: EntryState, ts_us: int) -> RecordRef:
    return make_ref(entry, *locate_or_raise(entry, ts_us))


def _newest(entry: EntryState) -> Block | None:
    """The block holding the entry's newest record: the last non-empty block, unless a block of
    the overlap set reaches further. Bounds made exact where they decide it."""
    while True:
        best = None
        for b in reversed(entry.blocks):
            if b.count:
                best = b
                break
        if best is None:
            return None
        for block_id in entry._overlaps:
            k = bisect.bisect_left(entry._ids, block_id)
            o = entry.blocks[k]
            if o.count and o.max_ts > best.max_ts:
                best = o
        if best.bounds_exact:
            return best
        ensure_index(entry, best)  # makes its bounds exact; look again


def latest_ts(entry: EntryState) -> int:
    b = _newest(entry)
    return b.max_ts if b is not None else 0


def oldest_ts(entry: EntryState) -> int:
    """The oldest record: the first non-empty block's, unless a later block (ids ascend, so only
    one whose id is below the best so far) holds an older one."""
    best: int | None = None
    for b in entry.blocks:
        if best is not None and b.id >= best:
            break
        if not b.count:
            continue
        if not b.bounds_exact:
            ensure_index(entry, b)
            if not b.count:
                continue
        if best is None or b.min_ts < best:
            best = b.min_ts
    return best if best is not None else 0


def latest(entry: EntryState) -> RecordRef:
    b = _newest(entry)
    if b is None:
        raise NotFoundError(f"Record 0 not found in entry {entry.bucket.name}/{entry.name}")
    idx = ensure_index(entry, b)
    return make_ref(entry, b, idx, len(idx) - 1)


def iter_refs(entry: EntryState, start_us: int | None = None, stop_us: int | None = None) -> Iterator[RecordRef]:
    """Ascending ts in [start, stop). Blocks can overlap in time (belated writes into a full
    block start a new one), so overlapping neighbours are merged; each block is loaded and
    snapshotted when reached, giving a consistent view per block. The block map is looked up
    again after every group, so blocks evicted or added meanwhile are handled."""
    k = 0 if start_us is None else entry_blocks.first_covering(entry, start_us)
    after: int | None = None  # id of the last block already done
    while True:
        if after is not None:
            k = bisect.bisect_right(entry._ids, after)
        if k >= len(entry.blocks):
            return
        b = entry.blocks[k]
        if stop_us is not None and b.id >= stop_us:
            return
        group = [b]
        hi = b.max_ts if b.count else b.id
        j = k + 1
        while j < len(entry.blocks) and entry.blocks[j].id <= hi:
            g = entry.blocks[j]
            group.append(g)
            if g.count:
                hi = max(hi, g.max_ts)
            j += 1
        after = group[-1].id
        snaps = []
        for g in group:
            if not g.count or (start_us is not None and g.max_ts < start_us):
                continue
            idx = ensure_index(entry, g)
            lo, up = idx.range(start_us, stop_us)
            if lo < up:
                snaps.append([make_ref(entry, g, idx, i) for i in range(lo, up)])
        if len(snaps) == 1:
            yield from snaps[0]
        elif snaps:
            yield from heapq.merge(*snaps, key=lambda r: r.ts_us)


def read_fd(entry: EntryState, ref: RecordRef) -> int:
    fd, _ = entry.bucket.fds.get(entry._blk_key(ref.block_id))
    return fd


def _checked_chunks(entry: EntryState, fd: int, ref: RecordRef, chunk_size: int,
                    bufs: tuple[bytearray, bytearray] | None = None) -> Generator[bytes | memoryview, None, None]:
    """``ref``'s payload through ``fd`` in chunks, then its trailer checked against their crc.
    Touches no entry state but the corrupt-read counter (see verify_payload).

    With ``bufs`` (two equal buffers) the chunks are memoryviews read alternately into them: a
    chunk stays valid while the next one is read (so a caller may hold one back), not longer."""
    crc = 0
    pos, left = ref.payload_offset, ref.size
    views = None
    if bufs is not None:
        views = (memoryview(bufs[0]), memoryview(bufs[1]))
        chunk_size = len(views[0])
    k = 0
    chunk: bytes | memoryview
    while left > 0:
        if views is not None:
            view = views[k & 1][: min(chunk_size, left)]
            k += 1
            chunk = view[: files.pread_into(fd, pos, view)]
        else:
            chunk = files.pread(fd, pos, min(chunk_size, left))
        if not chunk:
            raise CorruptRecordError(f"Record {ref.ts_us} in {entry.bucket.name}/{entry.name} is truncated")
        crc = crc32(chunk, crc)
        pos += len(chunk)
        left -= len(chunk)
        yield chunk
    trailer = files.pread(fd, pos, TRAILER.size)
    if len(trailer) != TRAILER.size or TRAILER.unpack(trailer)[0] != crc:
        entry.bucket.stats["corrupt_reads"] += 1
        raise CorruptRecordError(f"Record {ref.ts_us} in {entry.bucket.name}/{entry.name} is corrupted")


def read_payload(entry: EntryState, ref: RecordRef, chunk_size: int = 1 << 20,
                 bufs: tuple[bytearray, bytearray] | None = None) -> Generator[bytes | memoryview, None, None]:
    # a generator itself, so the block's fd is looked up at the first chunk, not at the call
    yield from _checked_chunks(entry, read_fd(entry, ref), ref, chunk_size, bufs)


def read_verified(entry: EntryState, refs: list[RecordRef], span_limit: int = 4 << 20) -> list[bytes | memoryview]:
    """The payloads of ``refs`` (in order), each verified against its crc.

    Neighbouring frames of one block (only a frame head between them) are read with one
    pread: a batch of 85 x 1 KB records costs one syscall instead of 170. A run is cut at a
    gap (removed records), at another block and at ``span_limit`` bytes.
    """
    out: list[bytes | memoryview] = []
    i, n = 0, len(refs)
    tsize = TRAILER.size
    while i < n:
        first = refs[i]
        base = first.payload_offset
        end = base + first.size + tsize
        j = i + 1
        while j < n:
            r = refs[j]
            if (r.block_id != first.block_id or r.payload_offset < end or r.payload_offset - end > 4096
                    or r.payload_offset + r.size + tsize - base > span_limit):
                break
            end = r.payload_offset + r.size + tsize
            j += 1
        view = memoryview(files.pread(read_fd(entry, first), base, end - base))
        for r in refs[i:j]:
            off = r.payload_offset - base
            payload = view[off : off + r.size]
            trailer = view[off + r.size : off + r.size + tsize]
            if len(trailer) != tsize:
                raise CorruptRecordError(f"Record {r.ts_us} in {entry.bucket.name}/{entry.name} is truncated")
            if TRAILER.unpack(trailer)[0] != crc32(payload):
                entry.bucket.stats["corrupt_reads"] += 1
                raise CorruptRecordError(f"Record {r.ts_us} in {entry.bucket.name}/{entry.name} is corrupted")
            out.append(payload)
        i = j
    return out


def read_range(entry: EntryState, ref: RecordRef, offset: int, length: int) -> bytes:
    length = max(0, min(length, ref.size - offset))
    return files.pread(read_fd(entry, ref), ref.payload_offset + offset, length)


def payload_fd(entry: EntryState, ref: RecordRef) -> tuple[int, int]:
    """(dup'd fd, payload offset) for os.sendfile; the caller closes the fd."""
    return files.dup(read_fd(entry, ref)), ref.payload_offset


def verify_payload(entry: EntryState, fd: int, ref: RecordRef, chunk_size: int = 1 << 20) -> None:
    """Check ``ref``'s payload against its stored crc, reading through ``fd`` (a ``payload_fd``
    dup). Touches no entry state but the corrupt-read counter, so it may run in a worker
    thread while the same bytes are sendfile'd (pread and crc32 release the GIL).
    Raises CorruptRecordError on a mismatch or a short block file."""
    for _ in _checked_chunks(entry, fd, ref, chunk_size):
        pass
