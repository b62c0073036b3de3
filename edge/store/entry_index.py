"""Block indexes on demand, sealing, and the block summary log of an entry.

Owns: ``ensure_index`` (a block's per-record index from its ``.idx`` after checking it against
the block's summary and the ``.blk``, else from the frame headers of the ``.blk``; the journal
state applied; anything that disagrees reconciled and reported), sealing (writing a block's
``.idx`` and its ``blocks.sum`` record), rescanning a block with payload crcs (torn tails kept in
``<id>.blk.torn-<n>``), and ``blocks.sum`` itself (appends, compaction).
Must not: drop a frame that scans clean, decide quotas, call the OS except through ``files``,
import trio.

When an index is not what it should be (damaged ``.idx``, a frame the journal names that is not
there, a timestamp twice), the block is rebuilt from its frames, the entry's and bucket's sizes are
corrected by the difference, and a line goes to the recovery report (and the log), exactly as
start-up would have done. Functions take the entry's state (entry_state.EntryState).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from edge.errors import CorruptRecordError
from edge.formats import summary as sfmt
from edge.formats.frame import HEADER, NEED_MORE, TRAILER, FrameHead, decode_head, encode_meta
from edge.formats.index import IndexRecord, PackedIndex, body_crc, decode_index, encode_index, pack_frames
from edge.formats.recovery import scan
from edge.store import entry_blocks, files
from edge.store.blocks import SUMMARY_RECORD, Block, BlockIndex

if TYPE_CHECKING:
    from edge.store.entry_state import EntryState

SUMMARY = "blocks.sum"
log = logging.getLogger("edge.store")


def report(entry: EntryState, line: str, stat: str) -> None:
    """A repair: into the engine's recovery report (``/info``, ``edge check``) and the log."""
    entry.bucket.engine.recovery_report.append(line)
    entry.bucket.stats[stat] += 1
    if entry.bucket.engine.loaded:
        log.warning("recovery: %s", line)


# --- loading ------------------------------------------------------------------------------------


def ensure_index(entry: EntryState, b: Block) -> BlockIndex:
    """``b``'s loaded index (loading it if the cache dropped it or it was never loaded)."""
    idx = b.index
    cache = entry.bucket.engine.index_cache
    if idx is not None:
        cache.touch(b)
        return idx
    assert not b.pinned, "a block with unpublished frames in its file always has its index"
    if b.unverified:
        checked = verify(entry, b)
        if checked is not None:
            return checked
    if b.file_size == 0:
        b.index = BlockIndex()
        cache.add(b, loaded=False)
        return b.index
    packed = None
    rebuilt = False
    if b.has_idx:
        packed = read_index(entry, b)
        if packed is None:
            report(entry, f"{entry.bucket.name}/{entry.name}: index of block {b.id} rebuilt", "indexes_rebuilt")
    if packed is None and not b.has_idx:
        try:
            packed = pack_frames(read_frame_heads(entry, b.id, b.file_size), b.file_size)
        except CorruptRecordError:
            packed = None  # the file changed under us: rescan it like start-up would
    if packed is None:
        packed = rebuild(entry, b)
        rebuilt = True
    return install(entry, b, packed, exact=rebuilt)


def verify(entry: EntryState, b: Block) -> BlockIndex | None:
    """First use of a block start-up trusted from its ``blocks.sum`` record without a stat: its
    ``.blk`` must be the size the record names (a wrong ``.idx`` alone is left to the usual
    index check, which rebuilds it). If it is not (a belated write
    whose unseal record a power cut lost while its frame reached the disk, a file truncated or
    replaced behind our back), the block is rescanned as start-up would have done (torn tails
    kept, damaged frames reported), sealed again, and its counts reconciled: returns that index.
    None: the files agree (the caller goes on as usual)."""
    b.unverified = False
    blk = files.file_size(entry._blk(b.id)) or 0
    idx = files.file_size(entry._idx(b.id)) or 0
    if blk == b.file_size:
        # The frames are as the record says; a missing or damaged .idx alone is the ordinary
        # rebuild (ensure_index's read_index check), reported as "index of block N rebuilt".
        return None
    report(entry, f"{entry.bucket.name}/{entry.name}: block {b.id} is {blk} bytes with a {idx}-byte index where "
                  f"its summary record names {b.file_size} and {b.idx_size}: rescanned", "indexes_rebuilt")
    entry._disk_delta(blk - b.file_size + idx - b.idx_size)
    b.file_size, b.idx_size = blk, idx
    b.has_idx = False  # rebuild must not seal it yet: the record needs the frame counts below
    packed = rebuild(entry, b)
    b.frames, b.frames_size = len(packed), packed.frames_size
    if len(packed):
        write_index(entry, b, packed)  # before install, which takes over (and trims) its arrays
    else:
        summary_append(entry, [sfmt.BlockSummary(sfmt.DELETED, b.id)])
    return install(entry, b, packed, exact=True)


