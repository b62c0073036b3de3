"""Fair turns: how connections that work without blocking share the one event loop.

Owns: the unit of work the front charges for client bytes (``SLICE``, ``STEP``), and ``Turns``,
the queue a connection joins once it has spent a slice of work without a real wait; one waiter
is let go per scheduler pass, so however many connections flood us, each pass runs at most one
(rarely two) slices of their work beside everybody else's.
Must not: do I/O, parse, know HTTP, or decide who is hostile (a 10 MB upload takes turns too;
it just does not notice).

Why not a plain ``trio.lowlevel.checkpoint()`` every so often: Trio runs every runnable task
once per pass, so with 50 connections each yielding after 1 ms of parsing, a pass takes 50 ms
and a polite request, which needs several passes (head, handler, store, send), waits seconds.
A checkpoint bounds the work *per task*; the queue bounds it *per pass*, whatever the number of
busy connections. A connection that blocks on I/O between requests starts a fresh slice (see
``front.py``), so clients that send one request and read the answer never queue at all.

The cost model is deliberately simple and deterministic (testable): a byte costs 1 unit, each
Python-level step over client input (a receive, a chunk-size line, a request of a pipelined
burst) costs ``STEP`` units, whatever its size, because that is where the CPU goes: a body of
1-byte chunks costs a Python call per byte, a 64 KiB receive costs a few microseconds.
"""

from __future__ import annotations

from collections import OrderedDict

import trio

SLICE = 256 * 1024  # units a connection may spend before it takes a turn (~0.2-1 ms of CPU here)
STEP = 4096  # one Python-level step over client bytes costs as much as this many bytes
REQUEST = 8 * STEP  # a request through routing, a handler and a response (~50 us here)


class Turns:
    """Connections that have spent a slice wait here; ``run`` lets one go per scheduler pass.

    ``take()`` returns once it is the caller's turn (it is a checkpoint, cancellation included).
    When nobody waits and no turn went out this pass it costs one plain checkpoint, so a lone
    busy connection (an upload on a quiet server) runs at full speed. Without ``run`` (no server
    around it, as in unit tests of the body reader) ``take`` is a plain checkpoint.
    """

    __slots__ = ("_waiting", "_lot", "_granted", "_running", "turns_waited")

    def __init__(self) -> None:
        self._waiting: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()
        self._lot = trio.lowlevel.ParkingLot()
        self._granted = False  # a turn went out since the dispatcher's last pass
        self._running = False
        self.turns_waited = 0  # turns that had to queue (for tests and diagnostics)

    def __len__(self) -> int:
        return len(self._waiting)

    async def run(self) -> None:
        """The dispatcher: one task for the server's lifetime (its nursery cancels it)."""
        self._running = True
        try:
            while True:
                if not self._waiting and not self._granted:
                    await self._lot.park()
                    continue
                self._granted = False
                if self._waiting:
                    task, _ = self._waiting.popitem(last=False)
                    self._granted = True
                    trio.lowlevel.reschedule(task)
                await trio.lowlevel.checkpoint()
        finally:
            self._running = False
            while self._waiting:  # nobody may be left parked without a dispatcher
                task, _ = self._waiting.popitem(last=False)
                trio.lowlevel.reschedule(task)

    async def take(self) -> None:
        if not self._running or (not self._waiting and not self._granted):
            if self._running:
                self._granted = True
                self._lot.unpark()
            await trio.lowlevel.checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._waiting[task] = None
        self.turns_waited += 1
        self._lot.unpark()

        def abort(_raise_cancel: object) -> trio.lowlevel.Abort:
            self._waiting.pop(task, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


class Budget:
    """One connection's spending in the current slice; ``charge`` takes a turn when it is spent.

    ``reset()`` after a real wait for a new request (the connection was idle: it had nothing to
    make us do). Waits in the middle of a request do not reset it: an attacker who pauses a
    millisecond between bursts must not earn a fresh slice for every burst.
    """

    __slots__ = ("turns", "spent")

    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.spent = 0

    def reset(self) -> None:
        self.spent = 0

    async def charge(self, units: int) -> bool:
        """Add ``units``; True if a turn was taken (a checkpoint happened)."""
        self.spent += units
        if self.spent < SLICE:
            return False
        self.spent = 0
        await self.turns.take()
        return True
