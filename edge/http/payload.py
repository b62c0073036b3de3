"""A whole record's payload as a response body that is never complete unless its crc matched.

Owns: ``payload_body(entry, ref)``, the body iterator every whole-record read path uses (single
GETs, batched reads v1/v2, link downloads), and the bounded worker threads that verify large
payloads.
Must not: send anything itself (``edge/server/front.py`` does, with ``os.sendfile`` for ``FileSegment``), know
the frame layout (``Entry.verify_payload`` does) or serve a range (ranges are not crc-checked).

Default path: 1 MiB preads (into a pooled pair of reused buffers) crc'd inline, the last chunk
held back until the trailer matched (see ``SENDFILE`` for why). With ``EDGE_READ_SENDFILE=1``:
Why: reading a 10 MB payload to crc it and send it costs ~6.6 ms of event-loop CPU (pread copies
plus ~2.5 ms of crc32); ``os.sendfile`` moves it for ~1.7 ms (perf-limits.md section 4c). So a
large payload goes out with sendfile while a worker thread preads and crcs the same (cached)
bytes through its own dup'd fd; pread and crc32 release the GIL. The last ``TAIL_BYTES`` are held
back until the check has passed: on a mismatch the iterator raises ``CorruptRecordError`` before
them, the front logs it and closes the connection, and the client sees a truncated response,
never a complete bad one. Small payloads are read and verified whole before their first byte.

Threads: at most ``VERIFY_THREADS`` checks run at once; a read that finds no free slot sends its
prefix first and verifies afterwards (still before the tail). A thread owns its fd and closes it
itself, so a body abandoned mid-way (client gone, cancellation) leaks nothing: the thread finishes
its pread loop and the result is dropped.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, AsyncGenerator, AsyncIterator

import trio

if TYPE_CHECKING:
    from outcome import Outcome

    from ..store import Entry, RecordRef

from ..model import BIG_RECORD_BYTES
from ..server.types import FileSegment

TAIL_BYTES = 64 * 1024  # held back until the crc check of a larger payload has passed
VERIFY_THREADS = 3
# Measured on the 2-vCPU VM (issue 8): sendfile + threaded check costs MORE server CPU per 10 MB
# record (7.5-7.8 ms) than pread + inline crc + send (6.0 ms): sendfile alone is ~5.0 ms here, not
# the 1.7 ms of perf-limits.md 4c, and the check adds ~2.5 ms. So the copying path is the default;
# EDGE_READ_SENDFILE=1 selects the sendfile path (kept and tested for other machines/kernels).
# Since then the copying path costs ~4.7 ms per 10 MB record (ISA-L crc32 when ``isal`` is
# installed, reused read buffers), see bench/RESULTS.md "Issue 8, continued".
SENDFILE = False   # Config.read_sendfile (EDGE_READ_SENDFILE=1), set by edge.main at start-up

_limiter = trio.CapacityLimiter(VERIFY_THREADS)

CHUNK_BYTES = 1 << 20
# Pairs of read buffers kept for reuse: a fresh 1 MiB bytes per pread cost ~0.45 ms of page
# faults per 10 MB record (issue 8). A body takes a pair for its whole life (a chunk is sent
# before the one after next is read into the same buffer) and gives it back when closed; at most
# POOL_PAIRS idle pairs are kept (2 MiB each), concurrent bodies beyond that allocate their own.
POOL_PAIRS = 4
_pool: list[tuple[bytearray, bytearray]] = []


class _Check:
    """One crc verification in a worker thread; ``wait()`` re-raises its error."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None

    def try_start(self, entry: Entry, ref: RecordRef) -> bool:
        try:
            _limiter.acquire_on_behalf_of_nowait(self)
        except trio.WouldBlock:
            return False
        self._start(entry, ref)
        return True

    async def start(self, entry: Entry, ref: RecordRef) -> None:
        await _limiter.acquire_on_behalf_of(self)
        self._start(entry, ref)

    def _start(self, entry: Entry, ref: RecordRef) -> None:
        try:
            fd, _ = entry.payload_fd(ref)  # the thread's own: it closes it, whatever we do
        except BaseException:
            _limiter.release_on_behalf_of(self)
            raise
        token = trio.lowlevel.current_trio_token()

        def work() -> None:
            try:
                entry.verify_payload(fd, ref)
            finally:
                os.close(fd)

        def deliver(result: Outcome[None]) -> None:  # in the worker thread
            try:
                token.run_sync_soon(self._finish, result)
            except trio.RunFinishedError:
                pass

        try:
            trio.lowlevel.start_thread_soon(work, deliver)
        except BaseException:
            os.close(fd)
            _limiter.release_on_behalf_of(self)
            raise

    def _finish(self, result: Outcome[None]) -> None:  # in the Trio thread
        _limiter.release_on_behalf_of(self)
        try:
            result.unwrap()
        except BaseException as exc:  # noqa: BLE001 - handed to the body iterator
            self.error = exc
        self.done.set()

    async def wait(self) -> None:
        await self.done.wait()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


async def payload_body(entry: Entry, ref: RecordRef) -> AsyncGenerator[bytes | memoryview | FileSegment, None]:
    """``ref``'s whole payload; raises ``CorruptRecordError`` (or a storage error) before its end
    if the crc does not match. Close it (``aclose``/``aclosing``) when done: it holds an fd."""
    size = ref.size
    if size <= BIG_RECORD_BYTES:
        for part in entry.read_verified([ref]):
            yield part
        return
    if not SENDFILE:
        # Chunks are crc'd as they are read; the last one is held back until read_payload has
        # checked the trailer (it raises CorruptRecordError after its final chunk otherwise).
        # The chunks are views into a pooled pair of buffers, alternately: the held chunk stays
        # intact while the next is read, and the front has sent a chunk (send_all returned)
        # before it asks for the next one, which is when its buffer is read into again.
        bufs = _pool.pop() if _pool else (bytearray(CHUNK_BYTES), bytearray(CHUNK_BYTES))
        chunks = entry.read_payload(ref, CHUNK_BYTES, bufs)
        held: bytes | memoryview | None = None
        chunk: bytes | memoryview | None = None
        try:
            for chunk in chunks:
                if held is not None:
                    yield held
                held = chunk
            if held is not None:
                yield held
        finally:
            chunks.close()  # it holds views of bufs: no read into them after this
            held = chunk = None
            if len(_pool) < POOL_PAIRS:
                _pool.append(bufs)
        return
    fd, base = entry.payload_fd(ref)
    try:
        check = _Check()
        started = check.try_start(entry, ref)
        split = size - TAIL_BYTES
        yield FileSegment(fd, base, split)
        if not started:
            await check.start(entry, ref)
        await check.wait()
        yield FileSegment(fd, base + split, TAIL_BYTES)
    finally:
        os.close(fd)
