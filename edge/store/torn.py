"""Torn tails kept by recovery (``<id>.blk.torn-<n>``): which exist, their bound, their removal.

Owns: the engine-wide list of torn files (entry, name, bytes, age), the bound on the bytes kept
(``EDGE_TORN_KEEP_SIZE``, default 16 MiB; README "Durability"), removing the oldest beyond it,
removing a block's torn files with the block, and the figures ``edge check``, ``/info`` and
``/metrics`` report (kept now, removed since start).
Must not: decide what is torn (``formats/recovery.py``), write torn files (``entry_index.rescan``
does), call the OS except through ``files``, import trio.

Why a bound: a torn tail is what a power cut left of writes that were never acknowledged (or,
rarely, what follows a frame header that rotted: kept for a human). Recovery keeps the bytes
rather than deleting them, but a device that loses power every day would collect them forever,
and they count in their bucket's disk usage like every file of it. So the newest are kept up to
the bound and the oldest beyond it are removed (reported), and a block's torn files go with the
block when FIFO evicts it or its last record is removed: they are older than anything the
quota keeps. Removals join the engine's ``unsynced`` folders like every store removal.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol

from edge.store import files
from edge.store.blocks import block_file_name

DEFAULT_KEEP = 16 * 1024 * 1024
TORN_NAME = re.compile(r"(\d+)\.blk\.torn-(\d+)")
log = logging.getLogger("edge.store")


def block_of(name: str) -> int | None:
    """The block id a torn file's name belongs to, None when it is not one."""
    m = TORN_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class TornOwner(Protocol):
    """What the list uses of the entry a torn file belongs to (entry_state.EntryState is one):
    a Protocol, so torn.py stays below the entry modules."""

    @property
    def name(self) -> str: ...

    @property
    def dir(self) -> Path: ...

    @property
    def bucket(self) -> _Named: ...

    def _disk_delta(self, delta: int) -> None: ...


@dataclass(slots=True)
class TornFile:
    entry: TornOwner
    name: str
    size: int
    mtime: float


class TornFiles:
    """Every torn file of the engine's buckets, oldest first by age (then name)."""

    def __init__(self, unsynced: files.UnsyncedFolders, keep: int = DEFAULT_KEEP):
        self.keep = keep
        self.unsynced = unsynced  # the engine's: a removal joins its next group commit
        self._files: list[TornFile] = []
        self.bytes = 0
        self.removed_files = 0  # since start, beyond the bound
        self.removed_bytes = 0
        self.removed_with_blocks = 0  # since start, with their block

    def __len__(self) -> int:
        return len(self._files)

    def add(self, entry: TornOwner, name: str, size: int, mtime: float) -> None:
        self._files.append(TornFile(entry, name, size, mtime))
        self.bytes += size

    def enforce(self, report: list[str], *, log_too: bool) -> None:
        """Remove the oldest torn files until the rest fits the bound (each one reported, and
        logged with ``log_too``: once start-up is over)."""
        if self.bytes <= self.keep:
            return
        self._files.sort(key=lambda t: (t.mtime, t.name))
        while self._files and self.bytes > self.keep:
            t = self._files.pop(0)
            self._unlink(t)
            self.removed_files += 1
            self.removed_bytes += t.size
            line = (f"{t.entry.bucket.name}/{t.entry.name}: torn file {t.name} ({t.size} bytes) removed: "
                    f"the torn bytes kept exceed their bound of {self.keep} bytes (EDGE_TORN_KEEP_SIZE)")
            report.append(line)
            if log_too:
                log.warning("recovery: %s", line)

    def drop_block(self, entry: TornOwner, block_id: int) -> None:
        """``entry``'s block ``block_id`` is deleted: its torn files go with it."""
        if not self._files:
            return
        prefix = block_file_name(block_id) + ".torn-"
        gone = [t for t in self._files if t.entry is entry and t.name.startswith(prefix)]
        for t in gone:
            self._files.remove(t)
            self._unlink(t)
            self.removed_with_blocks += 1

    def forget(self, entries: Iterable[TornOwner]) -> None:
        """Entries removed with their folders: their torn files went with them."""
        ids = {id(e) for e in entries}
        keep = [t for t in self._files if id(t.entry) not in ids]
        self.bytes -= sum(t.size for t in self._files if id(t.entry) in ids)
        self._files = keep

    def names(self, entry: TornOwner, block_id: int) -> list[str]:
        prefix = block_file_name(block_id) + ".torn-"
        return [t.name for t in self._files if t.entry is entry and t.name.startswith(prefix)]

    def _unlink(self, t: TornFile) -> None:
        entry = t.entry
        if files.unlink(entry.dir / t.name):
            entry._disk_delta(-t.size)
        self.unsynced.add(entry.dir)
        self.bytes -= t.size

    def summary(self) -> str:
        return (f"torn bytes kept: {len(self._files)} files, {self.bytes} bytes (bound {self.keep}); "
                f"removed since start: {self.removed_files} files ({self.removed_bytes} bytes) beyond the "
                f"bound, {self.removed_with_blocks} with their blocks")