def install(entry: EntryState, b: Block, packed: PackedIndex, exact: bool = False) -> BlockIndex:
    """Make ``packed`` (all frames of ``b``) ``b``'s index: apply the journal state, reconcile the
    counts with what the summary and the journal said, put it into the cache. Returns the index
    (which the cache may already have dropped again if it is tiny: the caller's to use now)."""
    frames = len(packed)  # before the index (which takes over its arrays) drops removed frames
    idx = BlockIndex(packed)
    bad = apply_state(entry, b, idx)
    if exact or bad or frames != b.frames or packed.frames_size != b.frames_size or len(idx) != b.count:
        size = sum(idx.record_size(i) for i in range(len(idx)))
        dc, ds = len(idx) - b.count, size - b.size
        b.count += dc
        b.size += ds
        entry.record_count += dc
        entry.size += ds
        entry.bucket._size_delta(ds)
    b.frames, b.frames_size = frames, packed.frames_size
    if len(idx):
        b.min_ts, b.max_ts = idx.ts[0], idx.ts[-1]
    else:
        b.min_ts = b.max_ts = b.id
    b.bounds_exact = True
    entry_blocks.note_bounds(entry, b)
    b.index = idx
    entry.bucket.engine.index_cache.add(b)
    return idx


def apply_state(entry: EntryState, b: Block, idx: BlockIndex) -> int:
    """Apply ``b``'s journal state to a fresh index; returns how many things did not fit (ops naming
    frames that are not there, a timestamp twice). Those are dropped from the state."""
    bad = 0
    if b.removed:
        keep = []
        for r in b.removed:
            i = idx.find_frame(r.ts_us, r.poff)
            if i < 0:
                bad += 1
            else:
                idx.pop(i)
                keep.append(r)
        if len(keep) != len(b.removed):
            entry._live_ops -= len(b.removed) - len(keep)
            entry._journal_stale = True
            b.removed = keep or None
    ts = idx.ts
    if len(ts) > 1 and len(set(ts)) != len(ts):
        # A ts written again after its old frame was removed, the removal lost: the later frame
        # (greater offset; frames are sorted by ts, then offset) wins.
        i = len(ts) - 1
        while i > 0:
            if ts[i] == ts[i - 1]:
                idx.pop(i - 1)
                bad += 1
            i -= 1
    if b.labelled:
        for poff, lab in list(b.labelled.items()):
            i = idx.find_frame(lab.ts_us, poff)
            if i < 0:
                del b.labelled[poff]
                entry._live_ops -= 1
                entry._journal_stale = True
                bad += 1
                continue
            ct, _ = idx.labels_of(i)
            idx.meta[i] = idx.intern(encode_meta(ct, lab.labels), (ct, lab.labels))
            idx.upd[i] = 1
        if not b.labelled:
            b.labelled = None
    return bad


def read_index(entry: EntryState, b: Block) -> PackedIndex | None:
    """``b``'s .idx if it is exactly the one its summary record names, else None."""
    data = files.read_file(entry._idx(b.id))
    if data is None:
        return None
    try:
        p = decode_index(data)
    except CorruptRecordError:
        return None
    if (body_crc(data) != b.idx_crc or p.blk_size != b.file_size or len(p) != b.frames
            or p.frames_size != b.frames_size or p.payload_total != b.next_begin):
        return None
    return p if last_frame_matches(entry, b.id, p) else None


def last_frame_matches(entry: EntryState, block_id: int, p: PackedIndex) -> bool:
    """Spot-check an index against the data: the frame it places last must be there, ending the file."""
    if not len(p):
        return False
    k = p.poff.index(max(p.poff))
    meta = p.metas[p.meta[k]]
    if p.poff[k] + p.plen[k] + TRAILER.size != p.blk_size:
        return False
    frame_off = p.poff[k] - HEADER.size - len(meta)
    if frame_off < 0:
        return False
    fd, _ = entry.bucket.fds.get(entry._blk(block_id))
    try:
        head = decode_head(files.pread(fd, frame_off, HEADER.size + len(meta)))
    except CorruptRecordError:
        return False
    return isinstance(head, FrameHead) and head.ts_us == p.ts[k] and head.meta == meta and head.payload_len == p.plen[k]


