"""Group commit: the only place where fsyncs are scheduled.

Owns: the Flusher task and ``wait_durable()``; the sync policy (EDGE_SYNC).
Must not: know HTTP, touch files itself (``Durability.sync()`` from the store does the syscalls).

How it works. Writers append (the store buffers, ``Entry.flush()`` writes with one writev and
returns a ``Durability``: the fds and folders that now need an fsync). A writer then awaits
``wait_durable(d)``: its Durability joins the *open generation*. The flusher task takes the open
generation as soon as it is idle, opens the next one, runs one ``sync()`` for everything in a
worker thread, and wakes every writer of that generation. So N concurrent writers share one
fdatasync per file instead of paying N (perf-limits.md §1: ~0.3-0.5 ms fixed per fdatasync),
while a lone writer pays exactly one sync and no timer delay.

Why a task and not "sync inline in the handler": inline syncs serialise behind each other and
cannot be merged; a timer-driven syncer (ReductStore's 100 ms loop) delays every ack.
Why not O_DSYNC: it syncs every write() separately, which is what group commit avoids.

Removals: a Durability also fsyncs the folders of store removals not yet durable and may carry
block files that FIFO eviction renamed away (``files.UnsyncedFolders``, ``files.trash``);
``sync()`` unlinks them in the worker thread after the fdatasyncs (freeing a block's extents costs
milliseconds and must not stall the event loop) and before those folders' fsync, all before the
writers are answered: an acknowledged write or removal never comes back after a power cut, and a
bucket's files are within its quota whenever a write is acknowledged. With the policy "none"
the trash alone goes to a worker thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import trio
from .. import blocking

if TYPE_CHECKING:
    from ..store import Durability

log = logging.getLogger("edge.commit")


@dataclass
class FlusherStatistics:
    syncs: int
    synced_generations: int
    waiters_served: int
    sync_seconds_total: float
    failures: int


class _Generation:
    __slots__ = ("durability", "done", "error", "waiters")

    def __init__(self) -> None:
        self.durability: "Durability | None" = None
        self.done = trio.Event()
        self.error: BaseException | None = None
        self.waiters = 0


class Flusher:
    def __init__(self, policy: str = "always") -> None:
        self.policy = policy
        self._open = _Generation()
        self._work = trio.Event()
        self._syncs = 0
        self._generations = 0
        self._served = 0
        self._sync_seconds = 0.0
        self._failures = 0
        # Told the duration of every sync round (the metrics room's fsync latency histogram).
        self.sync_observers: list[Callable[[float], None]] = []

    async def wait_durable(self, durability: "Durability | None") -> None:
        """Return once everything in ``durability`` is on disk; raise the store's error if the sync failed."""
        if durability is None:
            return
        if durability.empty or self.policy == "none":
            if durability.has_trash:  # EDGE_SYNC=none: the unlinks still stay off the event loop
                with trio.CancelScope(shield=True):
                    await blocking.run_disk(durability.take_trash().empty_trash)
            # Done without a sync, as the policy asks: what waited on its tokens may go on, and
            # later flushes need not cover this one's files again (entry_write.durability).
            durability.close(ok=True)
            return
        gen = self._open
        if gen.durability is None:
            gen.durability = durability
        else:
            gen.durability.merge(durability)
        gen.waiters += 1
        self._work.set()
        # Shielded: a client that disconnects must not leave a half-counted generation behind,
        # and the flusher finishes the sync anyway.
        with trio.CancelScope(shield=True):
            await gen.done.wait()
        self._served += 1
        if gen.error is not None:
            raise gen.error

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The flusher loop; lives in the root nursery's ``durable`` scope so it outlives the HTTP front."""
        task_status.started()
        while True:
            await self._work.wait()
            await self._sync_open_generation()

    async def _sync_open_generation(self) -> None:
        self._work = trio.Event()
        gen, self._open = self._open, _Generation()
        if gen.durability is None:
            gen.done.set()
            return
        started = time.perf_counter()
        try:
            # Shielded so that shutdown never abandons writers that were promised a sync.
            with trio.CancelScope(shield=True):
                await blocking.run_commit(gen.durability.sync)
        except Exception as exc:  # the store's DiskFullError / StorageIOError reach every waiter
            self._failures += 1
            gen.error = exc
            log.error("fsync failed: %s", exc)
        finally:
            elapsed = time.perf_counter() - started
            self._sync_seconds += elapsed
            for observe in self.sync_observers:
                observe(elapsed)
            self._syncs += 1
            self._generations += 1
            gen.done.set()

    async def drain(self) -> None:
        """Sync whatever is still open; called at shutdown after the HTTP front has stopped."""
        await self._sync_open_generation()

    def statistics(self) -> FlusherStatistics:
        return FlusherStatistics(self._syncs, self._generations, self._served, self._sync_seconds, self._failures)
