"""Start-up loading and recovery of one entry.

Owns: building the in-memory index of an entry folder at start-up: trusting a sealed block's
``.idx`` only after checking it against the ``.blk``, rescanning the newest block and any block
whose index is missing or wrong (payload crcs included), cutting a torn tail off a block or the
journal (the torn bytes of a block are kept in ``<id>.blk.torn-<n>``), and replaying journal.log.
Every repair is reported in ``report`` and counted in the bucket's stats.
Must not: drop a frame that scans clean, call the OS except through ``files``, import trio.

Functions take the Entry (see entry.py); Entry.load delegates here.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import CorruptRecordError
from edge.formats import journal as jfmt
from edge.formats.frame import TRAILER, decode_head
from edge.formats.index import IndexRecord, decode_index, encode_index
from edge.formats.recovery import scan
from edge.formats.sizes import record_size
from edge.store import files
from edge.store.blocks import Block, index_file_name
from edge.store.entry_journal import JOURNAL, compact, delete_block, maybe_compact, remove_at, set_labels
from edge.store.entry_read import locate

if TYPE_CHECKING:
    from edge.store.entry import Entry


def load(entry: "Entry", report: list[str]) -> None:
    """Read block indexes (or rescan blocks), recover torn tails, replay the journal.

    Sealed blocks load from their .idx without reading payloads; the newest block and any
    block whose .idx is missing or disagrees with the .blk are scanned with payload crcs.
    """
    names = {e.name for e in files.list_dir(entry.dir)}
    ids = sorted(int(n[:-4]) for n in names if n.endswith(".blk") and n[:-4].isdigit())
    for k, block_id in enumerate(ids):
        sealed = k < len(ids) - 1
        path = entry._blk(block_id)
        size = files.file_size(path) or 0
        recs = None
        if sealed and index_file_name(block_id) in names:
            recs = load_idx(entry, block_id, size)
            if recs is None:
                report.append(f"{entry.bucket.name}/{entry.name}: index of block {block_id} rebuilt")
                entry.bucket.stats["indexes_rebuilt"] += 1
        has_idx = recs is not None
        if recs is None:
            recs, size = rescan(entry, path, report)
            if size == 0:
                files.unlink(path)
                files.unlink(entry._idx(block_id))
                continue
            if sealed:
                files.atomic_write(entry._idx(block_id), encode_index(size, recs))
                has_idx = True
        b = Block(block_id)
        for rec in recs:
            meta_idx = entry.metas.intern_raw(rec.meta)
            ct, labels = entry.metas.get(meta_idx)
            rsize = record_size(rec.ts_us, b.next_begin, rec.payload_len, ct, labels, False)
            # A ts seen twice: it was removed (journal) and written again. The later frame
            # wins; the journal's remove op then names the earlier frame and goes dead.
            k = b.find(rec.ts_us)
            if k >= 0:
                b.pop(k, b.record_size(k, entry.metas))
            else:
                found = locate(entry, rec.ts_us)
                if found is not None:
                    ob, ok = found
                    osize = ob.record_size(ok, entry.metas)
                    ob.pop(ok, osize)
                    entry.size -= osize
                    entry.record_count -= 1
                    entry.bucket._size_delta(-osize)
            b.insert(rec.ts_us, rec.payload_offset, rec.payload_len, b.next_begin, meta_idx, False, rsize)
            b.next_begin += rec.payload_len
        b.file_size = size
        b.has_idx = has_idx
        if entry.blocks and len(entry.blocks[-1]) and len(b) and entry.blocks[-1].max_ts >= b.id:
            entry._disjoint = False
        entry.blocks.append(b)
        entry._ids.append(block_id)
        entry.size += b.size
        entry.record_count += len(b)
        entry.bucket._size_delta(b.size)
    replay_journal(entry, report)


def load_idx(entry: "Entry", block_id: int, blk_size: int) -> list[IndexRecord] | None:
    data = files.read_file(entry._idx(block_id))
    try:
        size, recs = decode_index(data or b"")
        if size != blk_size or not recs:
            return None
        last = recs[-1]
        if last.payload_offset + last.payload_len + TRAILER.size != blk_size:
            return None
        # spot-check the newest frame against the data: the index is a cache, not the truth
        fd, _ = entry.bucket.fds.get(entry._blk(block_id))
        head = decode_head(files.pread(fd, last.frame_offset, last.payload_offset - last.frame_offset))
        if not head or head.ts_us != last.ts_us or head.meta != last.meta or head.payload_len != last.payload_len:
            return None
    except CorruptRecordError:
        return None
    return recs


def rescan(entry: "Entry", path: Path, report: list[str]) -> tuple[list[IndexRecord], int]:
    data = files.read_file(path) or b""
    plan = scan(data)
    if not plan.clean:
        n = 0
        while (path.with_name(f"{path.name}.torn-{n}")).exists():
            n += 1
        torn = path.with_name(f"{path.name}.torn-{n}")
        files.atomic_write(torn, data[plan.good_end :])
        fd, _ = entry.bucket.fds.get(path)
        files.truncate(fd, plan.good_end)
        files.datasync(fd)
        report.append(
            f"{entry.bucket.name}/{entry.name}: block {path.name} truncated from {len(data)} to "
            f"{plan.good_end} bytes ({plan.reason}); torn bytes kept in {torn.name}"
        )
        entry.bucket.stats["torn_tails"] += 1
    for f in plan.damaged:
        report.append(
            f"{entry.bucket.name}/{entry.name}: block {path.name}: record {f.head.ts_us} at offset {f.offset} "
            f"dropped (payload checksum mismatch); its bytes stay in the block, later records are kept"
        )
        entry.bucket.stats["damaged_records"] += 1
    recs = [IndexRecord(f.head.ts_us, f.offset, f.head.payload_len, f.head.meta) for f in plan.frames]
    return recs, plan.good_end


def replay_journal(entry: "Entry", report: list[str]) -> None:
    path = entry.dir / JOURNAL
    data = files.read_file(path)
    if not data:
        return
    ops, end, reason = jfmt.decode_ops(data)
    if end < len(data):
        fd, _ = entry.bucket.fds.get(path)
        files.truncate(fd, end)
        files.datasync(fd)
        report.append(f"{entry.bucket.name}/{entry.name}: journal truncated at {end} of {len(data)} bytes ({reason})")
        entry.bucket.stats["torn_tails"] += 1
    dead = 0
    for op in ops:
        k = bisect.bisect_left(entry._ids, op.block_id)
        b = entry.blocks[k] if k < len(entry._ids) and entry._ids[k] == op.block_id else None
        i = b.find(op.ts_us) if b is not None else -1
        if b is None or i < 0 or b.poff[i] != op.payload_offset:
            dead += 1
        elif op.op == jfmt.OP_LABELS:
            set_labels(entry, b, i, dict(op.labels))
        else:
            remove_at(entry, b, i)
    entry._journal_ops = len(ops)
    for b in [b for b in entry.blocks if not len(b)]:
        delete_block(entry, b)
    if dead:
        compact(entry)
    else:
        maybe_compact(entry)