def read_frame_heads(entry: EntryState, block_id: int, end: int) -> list[IndexRecord]:
    """The frame headers of ``[0, end)`` of a block, without reading payloads.

    Walk the headers through a read window: small frames (1 KB records) come 1 MiB at a time;
    after a big frame only the next header's neighbourhood is read, never the payloads.
    """
    fd, _ = entry.bucket.fds.get(entry._blk(block_id))
    recs, pos = [], 0
    window, wstart, frame_len = b"", 0, 0
    while pos < end:
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
            raise CorruptRecordError(f"Block {block_id} of {entry.bucket.name}/{entry.name} ends inside a frame")
        recs.append(IndexRecord(head.ts_us, pos, head.payload_len, head.meta))
        frame_len = head.frame_len
        pos += frame_len
    if pos != end:
        raise CorruptRecordError(f"Block {block_id} of {entry.bucket.name}/{entry.name} ends inside a frame")
    return recs


def rescan(entry: EntryState, path: Path, hints: Sequence[int] = ()) -> tuple[list[IndexRecord], int]:
    """Every frame of a block file with its payload crc checked; a torn tail is cut off (its bytes
    kept in ``<name>.torn-<n>``), damaged frames and unreadable bytes with good frames after them
    are skipped (``hints``: frame offsets from the block's intact index, where to resync).
    Returns (frames, good end)."""
    data = files.read_file(path) or b""
    plan = scan(data, hints=hints)
    where = f"{entry.bucket.name}/{entry.name}"
    if not plan.clean:
        engine = entry.bucket.engine
        # never a name used before (the bound removes the oldest): one past the newest kept
        n = 1 + max((int(x.rsplit("-", 1)[1]) for x in engine.torn.names(entry, int(path.stem))), default=-1)
        while files.file_size(path.with_name(f"{path.name}.torn-{n}")) is not None:
            n += 1
        torn = path.with_name(f"{path.name}.torn-{n}")
        files.atomic_write(torn, data[plan.good_end :])
        entry._disk_delta(len(data) - plan.good_end)  # the torn file; the .blk shrinks by the caller
        engine.torn.add(entry, torn.name, len(data) - plan.good_end, time.time())
        fd, _ = entry.bucket.fds.get(path)
        files.truncate(fd, plan.good_end)
        files.datasync(fd)
        report(entry, f"{where}: block {path.name} truncated from {len(data)} to {plan.good_end} bytes "
                      f"({plan.reason}); torn bytes kept in {torn.name}", "torn_tails")
        if engine.loaded:  # at start-up the bound is applied once every torn file is known
            engine.torn.enforce(engine.recovery_report, log_too=True)
    for start, end, why in plan.skipped:
        report(entry, f"{where}: block {path.name}: bytes {start}-{end} unreadable ({why}); the record "
                      "there is dropped, its bytes stay in the block, later records are kept", "damaged_records")
    for f in plan.damaged:
        report(entry, f"{where}: block {path.name}: record {f.head.ts_us} at offset {f.offset} dropped "
                      f"(payload checksum mismatch); its bytes stay in the block, later records are kept",
               "damaged_records")
    recs = [IndexRecord(f.head.ts_us, f.offset, f.head.payload_len, f.head.meta) for f in plan.frames]
    return recs, plan.good_end


def rebuild(entry: EntryState, b: Block) -> PackedIndex:
    """Rescan ``b`` (payload crcs checked) and, if it was sealed, write its index again."""
    frames, good_end = rescan(entry, entry._blk(b.id))
    if good_end != b.file_size:
        entry._disk_delta(good_end - b.file_size)
        b.file_size = good_end
        entry._changed()
    packed = pack_frames(frames, good_end)
    b.next_begin = packed.payload_total
    if b.has_idx:
        write_index(entry, b, packed)
    return packed


# --- sealing --------------------------------------------------------------------------------------


def seal(entry: EntryState, b: Block) -> None:
    """Write the .idx of a block that no longer takes regular appends, and its summary record."""
    if b.file_size == 0:
        return
    # No fsync of the .idx (three of them, inline, were ~30 % of a 1 KB batch write): it is a
    # cache that is trusted only if it is exactly the index the summary record names (its crc)
    # and agrees with the .blk; a missing, torn or stale .idx means a rescan, never loss. The
    # summary record is synced by the next group commit, like the frames it describes.
    packed = packed_from_memory(b)
    if packed is not None:
        write_index(entry, b, packed)
        return
    try:
        heads = read_frame_heads(entry, b.id, b.file_size)
    except CorruptRecordError:
        heads = frames_around_damage(entry, b)
    packed = pack_frames(heads, b.file_size)
    if len(packed) != b.frames or packed.frames_size != b.frames_size:
        ds = packed.frames_size - b.frames_size  # cannot happen unless the file changed under us
        b.frames, b.frames_size = len(packed), packed.frames_size
        b.size += ds
        entry.size += ds
        entry.bucket._size_delta(ds)
    write_index(entry, b, packed)


