"""UploadService on a real store under Trio's virtual clock: expiry by the reaper, PATCH keeps an
upload alive, the hand-over to one record, conflicts, quota, checksum, finishing after a crash."""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing

from edge.errors import ChecksumMismatchError, ConflictError, NotFoundError, QuotaExceededError
from edge.model import BucketSettings, QuotaType
from edge.services.commit import Flusher
from edge.services.storage import StorageService
from edge.services.uploads import UploadService
from edge.store import Engine
from edge.uploads.protocol import Checksum, Destination, State
from edge.uploads.staging import Limits, Staging

EXPIRE_S = 60.0


@pytest.fixture
def clock():
    # Not threshold 0: the service runs fsyncs in worker threads, and a clock that jumps the moment
    # the event loop waits for a thread would expire uploads in the middle of a test step.
    return trio.testing.MockClock(autojump_threshold=0.2)


@pytest.fixture
def engine(tmp_path):
    e = Engine.open(tmp_path / "data")
    e.create_bucket("b", BucketSettings())
    e.create_bucket("hard", BucketSettings(quota_type=QuotaType.HARD, quota_size=1000))
    yield e
    e.close()


class Body:
    length = None   # a RecordBody of unknown length

    def __init__(self, *chunks: bytes):
        self.chunks = list(chunks)

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def make_service(tmp_path, engine, **limits) -> UploadService:
    staging, _ = Staging.open(tmp_path / "data" / ".edge" / "uploads", Limits(expire_s=EXPIRE_S, **limits))
    return UploadService(staging, StorageService(engine, Flusher("none")), engine)


def dest(ts=1000, bucket="b", entry="e", labels=None):
    return Destination(bucket, entry, ts, "video/mp4", labels if labels is not None else {"filename": "a.mp4"})


async def test_reaper_deletes_idle_upload_at_its_deadline(clock, tmp_path, engine, nursery):
    svc = make_service(tmp_path, engine)
    await nursery.start(svc.reap_forever)
    up = await svc.create(dest(), 10, "")
    folder = svc.staging.folder(up.id)
    await trio.sleep(EXPIRE_S - 1)
    assert svc.get(up.id) is up and folder.exists()
    await trio.sleep(2)
    assert not folder.exists() and svc.expired == 1
    with pytest.raises(NotFoundError, match=f"Upload '{up.id}' is not found"):
        svc.get(up.id)


async def test_patch_extends_the_deadline(clock, tmp_path, engine, nursery):
    svc = make_service(tmp_path, engine)
    await nursery.start(svc.reap_forever)
    up = await svc.create(dest(), 10, "")
    await trio.sleep(EXPIRE_S - 10)
    await svc.append(up.id, 0, Body(b"abc"), None)
    await trio.sleep(EXPIRE_S - 10)          # 110 s after creation, 50 s after the PATCH
    assert svc.get(up.id).offset == 3
    await trio.sleep(20)
    with pytest.raises(NotFoundError):
        svc.get(up.id)


async def test_expired_is_404_even_before_the_reaper_runs(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)       # no reaper task
    up = await svc.create(dest(), 10, "")
    await trio.sleep(EXPIRE_S + 1)
    with pytest.raises(NotFoundError):
        svc.get(up.id)
    with pytest.raises(NotFoundError):
        await svc.append(up.id, 0, Body(b"x"), None)
    assert await svc.reap_expired() == 1 and svc.staging.uploads == {}


async def test_last_byte_makes_one_record_then_tombstone_expires(clock, tmp_path, engine, nursery):
    svc = make_service(tmp_path, engine)
    await nursery.start(svc.reap_forever)
    payload = bytes(range(256)) * 9000      # > 2 MiB: several 1 MiB reads from the staged file
    up = await svc.create(dest(labels={"filename": "a.mp4", "camera": "front"}), len(payload), "")
    await svc.append(up.id, 0, Body(payload[:1000]), None)
    with pytest.raises(NotFoundError):
        engine.get_bucket("b").get_entry("e")      # nothing visible before the last byte
    await svc.append(up.id, 1000, Body(payload[1000:]), None)
    entry = engine.get_bucket("b").get_entry("e")
    ref = entry.get(1000)
    assert ref.size == len(payload) and ref.content_type == "video/mp4"
    assert dict(ref.labels) == {"filename": "a.mp4", "camera": "front"}
    assert b"".join(entry.read_payload(ref)) == payload
    assert up.state == State.COMPLETE and not svc.staging.data_path(up.id).exists()
    # The tombstone answers HEAD with the full offset, and a resent empty last PATCH is a no-op.
    assert svc.get(up.id).offset == len(payload)
    assert (await svc.append(up.id, len(payload), Body(), None)) is up
    await trio.sleep(EXPIRE_S + 1)
    assert not svc.staging.folder(up.id).exists()


async def test_zero_length_upload_is_complete_at_creation(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(ts=5), 0, "")
    assert up.state == State.COMPLETE
    assert engine.get_bucket("b").get_entry("e").get(5).size == 0


