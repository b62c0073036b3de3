"""Metadata changes of an entry: label updates and removals through journal.log, block deletion.

Owns: ``journal.log`` (appending ops, compaction), label updates and record removals (in the
blocks' journal state and their loaded indexes), deleting a whole block (FIFO eviction, emptied
blocks) with its files and its summary record, and the size/record/op counters those changes move.
A deleted block's files are renamed to ``<name>.deleted`` and its folder joins the engine's
``unsynced`` removals: the next group commit unlinks them in its worker thread and syncs the
folder before any write or removal is answered (see ``files.UnsyncedFolders``).
Must not: write block files (frames are the write path's), call the OS except through ``files``,
decide quotas (the bucket picks what to evict), import trio.

A block's frames are never rewritten: a change is an op in the journal naming (ts, block id,
payload offset) and carrying the record's sizes before and after (so start-up can replay it
without the block's index, see formats/journal.py); entry_load.replay_journal applies them at
start-up, entry_index.apply_state whenever a block's index is loaded. Functions take the entry's
state (entry_state.EntryState).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from edge.formats import journal as jfmt
from edge.formats import summary as sfmt
from edge.formats.frame import encode_meta
from edge.formats.metadata import check_label_update
from edge.store import entry_blocks, entry_index, files
from edge.store.blocks import Block, BlockIndex, Labelled, Removed
from edge.store.entry_read import locate_or_raise

if TYPE_CHECKING:
    from edge.store.entry_state import EntryState

JOURNAL = "journal.log"


def journal_append(entry: EntryState, op: jfmt.JournalOp) -> None:
    path = entry.dir / JOURNAL
    fd, created = entry.bucket.fds.get(path, create=True)
    if created:
        entry._new_dirs.add(entry.dir)
    n = files.append(fd, [jfmt.encode_op(op)])
    entry._journal_size += n
    entry._disk_delta(n)
    entry._journal_ops += 1
    entry._journal_dirty = True


def update_labels(entry: EntryState, ts_us: int, update: Mapping[str, str]) -> None:
    b, idx, i = locate_or_raise(entry, ts_us)
    ct, labels = idx.labels_of(i)
    check_label_update(labels, update, ct)  # every label-update path passes here
    new = dict(labels)
    for k, v in update.items():
        if v == "":
            new.pop(k, None)
        else:
            new[k] = v
    poff = idx.poff[i]
    old = idx.record_size(i)
    lab = b.labelled.get(poff) if b.labelled else None
    orig = lab.orig if lab is not None else old
    set_labels(entry, b, idx, i, new, orig)
    journal_append(entry, jfmt.JournalOp(jfmt.OP_LABELS, ts_us, b.id, poff, new, size=idx.record_size(i), orig=orig))
    maybe_compact(entry)


def set_labels(entry: EntryState, b: Block, idx: BlockIndex, i: int, labels: dict[str, str], orig: int) -> None:
    """Give record ``i`` of a loaded block ``labels`` (its frame's size was ``orig``)."""
    ct, _ = idx.labels_of(i)
    old = idx.record_size(i)
    idx.meta[i] = idx.intern(encode_meta(ct, labels), (ct, labels))
    idx.upd[i] = 1
    size = idx.record_size(i)
    note_labels(entry, b, idx.ts[i], idx.poff[i], labels, orig, size, size - old)


def note_labels(entry: EntryState, b: Block, ts_us: int, poff: int, labels: Mapping[str, str], orig: int, size: int,
                delta: int) -> None:
    """The journal state and totals after a label op (shared with start-up replay)."""
    if b.labelled is None:
        b.labelled = {}
    if poff not in b.labelled:
        entry._live_ops += 1
    b.labelled[poff] = Labelled(ts_us, dict(labels), orig, size)
    b.size += delta
    entry.size += delta
    entry.bucket._size_delta(delta)


def remove_record(entry: EntryState, ts_us: int) -> None:
    b, idx, i = locate_or_raise(entry, ts_us)
    poff = idx.poff[i]
    size = idx.record_size(i)
    lab = b.labelled.get(poff) if b.labelled else None
    orig = lab.orig if lab is not None else size
    remove_at(entry, b, idx, i, orig)
    journal_append(entry, jfmt.JournalOp(jfmt.OP_REMOVE, ts_us, b.id, poff, size=size, orig=orig))
    if not b.count and not b.busy:
        delete_block(entry, b)
    maybe_compact(entry)


def remove_at(entry: EntryState, b: Block, idx: BlockIndex, i: int, orig: int) -> None:
    size = idx.record_size(i)
    ts, poff = idx.ts[i], idx.poff[i]
    idx.pop(i)
    note_removed(entry, b, ts, poff, orig, size)
    if idx.ts:
        if ts == b.min_ts or ts == b.max_ts:
            b.min_ts, b.max_ts = idx.ts[0], idx.ts[-1]
            entry_blocks.note_bounds(entry, b)
    else:
        b.min_ts = b.max_ts = b.id
        entry_blocks.note_bounds(entry, b)


def note_removed(entry: EntryState, b: Block, ts_us: int, poff: int, orig: int, size: int) -> None:
    """The journal state and totals after a removal (shared with start-up replay)."""
    if b.labelled and b.labelled.pop(poff, None) is not None:
        entry._live_ops -= 1
    if b.removed is None:
        b.removed = []
    b.removed.append(Removed(ts_us, poff, orig))
    entry._live_ops += 1
    entry._changed()
    b.count -= 1
    b.size -= size
    entry.size -= size
    entry.record_count -= 1
    entry.bucket._size_delta(-size)


def delete_block(entry: EntryState, b: Block) -> int:
    """Remove a block's files, summary record and index; returns the bytes of size freed."""
    freed = b.size
    entry._live_ops -= b.ops
    entry.size -= b.size
    entry.record_count -= b.count
    entry.bucket._size_delta(-b.size)
    entry_blocks.remove(entry, b)
    entry.bucket.engine.index_cache.discard(b)
    entry._to_seal.discard(b.id)
    path = entry._blk(b.id)
    entry.bucket.fds.drop(path)
    # Renamed to <name>.deleted here (cheap); the unlink (freeing the extents, milliseconds per
    # MB) runs in the flusher's worker thread, before the folder fsync that makes both durable.
    trash = [t for t in (files.trash(entry._idx(b.id)), files.trash(path)) if t is not None]
    entry.bucket.engine.torn.drop_block(entry, b.id)  # older than anything the quota keeps
    entry.bucket.engine.unsynced.add(entry.dir, trash)  # synced by the next group commit, before anyone is answered
    entry._disk_delta(-(b.file_size + b.idx_size))
    entry._due_delta(b, -b.idx_due)
    if entry._summary_size:
        entry_index.summary_append(entry, [sfmt.BlockSummary(sfmt.DELETED, b.id)])
    if b.ops:
        # Ops of a deleted block are dead (a new block could reuse its id and offsets). The block
        # must be gone from the disk no later than they are, or a power cut would bring it back
        # without the removals already answered: the compaction's atomic replace syncs this
        # folder, and with it the unlinks above.
        compact(entry)
    return freed


def evict_oldest_block(entry: EntryState) -> int:
    for b in entry.blocks:
        if b.file_size and b.evictable:
            return delete_block(entry, b)
    return 0


def maybe_compact(entry: EntryState) -> None:
    if entry._journal_ops > 2 * entry._live_ops + 16:
        compact(entry)


def compact(entry: EntryState) -> None:
    """Atomically rewrite journal.log with only the ops that still matter (one per record)."""
    ops = []
    for b in entry.blocks:
        if b.labelled:
            for poff, lab in b.labelled.items():
                ops.append(jfmt.JournalOp(jfmt.OP_LABELS, lab.ts_us, b.id, poff, lab.labels, size=lab.size,
                                          orig=lab.orig))
        if b.removed:
            ops.extend(jfmt.JournalOp(jfmt.OP_REMOVE, r.ts_us, b.id, r.poff, size=r.orig, orig=r.orig)
                       for r in b.removed)
    path = entry.dir / JOURNAL
    data = b"".join(jfmt.encode_op(op) for op in ops)
    entry.bucket.fds.drop(path)
    files.atomic_write(path, data)
    entry._disk_delta(len(data) - entry._journal_size)
    entry._journal_size = len(data)
    entry._journal_ops = len(ops)
    entry._journal_stale = False
