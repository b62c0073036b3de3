"""Fair turns (edge/server/fairness.py), large-head reservations (admission.LargeHeads), and the
decoder's bounded, coalescing steps: the pieces that keep one busy connection from holding the
event loop, each checked on its own (no sockets)."""

from __future__ import annotations

import trio

from edge.server.admission import LargeHeads
from edge.server.fairness import SLICE, STEP, Budget, Turns
from edge.server.protocol import MAX_STEPS_PER_CALL, ChunkedDecoder, HeadReader


async def _busy_and_polite(turns_for_busy: Turns | None, busy: int = 20, rounds: int = 30) -> int:
    """``busy`` tasks spend a slice per step; a polite task checkpoints in a loop. Returns the
    most busy slices that ran between two consecutive steps of the polite task."""
    slices = 0
    worst = 0
    done = False

    async def hog(budget: Budget | None) -> None:
        nonlocal slices
        while not done:
            slices += 1
            if budget is not None:
                await budget.charge(SLICE)
            else:
                await trio.lowlevel.checkpoint()

    async def polite() -> None:
        nonlocal worst, done
        await trio.sleep(0.01)
        for _ in range(rounds):
            before = slices
            await trio.lowlevel.checkpoint()
            worst = max(worst, slices - before)
        done = True

    async with trio.open_nursery() as nursery:
        if turns_for_busy is not None:
            nursery.start_soon(turns_for_busy.run)
        for _ in range(busy):
            nursery.start_soon(hog, Budget(turns_for_busy) if turns_for_busy is not None else None)
        await polite()
        nursery.cancel_scope.cancel()
    return worst


async def test_busy_connections_run_one_slice_per_pass_whatever_their_number():
    assert await _busy_and_polite(None) >= 19  # plain checkpoints: every hog once per pass
    assert await _busy_and_polite(Turns()) <= 2  # turns: at most two slices per pass


async def test_a_lone_busy_connection_is_not_slowed_by_turns():
    """Alone, a turn costs one scheduler pass, as a plain checkpoint does."""
    async def passes(turns: Turns | None) -> int:
        count = 0
        stop = False

        async def tick() -> None:  # counts passes: one step per pass
            nonlocal count
            while not stop:
                count += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            if turns is not None:
                nursery.start_soon(turns.run)
            nursery.start_soon(tick)
            await trio.sleep(0)
            start = count
            budget = Budget(turns if turns is not None else Turns())
            for _ in range(300):
                await budget.charge(SLICE)
            stop = True
            nursery.cancel_scope.cancel()
        return count - start

    plain, fair = await passes(None), await passes(Turns())
    assert fair <= plain * 1.2 + 5, (plain, fair)


async def test_a_budget_takes_a_turn_only_after_a_slice_and_reset_starts_over():
    budget = Budget(Turns())
    assert not await budget.charge(SLICE - STEP)
    budget.reset()
    assert not await budget.charge(SLICE - 1)
    assert await budget.charge(1)
    assert budget.spent == 0


async def test_a_waiter_cancelled_in_the_queue_leaves_it():
    turns = Turns()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(turns.run)
        await trio.sleep(0)
        turns._granted = True  # a turn went out this pass: the next taker queues
        with trio.move_on_after(0) as cs:
            await turns.take()
        assert cs.cancelled_caught or len(turns) == 0
        assert len(turns) == 0
        nursery.cancel_scope.cancel()


def test_large_heads_are_shared_and_capped_per_address():
    heads: LargeHeads[str] = LargeHeads(slots=4, per_address=2)
    assert heads.reserve("a1", "10.0.0.1", trusted=False)
    assert heads.reserve("a1", "10.0.0.1", trusted=False)  # idempotent
    assert heads.reserve("a2", "10.0.0.1", trusted=False)
    assert not heads.reserve("a3", "10.0.0.1", trusted=False)  # its share is used up
    assert heads.reserve("p1", "127.0.0.1", trusted=True)
    assert heads.reserve("p2", "127.0.0.1", trusted=True)  # a trusted proxy has no share limit
    assert not heads.reserve("b1", "10.0.0.2", trusted=False)  # all slots held
    heads.release("a1")
    heads.release("a1")  # idempotent
    assert heads.reserve("b1", "10.0.0.2", trusted=False)
    assert not heads.holds("a1") and heads.holds("b1") and len(heads) == 4


def test_small_chunks_come_back_joined_and_each_call_is_bounded():
    wire = b"".join(b"1\r\n%c\r\n" % (65 + i % 26) for i in range(1000)) + b"0\r\n\r\n"
    dec, buf, pieces = ChunkedDecoder(), bytearray(wire), []
    while (data := dec.next_data(buf)) not in (None, b""):
        pieces.append(data)
    assert dec.done and not buf
    assert b"".join(pieces) == bytes(65 + i % 26 for i in range(1000))
    assert max(map(len, pieces)) == MAX_STEPS_PER_CALL  # many chunks per piece, a bounded number
    assert dec.steps == 1002  # 1001 size lines (the last one "0") and the trailer section


def test_a_large_chunk_is_not_copied_twice_nor_joined_with_the_next_request():
    dec, buf = ChunkedDecoder(), bytearray(b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n")
    assert dec.next_data(buf) == b"hello"
    assert dec.next_data(buf) == b"" and bytes(buf) == b"GET / HTTP/1.1\r\n"


def test_head_reader_finds_before_it_parses():
    reader = HeadReader()
    buf = bytearray(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b")
    end = reader.find(buf)
    assert end == len(b"GET /a HTTP/1.1\r\nHost: t")
    assert bytes(buf).startswith(b"GET /a")  # nothing consumed yet
    head = reader.take(buf, end)
    assert head.target == "/a" and bytes(buf) == b"GET /b"
    assert reader.find(buf) == -1
