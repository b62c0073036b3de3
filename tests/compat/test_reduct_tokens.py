"""reduct-py 1.21 token calls against a real server with authentication on (spec §4, §17).

reduct-py is asyncio (aiohttp) while the suite runs in trio mode, so each test is a plain
function that drives its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from reduct import Client, ReductError
from reduct.bucket import Bucket
from reduct.msg.token import Permissions

from tests.helpers import EdgeProcess, token_auth

INIT = "compat-init-secret"


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    proc = EdgeProcess(tmp_path_factory.mktemp("compat-tokens") / "data", auth=token_auth(INIT)).start()
    yield proc
    proc.stop()


def run(coro):
    return asyncio.run(coro)


def test_create_get_list_remove(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as client:
            value = await client.create_token(
                "sdk-1", Permissions(full_access=False, read=["sdk-*"], write=["sdk-b"]))
            assert "sdk-1-" in value
            token = await client.get_token("sdk-1")
            assert token.name == "sdk-1"
            assert token.permissions == Permissions(full_access=False, read=["sdk-*"], write=["sdk-b"])
            assert not token.is_provisioned and not token.is_expired
            assert token.created_at.tzinfo is not None
            names = [t.name for t in await client.get_token_list()]
            assert "init-token" in names and "sdk-1" in names
            await client.remove_token("sdk-1")
            assert "sdk-1" not in [t.name for t in await client.get_token_list()]
            with pytest.raises(ReductError) as info:
                await client.get_token("sdk-1")
            assert info.value.status_code == 404
            assert str(info.value) == "Status 404: Token 'sdk-1' doesn't exist"

    run(go())


def test_create_with_v2_fields(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as client:
            expires = datetime.now(timezone.utc) + timedelta(hours=1)
            await client.create_token("sdk-v2", Permissions(read=["a"]), expires_at=expires, ttl=600,
                                      ip_allowlist=["127.0.0.1"])
            token = await client.get_token("sdk-v2")
            assert token.ttl == 600
            assert token.ip_allowlist == ["127.0.0.1"]
            assert abs((token.expires_at - expires).total_seconds()) < 1e-3

    run(go())


def test_me(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as client:
            me = await client.me()
            assert me.name == "init-token"
            assert me.permissions == Permissions(full_access=True, read=[], write=[])
            assert me.is_provisioned and me.ip_allowlist == []

    run(go())


def test_rotate(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as admin:
            old = await admin.create_token("sdk-rot", Permissions(read=["x"]))
            new = await admin.rotate_token("sdk-rot")
            assert new != old and "sdk-rot-" in new
        async with Client(edge.url, api_token=new) as client:
            assert (await client.me()).name == "sdk-rot"
        async with Client(edge.url, api_token=old) as client:
            with pytest.raises(ReductError) as info:
                await client.me()
            assert str(info.value) == "Status 401: Invalid token"

    run(go())


def test_errors(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as client:
            await client.create_token("sdk-dup", Permissions())
            with pytest.raises(ReductError) as info:
                await client.create_token("sdk-dup", Permissions())
            assert str(info.value) == "Status 409: Token 'sdk-dup' already exists"
            with pytest.raises(ReductError) as info:
                await client.create_token("sdk-bad", Permissions(read=["no/slash"]))
            assert str(info.value) == (
                "Status 422: Permission can contain only bucket names or wildcard '*', got 'no/slash'")
            with pytest.raises(ReductError) as info:
                await client.remove_token("init-token")
            assert str(info.value) == "Status 409: Can't remove provisioned token 'init-token'"
            with pytest.raises(ReductError) as info:
                await client.rotate_token("init-token")
            assert str(info.value) == "Status 409: Can't rotate provisioned token 'init-token'"
        async with Client(edge.url) as anonymous:
            with pytest.raises(ReductError) as info:
                await anonymous.get_token_list()
            assert str(info.value) == "Status 401: No bearer token in request header"

    run(go())


def test_write_only_token_cannot_read(edge):
    async def go():
        async with Client(edge.url, api_token=INIT) as admin:
            bucket = await admin.create_bucket("sdk-wo", exist_ok=True)
            writer_value = await admin.create_token("sdk-writer", Permissions(write=["sdk-wo"]))
            reader_value = await admin.create_token("sdk-reader", Permissions(read=["sdk-wo"]))
            await bucket.write("e", b"from-admin", timestamp=1_000_000)
        async with Client(edge.url, api_token=writer_value) as writer:
            wb = bucket_handle(writer, "sdk-wo")
            await wb.write("e", b"from-writer", timestamp=2_000_000)
            with pytest.raises(ReductError) as info:
                async with wb.read("e", timestamp=1_000_000) as record:
                    await record.read_all()
            assert info.value.status_code == 403
            assert info.value.message == "Token 'sdk-writer' doesn't have read access to bucket 'sdk-wo'"
            with pytest.raises(ReductError) as info:
                await writer.get_token_list()
            assert str(info.value) == "Status 403: Token 'sdk-writer' doesn't have full access"
        async with Client(edge.url, api_token=reader_value) as reader:
            rb = await reader.get_bucket("sdk-wo")
            async with rb.read("e", timestamp=2_000_000) as record:
                assert await record.read_all() == b"from-writer"
            with pytest.raises(ReductError) as info:
                await rb.write("e", b"no", timestamp=3_000_000)
            assert str(info.value) == "Status 403: Token 'sdk-reader' doesn't have write access to bucket 'sdk-wo'"

    run(go())


def bucket_handle(client: Client, name: str):
    """A Bucket handle without GET /b/{name} (which needs Read, and a write-only token lacks it)."""
    return Bucket(name, client._http)
