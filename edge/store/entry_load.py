"""Start-up loading and recovery of one entry.

Owns: building an entry's block map at start-up: trusting a block's ``blocks.sum`` record (no
index is read) when both its files are listed (their sizes are checked on first use, see
``entry_index.verify``; the newest block's now);
otherwise checking the block's ``.idx`` against the ``.blk`` or rescanning it (payload crcs
included), then sealing it again; cutting a torn tail off a block, the summary or the journal
(the torn bytes of a block are kept in ``<id>.blk.torn-<n>``); replaying journal.log. Every
repair is reported in ``report`` and counted in the bucket's stats.
Must not: drop a frame that scans clean, call the OS except through ``files``, import trio.

Cost: after a clean shutdown every block is sealed and trusted, so start-up reads one summary
file and lists one folder per entry, whatever the record count. After a crash only the blocks
written since their last seal are scanned. A data folder written before ``blocks.sum`` existed
is migrated on its first start (each block's index is read once and the summary written).
The journal replays without loading indexes (its ops carry the sizes they change).

Functions take the entry's state (entry_state.EntryState); Entry.load delegates here.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from edge.errors import CorruptRecordError
from edge.formats import journal as jfmt
from edge.formats import summary as sfmt
from edge.formats.frame import HEADER
from edge.formats.index import PackedIndex, decode_index, decode_index_v1, pack_frames, version_of
from edge.store import entry_blocks, entry_index, files
from edge.store.blocks import Block, block_file_name, index_bytes, index_file_name
from edge.store.torn import block_of
from edge.store.entry_index import SUMMARY, ensure_index, install, last_frame_matches, rescan, write_index
from edge.store.entry_journal import (JOURNAL, compact, delete_block, maybe_compact, note_labels, note_removed,
                                      remove_at, set_labels)

if TYPE_CHECKING:
    from edge.store.entry_state import EntryState


def load(entry: EntryState, report: list[str]) -> None:
    """Build the block map (summary records, else indexes, else rescans), replay the journal."""
    where = f"{entry.bucket.name}/{entry.name}"
    listing = {e.name: e for e in files.list_dir(entry.dir) if e.is_file(follow_symlinks=False)}
    trash = [n for n in listing if n.endswith(files.TRASH_SUFFIX)]
    for name in trash:
        # Evicted before a crash (the rename reached the disk, so the eviction did: these are
        # never read again), not unlinked yet. Engine.load syncs the folder before serving.
        files.unlink(entry.dir / name)
        del listing[name]
    if trash:
        entry.bucket.engine.unsynced.add(entry.dir)
    # Everything but block files is stat'ed first: read_summary may set the summary aside.
    stats = {name: e.stat(follow_symlinks=False) for name, e in listing.items() if not name.endswith((".blk", ".idx"))}
    trusted = read_summary(entry, SUMMARY in listing)
    ids = sorted(int(n[:-4]) for n in listing if n.endswith(".blk") and n[:-4].isdigit())
    # Sealed blocks with a summary record and both files listed are trusted without a stat (two
    # per block were 0.65 s of a 100M-record start); ensure_index and begin_write check their
    # sizes on first use (entry_index.verify). The newest block, which takes the next appends,
    # is checked now.
    vouched = {block_id: s for block_id in ids[:-1]
               if (s := trusted.get(block_id)) is not None and s.blk_size > 0 and index_file_name(block_id) in listing}
    skip = {n for block_id in vouched for n in (block_file_name(block_id), index_file_name(block_id))}
    stats.update({name: e.stat(follow_symlinks=False) for name, e in listing.items()
                  if name not in skip and name not in stats})
    sizes = {name: st.st_size for name, st in stats.items()}
    entry._disk_delta(sum(sizes.values()) + sum(s.blk_size + s.idx_size for s in vouched.values()))
    for name, st in stats.items():
        if block_of(name) is not None:
            entry.bucket.engine.torn.add(entry, name, st.st_size, st.st_mtime)
    for k, block_id in enumerate(ids):
        newest = k == len(ids) - 1
        s = vouched.get(block_id)
        if s is not None:
            b = from_summary(s)
            b.unverified = True
            add_block(entry, b)
            continue
        size = sizes[block_file_name(block_id)]
        idx_name = index_file_name(block_id)
        s = trusted.get(block_id)
        if s is not None and size > 0 and s.blk_size == size and sizes.get(idx_name) == s.idx_size:
            add_block(entry, from_summary(s))
            continue
        b = Block(block_id)
        b.idx_size = sizes.get(idx_name, 0)
        packed, hints = None, list[int]()
        if idx_name in sizes and size > 0:
            packed, stale, hints = check_index(entry, block_id, size)
            if packed is None and not stale:
                report.append(f"{where}: index of block {block_id} rebuilt")
                entry.bucket.stats["indexes_rebuilt"] += 1
        sealed = packed is not None or not newest
        if packed is None:
            frames, good = rescan(entry, entry._blk(block_id), hints)
            if good != size:
                entry._disk_delta(good - size)
                size = good
            if size == 0:
                files.unlink(entry._blk(block_id))
                if files.unlink(entry._idx(block_id)):
                    entry._disk_delta(-b.idx_size)
                continue
            packed = pack_frames(frames, size)
        b.file_size = size
        b.next_begin = packed.payload_total
        b.frames = b.count = len(packed)
        b.frames_size = b.size = packed.frames_size
        add_block(entry, b)
        install(entry, b, packed)
        if sealed:
            write_index(entry, b, packed)  # a fresh v2 index and its summary record
        else:
            if b.idx_size:
                entry_index.unseal(entry, b)  # the newest block, rescanned: a stale .idx must go
            entry._due_delta(b, index_bytes(len(packed), packed.metas) - b.idx_due)
    replay_journal(entry, report)


def add_block(entry: EntryState, b: Block) -> None:
    entry_blocks.insert(entry, len(entry.blocks), b)
    entry.size += b.size
    entry.record_count += b.count
    entry.bucket._size_delta(b.size)


def from_summary(s: sfmt.BlockSummary) -> Block:
    b = Block(s.block_id)
    b.file_size = s.blk_size
    b.next_begin = s.payload_total
    b.frames = b.count = s.frames
    b.frames_size = b.size = s.frames_size
    b.min_ts, b.max_ts = s.min_ts, s.max_ts
    b.has_idx = True
    b.idx_size = s.idx_size
    b.idx_crc = s.idx_crc
    return b


def read_summary(entry: EntryState, exists: bool) -> dict[int, sfmt.BlockSummary]:
    """The summary records to trust. A torn tail (a short last record, or zeros a crash appended)
    is cut and reported. A damaged summary (bad header, a whole record failing its crc: bit rot)
    is a damaged state file like any other: set aside (``blocks.sum.damaged-<time>``, kept),
    reported (engine.damaged: the log, ``/metrics``, ``edge check``), and nothing of it is
    trusted: every block of the entry is checked against its files (index or rescan) and gets
    a fresh summary record, so the damage costs one slower start of this entry, never a record."""
    if not exists:
        return {}
    path = entry.dir / SUMMARY
    data = files.read_file(path) or b""
    records, end, reason = sfmt.decode(data)
    if end < len(data) and not sfmt.is_torn_tail(data, end):
        damage = files.set_aside(path, f"block summary: {reason}")
        entry.bucket.engine.damaged.append(damage)
        entry.bucket.engine.recovery_report.append(
            f"{entry.bucket.name}/{entry.name}: {damage.describe()}; every block of the entry was checked "
            "and its summary written again")
        entry.bucket.stats["damaged_summaries"] += 1
        # Set aside: a new summary starts. Not renamed (a medium refusing it): appends go after
        # the damage, where decode never reads (each start checks the entry again).
        entry._summary_size = 0 if damage.kept_as is not None else len(data)
        entry._summary_records = 0
        return {}
    if end < len(data):
        fd, _ = entry.bucket.fds.get(path)
        files.truncate(fd, end)
        files.datasync(fd)
        entry._disk_delta(end - len(data))
        entry.bucket.engine.recovery_report.append(
            f"{entry.bucket.name}/{entry.name}: block summary {SUMMARY} truncated at {end} of {len(data)} bytes "
            f"({reason}); the blocks it no longer describes were checked")
        entry.bucket.stats["torn_tails"] += 1
    entry._summary_size = end
    entry._summary_records = len(records)
    return sfmt.current(records)


def check_index(entry: EntryState, block_id: int, blk_size: int) -> tuple[PackedIndex | None, bool, list[int]]:
    """A block's .idx (either version) without a summary record to vouch for it: trusted only if
    it names the .blk's size and its last frame is really there. Returns (index or None, stale,
    hints): stale = a whole index of another size of the block (the block changed after it was
    sealed, which the rescan reports if it is damage), not a damaged index; hints = the frame
    offsets of a whole (v2, checksummed) index of this size that the data did not bear out (a
    frame header rotted), where the rescan may resync past the damage."""
    data = files.read_file(entry._idx(block_id)) or b""
    try:
        if version_of(data) == 1:
            size, recs = decode_index_v1(data)
            if size != blk_size or not recs:
                return None, size != blk_size, []
            p = pack_frames(recs, size)
        else:
            p = decode_index(data)
    except CorruptRecordError:
        return None, False, []
    if p.blk_size != blk_size:
        return None, True, []
    if not last_frame_matches(entry, block_id, p):
        return None, False, frame_offsets(p)
    return p, False, []


def frame_offsets(p: PackedIndex) -> list[int]:
    """Where each frame of an index starts in its block (before its header and metadata)."""
    return [p.poff[k] - HEADER.size - len(p.metas[p.meta[k]]) for k in range(len(p))]


def replay_journal(entry: EntryState, report: list[str]) -> None:
    path = entry.dir / JOURNAL
    data = files.read_file(path)
    if data is None:
        return
    ops, end, reason = jfmt.decode_ops(data)
    if end < len(data):
        fd, _ = entry.bucket.fds.get(path)
        files.truncate(fd, end)
        files.datasync(fd)
        entry._disk_delta(end - len(data))
        report.append(f"{entry.bucket.name}/{entry.name}: journal truncated at {end} of {len(data)} bytes ({reason})")
        entry.bucket.stats["torn_tails"] += 1
    entry._journal_size = end
    dead = unsized = 0
    for op in ops:
        k = bisect.bisect_left(entry._ids, op.block_id)
        b = entry.blocks[k] if k < len(entry._ids) and entry._ids[k] == op.block_id else None
        if b is None:
            dead += 1
            continue
        lab = b.labelled.get(op.payload_offset) if b.labelled else None
        if b.index is None and op.size is not None and op.orig is not None:
            # Trust the op's sizes: the block's index stays on disk until a request needs it.
            orig = lab.orig if lab is not None else op.orig
            if op.op == jfmt.OP_LABELS:
                prev = lab.size if lab is not None else orig
                note_labels(entry, b, op.ts_us, op.payload_offset, op.labels, orig, op.size, op.size - prev)
            else:
                note_removed(entry, b, op.ts_us, op.payload_offset, orig, op.size)
                b.bounds_exact = False
            continue
        if op.size is None:
            unsized += 1
        idx = ensure_index(entry, b)
        i = idx.find_frame(op.ts_us, op.payload_offset)
        if i < 0:
            dead += 1
            continue
        orig = lab.orig if lab is not None else idx.record_size(i)
        if op.op == jfmt.OP_LABELS:
            set_labels(entry, b, idx, i, dict(op.labels), orig)
        else:
            remove_at(entry, b, idx, i, orig)
    entry._journal_ops = len(ops)
    for b in [b for b in entry.blocks if not b.count]:
        delete_block(entry, b)
    if dead or unsized or entry._journal_stale:
        compact(entry)
    else:
        maybe_compact(entry)
