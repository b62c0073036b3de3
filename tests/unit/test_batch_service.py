"""edge/services/batch.py with fake storage: how body bytes reach record writers, per-record
errors, and what a request-level failure leaves behind. No sockets, no files."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

from edge.errors import BadRequestError, ConflictError, EdgeError, InvalidInputError
from edge.services import batch as service


def status_of(exc):
    return {ConflictError: 409, InvalidInputError: 422}.get(type(exc), 500)


class FakeWriter:
    def __init__(self, entry, ts, length, fail_after=None):
        self.entry, self.ts, self.length, self.fail_after = entry, ts, length, fail_after
        self.chunks = []
        self.state = "open"

    def write(self, chunk):
        if self.fail_after is not None and sum(len(c) for c in self.chunks) + len(chunk) > self.fail_after:
            self.state = "aborted"
            raise EdgeError("disk trouble")
        self.chunks.append(chunk)

    def finish(self):
        assert sum(len(c) for c in self.chunks) == self.length
        self.state = "ready"

    def abort(self):
        if self.state in ("open", "ready"):
            self.state = "aborted"


class FakeEntry:
    def __init__(self, name):
        self.name = name
        self.writers = []
        self.stored = {}
        self.flushes = 0
        self.fail_after = {}

    def begin_write(self, ts, length, content_type, labels):
        if ts in self.stored or any(w.ts == ts and w.state != "aborted" for w in self.writers):
            raise ConflictError(f"A record with timestamp {ts} already exists")
        w = FakeWriter(self, ts, length, self.fail_after.get(ts))
        self.writers.append(w)
        return w

    def flush(self):
        self.flushes += 1
        for w in self.writers:
            if w.state == "ready":
                w.state = "published"
                self.stored[w.ts] = b"".join(bytes(c) for c in w.chunks)
        return FakeDurability()


class FakeDurability:
    empty = False
    merged = 0

    def merge(self, other):
        self.merged += 1

    def close(self):
        pass


class FakeBucket:
    def __init__(self):
        self.entries = {}

    def get_or_create_entry(self, name):
        if "." in name:
            raise InvalidInputError("bad name")
        return self.entries.setdefault(name, FakeEntry(name))

    def get_entry(self, name):
        return self.entries[name]


class FakeStorage:
    def __init__(self):
        self.bucket = FakeBucket()
        self.engine = self
        self.flusher = self
        self.locks = []
        self.written = []
        self.durable_waits = 0

    def get_bucket(self, name):
        return self.bucket

    @asynccontextmanager
    async def entry_lock(self, bucket, entry):
        self.locks.append(entry)
        yield

    async def open_entry(self, bucket, name):
        return bucket.get_or_create_entry(name)

    def after_write(self, bucket, entry, records):
        self.written.append((entry, [r[0] for r in records]))

    async def wait_durable(self, durability):
        self.durable_waits += 1


class Chunked:
    """A body that hands out the given pieces one receive at a time (at most max_bytes)."""

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.asked = []

    async def receive_some(self, max_bytes=1 << 20):
        self.asked.append(max_bytes)
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if len(piece) > max_bytes:
            piece, rest = piece[:max_bytes], piece[max_bytes:]
            self.pieces.insert(0, rest)
        return piece


def items(*specs):
    return [service.WriteItem(entry, ts, size, "ct", {}, (entry, ts)) for entry, ts, size in specs]


def test_small_records_share_one_receive_and_runs_flush_once():
    storage = FakeStorage()
    body = Chunked([b"aabbbc" + b"dd"])
    errors = trio.run(lambda: service.write_batch(
        storage, "b", items(("x", 1, 2), ("x", 2, 3), ("x", 3, 1), ("y", 1, 2)), body, 8, status_of=status_of))
    assert errors == []
    x, y = storage.bucket.entries["x"], storage.bucket.entries["y"]
    assert x.stored == {1: b"aa", 2: b"bbb", 3: b"c"} and y.stored == {1: b"dd"}
    assert (x.flushes, y.flushes) == (1, 1)
    assert storage.locks == ["x", "y"]
    assert storage.written == [("x", [1, 2, 3]), ("y", [1])]
    assert storage.durable_waits == 1
    assert len(body.asked) == 1


def test_big_record_gets_the_received_bytes_objects_without_copies():
    storage = FakeStorage()
    big = bytes(range(256)) * 1024  # 256 KiB >= DIRECT_BYTES
    piece1, piece2 = big[:100_000], big[100_000:]
    body = Chunked([b"s", piece1, piece2])
    errors = trio.run(lambda: service.write_batch(
        storage, "b", items(("x", 1, 1), ("x", 2, len(big))), body, 1 + len(big), status_of=status_of))
    assert errors == []
    w = storage.bucket.entries["x"].writers[1]
    assert w.chunks[0] is piece1 and w.chunks[1] is piece2
    assert body.asked[1] == len(big)  # asked for exactly the record: nothing to slice


def test_per_record_errors_skip_their_bytes():
    storage = FakeStorage()
    storage.bucket.get_or_create_entry("x").stored[2] = b"old"
    storage.bucket.entries["x"].fail_after[4] = 1
    body = Chunked([b"11", b"22", b"333", b"4444", b"55"])
    errors = trio.run(lambda: service.write_batch(
        storage, "b", items(("x", 1, 2), ("x", 2, 2), ("bad.name", 3, 3), ("x", 4, 4), ("x", 5, 2)),
        body, 13, status_of=status_of))
    assert errors == [(("x", 2), 409, "A record with timestamp 2 already exists"),
                      (("bad.name", 3), 422, "bad name"),
                      (("x", 4), 500, "disk trouble")]
    assert storage.bucket.entries["x"].stored == {1: b"11", 2: b"old", 5: b"55"}


def test_short_body_aborts_the_current_run_and_acknowledges_nothing():
    storage = FakeStorage()
    body = Chunked([b"aa", b"bb", b"c"])
    with pytest.raises(BadRequestError, match="Content is shorter than expected"):
        trio.run(lambda: service.write_batch(
            storage, "b", items(("x", 1, 2), ("y", 1, 2), ("y", 2, 3)), body, 7, status_of=status_of))
    x, y = storage.bucket.entries["x"], storage.bucket.entries["y"]
    assert x.stored == {1: b"aa"}  # an earlier run may be flushed ...
    assert y.stored == {} and all(w.state == "aborted" for w in y.writers)  # ... the current one is not
    assert storage.durable_waits == 0  # ... and nothing was acknowledged


def test_unknown_length_body_must_end_with_the_records():
    storage = FakeStorage()
    body = Chunked([b"aa", b"extra"])
    with pytest.raises(BadRequestError, match="Content is bigger than in content-length"):
        trio.run(lambda: service.write_batch(storage, "b", items(("x", 1, 2)), body, 2, status_of=status_of,
                                             check_end=True))
    assert storage.bucket.entries["x"].stored == {}


def test_change_batch_runs_and_errors():
    storage = FakeStorage()

    class E(FakeEntry):
        def remove_record(self, ts):
            if ts not in self.stored:
                raise ConflictError(f"missing {ts}")
            del self.stored[ts]

    e = storage.bucket.entries["x"] = E("x")
    e.stored = {1: b"a", 2: b"b"}
    change = [service.ChangeItem("x", 1, 1), service.ChangeItem("x", 3, 3), service.ChangeItem("ghost", 1, 9)]

    async def go():
        storage.bucket.get_entry = lambda n: storage.bucket.entries[n] if n in storage.bucket.entries else \
            (_ for _ in ()).throw(InvalidInputError(f"no {n}"))
        return await service.change_batch(storage, "b", change, remove=True, status_of=status_of)

    assert trio.run(go) == [(3, 409, "missing 3"), (9, 422, "no ghost")]
    assert e.stored == {2: b"b"} and storage.durable_waits == 1
