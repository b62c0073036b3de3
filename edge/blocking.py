"""What runs in a worker thread, and how: the one rule for blocking work.

Owns: the worker-thread limiters and the only entry points through which edge/ leaves the event
loop: ``run_disk`` (file work that may fsync or walk a tree: state files, staging, removals,
recovery at open), ``run_commit`` (the group commit's sync round, edge/services/commit.py),
``run_cpu`` (CPU-heavy pure work: password hashing, link sealing, crc of big payloads) and
``run_net`` (blocking network clients: SMTP delivery). ``StateWriter``: a registry's state file
written off the loop, in order. The test-only slow-fsync knob (``slow_down_fsync``).
Must not: know what the work is (callers hand in a function), import anything of edge, or be
bypassed: ``tests/test_layers.py`` fails if another module calls ``trio.to_thread`` (the one
documented exception is ``edge/http/payload.py``'s detached crc check, see there).

The rule. A call leaves the loop when it can block for more than about a millisecond on a
healthy device, or for an unbounded time on a sick one: every fsync/fdatasync (a slow or busy
card takes 10-500 ms), renames and state-file replacements (they fsync), removing a folder tree,
opening the store (recovery), reading or checking more than ~1 MiB, password hashing. What stays
on the loop: the store's appends (one writev into the page cache per request chunk, made durable
later by the group commit in a thread), preads of up to 1 MiB, stat calls, in-memory work.
Engine objects are not thread-safe: a function run here may read files through fds it owns (a
dup) or paths, never mutate engine state; split such work into an in-memory step on the loop and
a file step here (``Engine.detach_bucket``/``reserve_bucket``, ``Bucket.entry_files_step``,
``StateWriter`` for the registries). Start-up opens the rooms before anything is served; the
store's recovery runs here. ``tests/server/test_slow_disk.py`` checks the rule with every fsync
slowed: none may run on the event loop once the server listens.

Cancellation. ``run_disk``, ``run_commit`` and ``run_cpu`` use ``abandon_on_cancel=False``: a
cancelled caller waits until the thread has finished, then sees the Cancelled. Why: an abandoned
write would let the caller run ahead of the disk (answer the client, retry into the same tmp
file, rewrite the registry) while the old thread still renames or fsyncs; waiting keeps the files
and what the caller believes about them in step. Every job is bounded (one file, one sync round,
one tree), so the wait is short. ``run_net`` abandons: a hung SMTP relay must not hold shutdown,
and its function touches no files.

Bounds. Threads are few on purpose (2 cores): at most ``DISK_THREADS`` file jobs, ``CPU_THREADS``
CPU jobs and ``NET_THREADS`` network jobs run at once, the rest queue (trio's default is 40
threads for everything). The group commit has its own single slot, so bulk file work (a bucket
deletion, an upload's commit) never delays the fdatasync every acknowledged write waits for.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING, Callable, TypeVar

import trio

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")
log = logging.getLogger("edge.blocking")

DISK_THREADS = 4
CPU_THREADS = 2
NET_THREADS = 2

_disk = trio.CapacityLimiter(DISK_THREADS)
_commit = trio.CapacityLimiter(1)
_cpu = trio.CapacityLimiter(CPU_THREADS)
_net = trio.CapacityLimiter(NET_THREADS)


async def run_disk(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread (file work); never abandoned (see the header)."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_disk, abandon_on_cancel=False)


async def run_commit(fn: Callable[[], T]) -> T:
    """The group commit's sync round, on its own single thread slot."""
    return await trio.to_thread.run_sync(fn, limiter=_commit, abandon_on_cancel=False)


async def run_cpu(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread (CPU-heavy, GIL-releasing work); never abandoned."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_cpu, abandon_on_cancel=False)


async def run_net(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread (a blocking network client); abandoned on cancellation,
    so ``fn`` must not touch files or state the loop reads."""
    return await trio.to_thread.run_sync(fn, *args, limiter=_net, abandon_on_cancel=True)


class StateWriter:
    """Writes one state file (a registry's JSON) off the loop, one write at a time, newest last.

    ``await save()`` takes the snapshot when its turn comes (so a later save never writes older
    state than an earlier one) and returns once that snapshot is durable (``write`` fsyncs)."""

    def __init__(self, snapshot: Callable[[], bytes], write: Callable[[bytes], None]) -> None:
        self._snapshot = snapshot
        self._write = write
        self._lock = trio.Lock()

    async def save(self) -> None:
        async with self._lock:
            data = self._snapshot()
            await run_disk(self._write, data)


# --- test-only knob ----------------------------------------------------------------------------

_real_fsync = os.fsync
_real_fdatasync = getattr(os, "fdatasync", None)


def slow_down_fsync(ms: float) -> None:
    """TEST ONLY (``EDGE_TEST_SLOW_FSYNC_MS``): every ``os.fsync``/``os.fdatasync`` in this process
    sleeps ``ms`` first, like a slow SD card. A blocking call left on the event loop then stalls
    every request by that much (tests/server/test_slow_disk.py measures it), and is logged as
    ``fsync on the event loop`` with its callers. 0 restores the real calls."""
    if ms <= 0:
        os.fsync = _real_fsync
        if _real_fdatasync is not None:
            os.fdatasync = _real_fdatasync
        return
    delay = ms / 1000.0

    def slowed(real: Callable[[FileDescriptorLike], None]) -> Callable[..., None]:  # (os.fsync: "fd" by name too)
        @functools.wraps(real)
        def call(fd: FileDescriptorLike) -> None:
            if threading.current_thread() is threading.main_thread():
                where = [f"{f.filename.rpartition('/edge/')[2] or f.filename}:{f.lineno} {f.name}"
                         for f in traceback.extract_stack(limit=8)[:-1]]
                log.warning("fsync on the event loop: %s", " <- ".join(reversed(where)))
            time.sleep(delay)
            real(fd)
        return call

    os.fsync = slowed(_real_fsync)
    if _real_fdatasync is not None:
        os.fdatasync = slowed(_real_fdatasync)
