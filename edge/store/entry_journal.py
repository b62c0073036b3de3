"""Metadata changes of an entry: label updates and removals through journal.log, block deletion.

Owns: ``journal.log`` (appending ops, compaction), label updates and record removals in the
in-memory index, deleting a whole block (FIFO eviction, emptied blocks) with its files, and the
size/record/labelled counters those changes move.
Must not: write block files (frames are the write path's), call the OS except through ``files``,
decide quotas (the bucket picks what to evict), import trio.

A block's frames are never rewritten: a change is an op in the journal naming (ts, block id,
payload offset), replayed over the blocks at start-up (entry_load.replay_journal). Functions
take the Entry (see entry.py).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Mapping

from edge.formats import journal as jfmt
from edge.store import files
from edge.store.blocks import Block
from edge.store.entry_read import locate_or_raise

if TYPE_CHECKING:
    from edge.store.entry import Entry

JOURNAL = "journal.log"


def journal_append(entry: "Entry", op: jfmt.JournalOp) -> None:
    path = entry.dir / JOURNAL
    fd, created = entry.bucket.fds.get(path, create=True)
    if created:
        entry._new_dirs.add(entry.dir)
    files.append(fd, [jfmt.encode_op(op)])
    entry._journal_ops += 1
    entry._journal_dirty = True


def update_labels(entry: "Entry", ts_us: int, update: Mapping[str, str]) -> None:
    b, i = locate_or_raise(entry, ts_us)
    ct, labels = entry.metas.get(b.meta[i])
    new = dict(labels)
    for k, v in update.items():
        if v == "":
            new.pop(k, None)
        else:
            new[k] = v
    journal_append(entry, jfmt.JournalOp(jfmt.OP_LABELS, ts_us, b.id, b.poff[i], new))
    set_labels(entry, b, i, new)
    maybe_compact(entry)


def set_labels(entry: "Entry", b: Block, i: int, labels: dict[str, str]) -> None:
    ct, _ = entry.metas.get(b.meta[i])
    old = b.record_size(i, entry.metas)
    if not b.upd[i]:
        entry._labelled += 1
    b.meta[i] = entry.metas.intern(ct, labels)
    b.upd[i] = 1
    delta = b.record_size(i, entry.metas) - old
    b.size += delta
    entry.size += delta
    entry.bucket._size_delta(delta)


def remove_record(entry: "Entry", ts_us: int) -> None:
    b, i = locate_or_raise(entry, ts_us)
    journal_append(entry, jfmt.JournalOp(jfmt.OP_REMOVE, ts_us, b.id, b.poff[i]))
    remove_at(entry, b, i)
    if not len(b) and b.evictable:
        delete_block(entry, b)
    maybe_compact(entry)


def remove_at(entry: "Entry", b: Block, i: int) -> None:
    size = b.record_size(i, entry.metas)
    if b.upd[i]:
        entry._labelled -= 1
    b.removed.append((b.ts[i], b.poff[i]))
    b.pop(i, size)
    entry.size -= size
    entry.record_count -= 1
    entry.bucket._size_delta(-size)


def delete_block(entry: "Entry", b: Block) -> int:
    """Remove a block's files and index; returns the bytes of size freed."""
    freed = b.size
    for i in range(len(b)):
        if b.upd[i]:
            entry._labelled -= 1
    entry.size -= b.size
    entry.record_count -= len(b)
    entry.bucket._size_delta(-b.size)
    k = bisect.bisect_left(entry._ids, b.id)
    del entry.blocks[k]
    del entry._ids[k]
    entry._to_seal.discard(b.id)
    path = entry._blk(b.id)
    entry.bucket.fds.drop(path)
    files.unlink(entry._idx(b.id))
    files.unlink(path)
    had_ops = bool(b.removed) or any(b.upd)
    if had_ops:
        # ops of a deleted block are dead; a new block could reuse its id and offsets
        compact(entry)
    return freed


def evict_oldest_block(entry: "Entry") -> int:
    for b in entry.blocks:
        if len(b) and b.evictable:
            return delete_block(entry, b)
    return 0


def maybe_compact(entry: "Entry") -> None:
    live = entry._labelled + sum(len(b.removed) for b in entry.blocks)
    if entry._journal_ops > 2 * live + 16:
        compact(entry)


def compact(entry: "Entry") -> None:
    """Atomically rewrite journal.log with only the ops that still matter."""
    ops = []
    for b in entry.blocks:
        for i in range(len(b)):
            if b.upd[i]:
                _, labels = entry.metas.get(b.meta[i])
                ops.append(jfmt.JournalOp(jfmt.OP_LABELS, b.ts[i], b.id, b.poff[i], labels))
    for b in entry.blocks:
        ops.extend(jfmt.JournalOp(jfmt.OP_REMOVE, ts, b.id, poff) for ts, poff in b.removed)
    path = entry.dir / JOURNAL
    entry.bucket.fds.drop(path)
    files.atomic_write(path, b"".join(jfmt.encode_op(op) for op in ops))
    entry._journal_ops = len(ops)
