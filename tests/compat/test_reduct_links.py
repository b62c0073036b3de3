"""reduct-py 1.21 against edge: ``Bucket.create_query_link`` and downloading the link it returns."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
import requests

reduct = pytest.importorskip("reduct")
aiohttp = pytest.importorskip("aiohttp")
from reduct.bucket import Bucket  # noqa: E402
from tests.helpers import token_auth

TOKEN = "compat-init-token"


async def _make_links(api_url: str, bucket_name: str) -> dict[str, str]:
    async with reduct.Client(api_url, api_token=TOKEN) as client:
        bucket = await client.create_bucket(bucket_name, exist_ok=True)
        await bucket.write("sensor", b"first", timestamp=1_000, content_type="text/plain", labels={"number": "1"})
        await bucket.write("sensor", b"second", timestamp=2_000, content_type="text/plain", labels={"number": "2"})
        await bucket.write("other/cam", b"\x89PNG", timestamp=3_000, content_type="image/png")
        links = {
            "default": await bucket.create_query_link("sensor", record_timestamp=2_000),
            "named": await bucket.create_query_link(
                "sensor", start=1_000, stop=3_000, record_timestamp=1_000, file_name="first.txt",
                expire_at=datetime.now() + timedelta(minutes=5)),
            "multi": await bucket.create_query_link(
                ["sensor", "other/*"], record_entry="other/cam", record_timestamp=3_000,
                base_url="http://files.example.org/edge"),
            "expired": await bucket.create_query_link(
                "sensor", record_timestamp=1_000, expire_at=datetime.now() - timedelta(seconds=30)),
        }
        return links


@pytest.fixture
def edge(make_server):
    return make_server(auth=token_auth(TOKEN))


def test_reduct_py_links_download_with_requests(edge):
    links = asyncio.run(_make_links(edge.url, "compat"))
    assert links["default"].startswith(f"{edge.api}/links/sensor_2000.bin?ct=")
    assert "&i=init-token&" in links["default"]
    r = requests.get(links["default"])
    assert r.status_code == 200 and r.content == b"second"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-reduct-time"] == "2000" and r.headers["x-reduct-entry"] == "sensor"
    assert r.headers["x-reduct-label-number"] == "2"
    r = requests.get(links["named"], headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.content == b"irs" and r.headers["content-range"] == "bytes 1-3/5"
    assert r.headers["content-disposition"] == 'attachment; filename="first.txt"'
    # e/ts override inside the sealed query (start..stop)
    r = requests.get(links["named"] + "&e=sensor&ts=2000")
    assert r.status_code == 200 and r.content == b"second"
    multi = links["multi"]
    assert multi.startswith("http://files.example.org/edge/api/v1/links/compat_3000.bin?ct=")   # list -> <bucket>_<ts>
    r = requests.get(edge.api + multi[len("http://files.example.org/edge/api/v1"):])
    assert r.status_code == 200 and r.content == b"\x89PNG" and r.headers["x-reduct-entry"] == "other/cam"
    r = requests.get(links["expired"])
    assert r.status_code == 422 and r.headers["x-reduct-error"] == "Query link has expired"


def test_reduct_py_link_download_with_aiohttp(edge):
    async def run() -> tuple[int, bytes, dict]:
        links = await _make_links(edge.url, "compat-aio")
        async with aiohttp.ClientSession() as session:
            async with session.get(links["default"]) as resp:
                return resp.status, await resp.read(), dict(resp.headers)

    status, body, headers = asyncio.run(run())
    assert status == 200 and body == b"second"
    assert headers["x-reduct-label-number"] == "2" and headers["Cache-Control"] == "no-store"


def test_reduct_py_create_needs_read_access(edge):
    async def run() -> None:
        async with reduct.Client(edge.url, api_token=TOKEN) as client:
            await client.create_bucket("locked", exist_ok=True)
            secret = await client.create_token("limited", reduct.Permissions(full_access=False, read=["x"], write=[]))
        async with reduct.Client(edge.url, api_token=secret) as limited:
            bucket = Bucket("locked", limited._http)   # get_bucket would already need read access
            with pytest.raises(reduct.ReductError) as info:
                await bucket.create_query_link("sensor", record_timestamp=int(time.time() * 1e6))
            assert info.value.status_code == 403
            assert "doesn't have read access to bucket 'locked'" in info.value.message

    asyncio.run(run())
