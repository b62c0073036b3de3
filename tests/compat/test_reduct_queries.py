"""reduct-py 1.21 queries against a real `edge serve`: query, read, subscribe, remove_query, head,
strict, when, each_n (reduct-py >= 1.18 uses /io/{b}/q + /io/{b}/read for all of them)."""

from __future__ import annotations

import asyncio

import pytest
from reduct import Client, ReductError


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _bucket(server, name):
    client = Client(server.url)
    return client, await client.create_bucket(name, exist_ok=True)


async def _fill(bucket):
    await bucket.write("entry-1", b"data-1", timestamp=1000, labels={"n": "1", "kind": "a"})
    await bucket.write("entry-1", b"data-2", timestamp=2000, labels={"n": "2", "kind": "b"})
    await bucket.write("entry-1", b"data-3", timestamp=3000, labels={"n": "3", "kind": "a"})
    await bucket.write("entry-2", b"other", timestamp=1500, labels={"n": "9"})


def test_query_reads_records_with_payload_and_labels(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            got = [(r.entry, r.timestamp, await r.read_all(), r.labels)
                   async for r in bucket.query("entry-1", start=1000, stop=3000)]
            assert got == [("entry-1", 1000, b"data-1", {"n": "1", "kind": "a"}),
                           ("entry-1", 2000, b"data-2", {"n": "2", "kind": "b"})]
            multi = [(r.entry, r.timestamp, await r.read_all()) async for r in bucket.query(["entry-1", "entry-2"])]
            assert multi == [("entry-1", 1000, b"data-1"), ("entry-2", 1500, b"other"),
                             ("entry-1", 2000, b"data-2"), ("entry-1", 3000, b"data-3")]
            globbed = [r.entry async for r in bucket.query("entry-*")]
            assert globbed == ["entry-1", "entry-2", "entry-1", "entry-1"]
    run(main())


def test_query_when_each_n_and_head(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            when = [r.timestamp async for r in bucket.query("entry-1", when={"&kind": {"$eq": "a"}})]
            assert when == [1000, 3000]
            each = [r.timestamp async for r in bucket.query("entry-1", when={"$each_n": 2})]
            assert each == [2000]
            limited = [r.timestamp async for r in bucket.query("entry-1", when={"$limit": 2})]
            assert limited == [1000, 2000]
            heads = [(r.timestamp, r.size) async for r in bucket.query("entry-1", head=True)]
            assert heads == [(1000, 6), (2000, 6), (3000, 6)]
    run(main())


def test_query_strict(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            lax = [r async for r in bucket.query("entry-1", when={"&NOT_EXIST": {"$eq": 2}})]
            assert lax == []
            with pytest.raises(ReductError) as info:
                _ = [r async for r in bucket.query("entry-1", when={"&NOT_EXIST": {"$eq": 2}}, strict=True)]
            assert info.value.status_code == 404
            with pytest.raises(ReductError) as info:
                _ = [r async for r in bucket.query("entry-1", when={"&n": {"$foo": 1}})]
            assert str(info.value) == "Status 422: Operator '$foo' not supported"
    run(main())


def test_read_single_records(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            async with bucket.read("entry-1", timestamp=2000) as record:
                assert await record.read_all() == b"data-2"
            async with bucket.read("entry-1", head=True) as record:
                assert (record.timestamp, record.size) == (3000, 6)
    run(main())


def test_subscribe_sees_records_written_later(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await bucket.write("live", b"first", timestamp=1)

            async def writer():
                await asyncio.sleep(0.3)
                await bucket.write("live", b"second", timestamp=2)
                await asyncio.sleep(0.3)
                await bucket.write("live", b"third", timestamp=3)

            task = asyncio.create_task(writer())
            got = []
            async for record in bucket.subscribe("live", poll_interval=0.5):
                got.append(await record.read_all())
                if len(got) == 3:
                    break
            await task
            assert got == [b"first", b"second", b"third"]
    run(main())


def test_remove_query(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            assert await bucket.remove_query("entry-1", start=1000, stop=2500) == 2
            assert await bucket.remove_query("entry-*", when={"&n": {"$gte": 3}}) == 2
            assert [r async for r in bucket.query(["entry-1", "entry-2"])] == []
    run(main())


def test_expired_query_is_reported(server, bucket_name):
    async def main():
        async with Client(server.url) as client:
            bucket = await client.create_bucket(bucket_name)
            await _fill(bucket)
            with pytest.raises(ReductError) as info:
                _ = [r async for r in bucket.query("entry-1", ttl=0)]
            assert info.value.status_code == 404
            assert "might have expired" in str(info.value)
    run(main())