def frames_around_damage(entry: EntryState, b: Block) -> list[IndexRecord]:
    """The good frames of a block whose headers do not chain (recovery skipped unreadable bytes
    in it, and it took appends since): the whole file scanned, as recovery does; CorruptRecordError
    if that does not account for every byte either (the file changed under us)."""
    data = files.read_file(entry._blk(b.id)) or b""
    plan = scan(data[: b.file_size])
    if not plan.clean:
        raise CorruptRecordError(f"Block {b.id} of {entry.bucket.name}/{entry.name} ends inside a frame")
    return [IndexRecord(f.head.ts_us, f.offset, f.head.payload_len, f.head.meta) for f in plan.frames]


def packed_from_memory(b: Block) -> PackedIndex | None:
    """The .idx contents of ``b`` from its loaded index, when that lists every frame of the file
    as it was written: no journal op touched the block (removed frames are not in the index,
    relabelled ones carry their new metadata) and it is loaded. Sealing a 1024-record block by
    re-reading its frame heads cost ~17 ms on the event loop; the index already holds them."""
    idx = b.index
    if idx is None or b.removed or b.labelled or len(idx) != b.frames or not len(idx):
        return None
    if any(idx.upd):
        return None
    return PackedIndex(blk_size=b.file_size, min_ts=idx.ts[0], max_ts=idx.ts[-1], frames_size=b.frames_size,
                       payload_total=b.next_begin, metas=list(idx.metas), ts=idx.ts, poff=idx.poff,
                       plen=idx.plen, begin=idx.begin, meta=idx.meta)


def write_index(entry: EntryState, b: Block, packed: PackedIndex) -> None:
    data = encode_index(packed)
    files.replace_unsynced(entry._idx(b.id), data)
    entry._disk_delta(len(data) - b.idx_size)
    b.idx_size = len(data)
    b.idx_crc = body_crc(data)
    b.has_idx = True
    b.next_begin = packed.payload_total
    entry._due_delta(b, -b.idx_due)
    summary_append(entry, [summary_record(b, packed)])


def unseal(entry: EntryState, b: Block) -> None:
    """A sealed block takes another frame (a belated write): its .idx no longer describes it."""
    was_sealed = b.has_idx
    if b.idx_size or b.has_idx:
        files.unlink(entry._idx(b.id))
        entry._disk_delta(-b.idx_size)
        entry._due_delta(b, b.idx_size + SUMMARY_RECORD - b.idx_due)  # it is written again at the next seal
    b.has_idx = False
    b.idx_size = 0
    b.idx_crc = 0
    if was_sealed:
        # Start-up trusts a summary record without looking at the .blk's size (entry_load.py):
        # the record goes before the frame does, in the same group commit as the write.
        summary_append(entry, [sfmt.BlockSummary(sfmt.DELETED, b.id)])


# --- the summary log --------------------------------------------------------------------------------


def summary_record(b: Block, packed: PackedIndex | None = None) -> sfmt.BlockSummary:
    # Bounds of the frames (a superset of the live records'), or the block's own bounds.
    lo, hi = (packed.min_ts, packed.max_ts) if packed is not None and len(packed) else (b.min_ts, b.max_ts)
    return sfmt.BlockSummary(sfmt.SEALED, b.id, lo, hi, b.frames, b.frames_size, b.next_begin, b.file_size,
                             b.idx_size, b.idx_crc)


def summary_path(entry: EntryState) -> Path:
    return entry.dir / SUMMARY


def summary_append(entry: EntryState, records: list[sfmt.BlockSummary]) -> None:
    if not records:
        return
    path = summary_path(entry)
    fd, created = entry.bucket.fds.get(path, create=True)
    if created:
        entry._new_dirs.add(entry.dir)
    chunks = [] if entry._summary_size else [sfmt.file_header()]
    chunks += [sfmt.encode_record(r) for r in records]
    n = files.append(fd, chunks)
    entry._summary_size += n
    entry._disk_delta(n)
    entry._summary_records += len(records)
    entry._touched.add(str(path))
    if entry._summary_records > 2 * len(entry.blocks) + 8:
        summary_compact(entry)


def summary_compact(entry: EntryState) -> None:
    """Atomically rewrite blocks.sum with one record per sealed block."""
    records = [summary_record(b) for b in entry.blocks if b.has_idx]
    data = sfmt.encode_file(records)
    path = summary_path(entry)
    entry.bucket.fds.drop(path)
    files.atomic_write(path, data)
    entry._disk_delta(len(data) - entry._summary_size)
    entry._summary_size = len(data)
    entry._summary_records = len(records)
