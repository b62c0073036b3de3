"""reduct-py 1.21 batch APIs against a real server: v1 ``write_batch`` / ``update_batch`` /
``remove_batch``, the multi-entry ``write_record_batch`` / ``update_record_batch`` /
``remove_record_batch`` and the attachment helpers.

Records are read back with single-record reads (``Bucket.read``); attachments need the query
engine (``read_attachments`` runs a query), which the queries room serves.
"""

from __future__ import annotations

import asyncio
import time

import pytest

reduct = pytest.importorskip("reduct")
from reduct import Batch, Client, RecordBatch, ReductError  # noqa: E402


def run(coro):
    return asyncio.run(coro)


async def open_bucket(server, name):
    client = Client(server.url)
    bucket = await client.create_bucket(name, exist_ok=True)
    return client, bucket


async def read(bucket, entry, ts):
    async with bucket.read(entry, timestamp=ts) as record:
        return await record.read_all(), record.content_type, dict(record.labels)


def test_write_batch_and_errors(server, bucket_name):
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            batch = Batch()
            batch.add(1000, b"one", content_type="text/plain", labels={"a": "1"})
            batch.add(1001, b"", labels={"empty": "yes"})
            batch.add(1002, b"x" * 100_000)
            assert await bucket.write_batch("e", batch) == {}
            assert await read(bucket, "e", 1000) == (b"one", "text/plain", {"a": "1"})
            assert (await read(bucket, "e", 1001))[0] == b""
            assert (await read(bucket, "e", 1002))[0] == b"x" * 100_000

            # reduct-py test_batched_write_with_errors: one 409 in the map
            again = Batch()
            again.add(1000, b"dup")
            again.add(2000, b"new")
            errors = await bucket.write_batch("e", again)
            assert list(errors) == [1000]
            assert errors[1000].status_code == 409
            assert errors[1000].message == "A record with timestamp 1000 already exists"
            assert (await read(bucket, "e", 2000))[0] == b"new"
    run(go())


def test_update_and_remove_batch(server, bucket_name):
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            batch = Batch()
            batch.add(1, b"a", labels={"x": "y", "a": "b"})
            batch.add(2, b"b", labels={"x": "y"})
            assert await bucket.write_batch("e", batch) == {}

            update = Batch()
            update.add(1, labels={"x": "z", "a": "", "1": "2"})
            update.add(3, labels={"x": "z"})
            errors = await bucket.update_batch("e", update)
            assert list(errors) == [3] and errors[3].status_code == 404
            assert (await read(bucket, "e", 1))[2] == {"x": "z", "1": "2"}

            remove = Batch()
            remove.add(2)
            remove.add(4)
            errors = await bucket.remove_batch("e", remove)
            assert list(errors) == [4]
            assert errors[4].message == f"Record 4 not found in entry {bucket_name}/e"
            with pytest.raises(ReductError) as info:
                await read(bucket, "e", 2)
            assert info.value.status_code == 404
    run(go())


def test_multi_entry_record_batch(server, bucket_name):
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            batch = RecordBatch()
            batch.add("entry-1", 1000, b"AA", content_type="text/plain", labels={"k": "1", "u": "x"})
            batch.add("entry-1", 1010, b"AB", content_type="text/plain", labels={"k": "2"})
            batch.add("entry-2", 1000, b"BBB", labels={"j": "x"})
            batch.add("a/b", 999, b"C")
            assert await bucket.write_record_batch(batch) == {}
            assert await read(bucket, "entry-1", 1000) == (b"AA", "text/plain", {"k": "1", "u": "x"})
            assert await read(bucket, "entry-1", 1010) == (b"AB", "text/plain", {"k": "2"})
            assert await read(bucket, "entry-2", 1000) == (b"BBB", "application/octet-stream", {"j": "x"})
            assert (await read(bucket, "a/b", 999))[0] == b"C"

            dup = RecordBatch()
            dup.add("entry-2", 1000, b"D")
            dup.add("entry-2", 1001, b"E")
            errors = await bucket.write_record_batch(dup)
            assert list(errors) == ["entry-2"] and list(errors["entry-2"]) == [1000]
            assert errors["entry-2"][1000].status_code == 409

            update = RecordBatch()
            update.add("entry-1", 1000, labels={"k": "", "new": "v"})
            update.add("entry-1", 1010, labels={"k": "3"})
            update.add("entry-2", 5, labels={"z": "z"})
            errors = await bucket.update_record_batch(update)
            assert list(errors) == ["entry-2"] and errors["entry-2"][5].status_code == 404
            assert (await read(bucket, "entry-1", 1000))[2] == {"new": "v", "u": "x"}
            assert (await read(bucket, "entry-1", 1010))[2] == {"k": "3"}

            remove = RecordBatch()
            remove.add("entry-1", 1000)
            remove.add("entry-2", 7)
            errors = await bucket.remove_record_batch(remove)
            assert list(errors) == ["entry-2"] and list(errors["entry-2"]) == [7]
            with pytest.raises(ReductError):
                await read(bucket, "entry-1", 1000)
    run(go())


def test_unicode_labels_round_trip(server, bucket_name):
    """Labels are UTF-8 both ways: in the batch headers and in x-reduct-label-* of a read
    (aiohttp decodes response header values as UTF-8)."""
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            batch = RecordBatch()
            batch.add("u", 1, b"a", labels={"city": "Zürich", "emoji": "\u2603"})
            assert await bucket.write_record_batch(batch) == {}
            v1 = Batch()
            v1.add(2, b"b", labels={"city": "Zürich"})
            assert await bucket.write_batch("u", v1) == {}
            assert (await read(bucket, "u", 1))[2] == {"city": "Zürich", "emoji": "\u2603"}
            assert (await read(bucket, "u", 2))[2] == {"city": "Zürich"}
    run(go())


def test_empty_record_batch(server, bucket_name):
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            assert await bucket.write_record_batch(RecordBatch()) == {}
    run(go())


def test_attachments(server, bucket_name):
    async def go():
        client, bucket = await open_bucket(server, bucket_name)
        async with client:
            await bucket.write_attachments("cam", {"calib": {"k": [1, 2]}, "$odd": {"v": 1}})
            entries = [e.name for e in await bucket.get_entry_list()]
            assert "cam" in entries and "cam/$meta" not in entries
            assert await bucket.read_attachments("cam") == {"calib": {"k": [1, 2]}, "$odd": {"v": 1}}

            time.sleep(0.002)  # a new timestamp: an upsert, not a duplicate
            await bucket.write_attachments("cam", {"calib": {"k": [3]}})
            assert await bucket.read_attachments("cam") == {"calib": {"k": [3]}, "$odd": {"v": 1}}

            await bucket.remove_attachments("cam", ["$odd"])
            assert await bucket.read_attachments("cam") == {"calib": {"k": [3]}}
            await bucket.remove_attachments("cam")
            assert await bucket.read_attachments("cam") == {}
    run(go())
