"""reduct-py 1.21 against a real `edge serve`: server, buckets, entries, single records."""

from __future__ import annotations

import asyncio

import pytest
from reduct import BucketSettings, Client, QuotaType, ReductError


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


@pytest.fixture
def client_url(server):
    return server.url


def test_info_and_buckets(client_url, bucket_name):
    async def main():
        async with Client(client_url) as client:
            info = await client.info()
            assert info.version.startswith("1.21")
            bucket = await client.create_bucket(bucket_name, BucketSettings(quota_type=QuotaType.FIFO,
                                                                           quota_size=10**9), exist_ok=True)
            await client.create_bucket(bucket_name, exist_ok=True)
            settings = await bucket.get_settings()
            assert settings.quota_type == QuotaType.FIFO and settings.max_block_records == 1024
            await bucket.set_settings(BucketSettings(max_block_records=100))
            assert (await bucket.get_settings()).max_block_records == 100
            assert bucket_name in [b.name for b in await client.list()]
            with pytest.raises(ReductError) as err:
                await client.get_bucket("NOTEXIST")
            assert str(err.value) == "Status 404: Bucket 'NOTEXIST' is not found"
            await bucket.remove()

    run(main())


def test_write_read_update_remove(client_url, bucket_name):
    async def main():
        async with Client(client_url) as client:
            bucket = await client.create_bucket(bucket_name)
            await bucket.write("entry-1", b"some-data-1", timestamp=5_000_000, labels={"number": 1})
            await bucket.write("entry-1", b"some-data-2", timestamp=6_000_000, labels={"number": 2},
                               content_type="text/plain")
            async with bucket.read("entry-1", timestamp=5_000_000) as record:
                assert await record.read_all() == b"some-data-1"
                assert record.labels == {"number": "1"}
            async with bucket.read("entry-1") as record:
                assert record.timestamp == 6_000_000 and record.content_type == "text/plain"
            async with bucket.read("entry-1", timestamp=5_000_000, head=True) as record:
                assert record.size == 11
            entries = await bucket.get_entry_list()  # 56 + 44: text/plain is 14 bytes shorter than the default type
            assert entries[0].name == "entry-1" and entries[0].size == 100 and entries[0].record_count == 2
            await bucket.update("entry-1", 5_000_000, {"number": "10", "new": "x"})
            async with bucket.read("entry-1", timestamp=5_000_000) as record:
                assert record.labels == {"number": "10", "new": "x"}
            await bucket.remove_record("entry-1", 6_000_000)
            with pytest.raises(ReductError) as err:
                async with bucket.read("entry-1", timestamp=6_000_000):
                    pass
            assert err.value.status_code == 404
            await bucket.rename_entry("entry-1", "entry-2")
            assert [e.name for e in await bucket.get_entry_list()] == ["entry-2"]
            await bucket.remove_entry("entry-2")
            assert await bucket.get_entry_list() == []

    run(main())


def test_big_record_streams(client_url, bucket_name):
    async def main():
        async with Client(client_url) as client:
            bucket = await client.create_bucket(bucket_name)
            data = bytes(range(256)) * (40 * 4096)  # 40 MiB

            async def chunks():
                for i in range(0, len(data), 1 << 20):
                    yield data[i:i + (1 << 20)]

            await bucket.write("big", chunks(), timestamp=1, content_length=len(data))
            async with bucket.read("big", timestamp=1) as record:
                got = b"".join([chunk async for chunk in record.read(1 << 20)])
            assert got == data

    run(main())