async def test_checksum_mismatch_keeps_nothing(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(), 10, "")
    good = Checksum("sha1", hashlib.sha1(b"hello").digest())
    with pytest.raises(ChecksumMismatchError, match=r"Upload-Checksum \(sha1\) does not match the chunk"):
        await svc.append(up.id, 0, Body(b"hellO"), good)
    assert up.offset == 0 and svc.staging.data_path(up.id).read_bytes() == b""
    await svc.append(up.id, 0, Body(b"hello"), good)
    assert up.offset == 5


async def test_wrong_offset_and_busy_are_conflicts(clock, tmp_path, engine, nursery):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(), 10, "")
    with pytest.raises(ConflictError, match="Upload-Offset 3 does not match the upload's offset 0"):
        await svc.append(up.id, 3, Body(b"x"), None)

    gate = trio.Event()

    class Slow(Body):
        async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
            await gate.wait()
            return await super().receive_some(max_bytes)

    nursery.start_soon(svc.append, up.id, 0, Slow(b"ab"), None)
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(ConflictError, match="is busy"):
        await svc.append(up.id, 0, Body(b"ab"), None)
    gate.set()
    await trio.sleep(1)
    assert up.offset == 2


async def test_broken_body_keeps_what_arrived(clock, tmp_path, engine):
    from edge.errors import BadRequestError

    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(), 10, "")

    class Broken(Body):
        async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
            if not self.chunks:
                raise BadRequestError("Content is shorter than expected: no more data to read")
            return self.chunks.pop(0)

    with pytest.raises(BadRequestError):
        await svc.append(up.id, 0, Broken(b"abc", b"d"), None)
    assert up.offset == 4                      # tus: store as much as was received


async def test_creation_refusals(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    with pytest.raises(NotFoundError, match="Bucket 'nope' is not found"):
        await svc.create(dest(bucket="nope"), 10, "")
    from edge.errors import BadRequestError

    with pytest.raises(BadRequestError, match="Upload-Metadata 'entry'"):
        await svc.create(dest(entry="bad entry!"), 10, "")
    with pytest.raises(QuotaExceededError, match="Quota of 'hard' exceeded"):
        await svc.create(dest(bucket="hard"), 1000, "")
    up = await svc.create(dest(bucket="hard"), 100, "")
    await svc.append(up.id, 0, Body(b"x" * 100), None)
    with pytest.raises(ConflictError, match="A record with timestamp 1000 already exists"):
        await svc.create(dest(bucket="hard"), 10, "")
    assert list(svc.staging.root.iterdir()) == [svc.staging.folder(up.id)]


async def test_quota_checked_again_when_bytes_arrive(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(bucket="hard", ts=1), 600, "")
    other = await svc.create(dest(bucket="hard", ts=2), 600, "")
    await svc.append(other.id, 0, Body(b"y" * 600), None)        # fills the bucket
    with pytest.raises(QuotaExceededError, match="Quota of 'hard' exceeded"):
        await svc.append(up.id, 0, Body(b"x" * 10), None)
    assert up.offset == 0


async def test_timestamp_taken_while_uploading_is_409_and_upload_stays(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(ts=7), 3, "")
    storage = svc.storage
    await storage.write_record("b", "e", 7, 1, "text/plain", {}, Body(b"z"))
    with pytest.raises(ConflictError, match="A record with timestamp 7 already exists"):
        await svc.append(up.id, 0, Body(b"abc"), None)
    assert up.full and up.state == State.RECEIVING


async def test_restart_keeps_offset_deadline_and_finishes_pending(clock, tmp_path, engine, nursery):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(ts=9), 4, "")
    await svc.append(up.id, 0, Body(b"ab"), None)
    full = await svc.create(dest(ts=10), 2, "")
    # Simulate a crash after the record was written but before the tombstone: write it by hand.
    w = svc.staging.open_chunk(full, None)
    w.write(b"zz")
    w.commit(svc.wall())
    await svc.storage.write_record("b", "e", 10, 2, "video/mp4", {"filename": "a.mp4"}, Body(b"zz"))

    again = make_service(tmp_path, engine)
    assert again.get(up.id).offset == 2 and again.get(full.id).state == State.RECEIVING
    await again.finish_pending()
    assert again.get(full.id).state == State.COMPLETE
    nursery.start_soon(again.reap_forever)
    await trio.sleep(EXPIRE_S - 5)
    assert again.get(up.id).offset == 2
    await trio.sleep(10)
    assert again.staging.uploads == {}


async def test_terminate(clock, tmp_path, engine):
    svc = make_service(tmp_path, engine)
    up = await svc.create(dest(), 10, "")
    await svc.append(up.id, 0, Body(b"abc"), None)
    await svc.terminate(up.id)
    assert not svc.staging.folder(up.id).exists()
    with pytest.raises(NotFoundError):
        await svc.terminate(up.id)
