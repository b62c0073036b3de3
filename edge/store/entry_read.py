"""The read path of an entry: finding records and reading their payloads.

Owns: RecordRef (what a reader holds), the lookup of a timestamp in the entry's blocks, ordered
iteration over a time range (merging blocks that overlap in time), and payload reads that
verify the frame's crc (streamed, batched in one pread, ranged, or through a dup'd fd).
Must not: change entry state (the only write is the bucket's corrupt-read counter), call the OS
except through ``files``, import trio.

Functions take the Entry (see entry.py); Entry's read methods delegate here.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Mapping

from edge.errors import CorruptRecordError, NotFoundError
from edge.formats.frame import TRAILER
from edge.store import files
from edge.store.blocks import Block
from edge.formats.checksum import crc32

if TYPE_CHECKING:
    from edge.store.entry import Entry



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


def make_ref(entry: "Entry", b: Block, i: int) -> RecordRef:
    ct, labels = entry.metas.get(b.meta[i])
    return RecordRef(entry.name, b.ts[i], b.plen[i], ct, labels, b.id, b.poff[i])


def locate(entry: "Entry", ts_us: int) -> tuple[Block, int] | None:
    # ts lives in the block with the greatest id <= ts; only after a belated write rotated
    # into a new block can an earlier block's range cover it too (then search them all).
    j = bisect.bisect_right(entry._ids, ts_us)
    candidates = entry.blocks[j - 1 : j] if entry._disjoint else reversed(entry.blocks[:j])
    for b in candidates:
        i = b.find(ts_us)
        if i >= 0:
            return b, i
    return None


def locate_or_raise(entry: "Entry", ts_us: int) -> tuple[Block, int]:
    found = locate(entry, ts_us)
    if found is None:
        raise NotFoundError(f"Record {ts_us} not found in entry {entry.bucket.name}/{entry.name}")
    return found


def get(entry: "Entry", ts_us: int) -> RecordRef:
    return make_ref(entry, *locate_or_raise(entry, ts_us))


def latest(entry: "Entry") -> RecordRef:
    best: tuple[Block, int] | None = None
    for b in entry.blocks:
        if len(b) and (best is None or b.max_ts > best[0].ts[best[1]]):
            best = (b, len(b) - 1)
    if best is None:
        raise NotFoundError(f"Record 0 not found in entry {entry.bucket.name}/{entry.name}")
    return make_ref(entry, *best)


def iter_refs(entry: "Entry", start_us: int | None = None, stop_us: int | None = None) -> Iterator[RecordRef]:
    """Ascending ts in [start, stop). Blocks can overlap in time (belated writes into a full
    block start a new one), so overlapping neighbours are merged; each block is snapshotted
    when reached, giving a consistent view per block."""
    k = 0
    if start_us is not None and entry._disjoint:
        k = max(0, bisect.bisect_right(entry._ids, start_us) - 1)
    blocks = list(entry.blocks[k:])
    i = 0
    while i < len(blocks):
        b = blocks[i]
        if stop_us is not None and b.id >= stop_us:
            break
        group = [b]
        hi = b.max_ts if len(b) else b.id
        i += 1
        while i < len(blocks) and blocks[i].id <= hi:
            group.append(blocks[i])
            if len(blocks[i]):
                hi = max(hi, blocks[i].max_ts)
            i += 1
        snaps = []
        for g in group:
            lo, up = g.range(start_us, stop_us)
            snaps.append([make_ref(entry, g, j) for j in range(lo, up)])
        if len(snaps) == 1:
            yield from snaps[0]
        else:
            yield from heapq.merge(*snaps, key=lambda r: r.ts_us)


def read_fd(entry: "Entry", ref: RecordRef) -> int:
    fd, _ = entry.bucket.fds.get(entry._blk_key(ref.block_id))
    return fd


def _checked_chunks(entry: "Entry", fd: int, ref: RecordRef, chunk_size: int,
                    bufs: tuple[bytearray, bytearray] | None = None) -> Iterator[bytes | memoryview]:
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


def read_payload(entry: "Entry", ref: RecordRef, chunk_size: int = 1 << 20,
                 bufs: tuple[bytearray, bytearray] | None = None) -> Iterator[bytes | memoryview]:
    # a generator itself, so the block's fd is looked up at the first chunk, not at the call
    yield from _checked_chunks(entry, read_fd(entry, ref), ref, chunk_size, bufs)


def read_verified(entry: "Entry", refs: list[RecordRef], span_limit: int = 4 << 20) -> list[bytes | memoryview]:
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


def read_range(entry: "Entry", ref: RecordRef, offset: int, length: int) -> bytes:
    length = max(0, min(length, ref.size - offset))
    return files.pread(read_fd(entry, ref), ref.payload_offset + offset, length)


def payload_fd(entry: "Entry", ref: RecordRef) -> tuple[int, int]:
    """(dup'd fd, payload offset) for os.sendfile; the caller closes the fd."""
    return files.dup(read_fd(entry, ref)), ref.payload_offset


def verify_payload(entry: "Entry", fd: int, ref: RecordRef, chunk_size: int = 1 << 20) -> None:
    """Check ``ref``'s payload against its stored crc, reading through ``fd`` (a ``payload_fd``
    dup). Touches no entry state but the corrupt-read counter, so it may run in a worker
    thread while the same bytes are sendfile'd (pread and crc32 release the GIL).
    Raises CorruptRecordError on a mismatch or a short block file."""
    for _ in _checked_chunks(entry, fd, ref, chunk_size):
        pass
