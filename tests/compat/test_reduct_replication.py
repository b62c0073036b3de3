"""reduct-py 1.21 replication and lifecycle calls against real servers (spec §13, §14, §17).

reduct-py is asyncio (aiohttp) while the suite runs in trio mode, so each test is a plain
function that drives its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from reduct import Client, ReductError
from reduct.msg.lifecycle import LifecycleMode, LifecycleSettings, LifecycleType
from reduct.msg.replication import ReplicationMode, ReplicationSettings
from tests.helpers import NO_AUTH

pytestmark = pytest.mark.timeout(120)


def run(coro):
    return asyncio.run(coro)


def test_replication_calls(make_server):
    dst = make_server(auth=NO_AUTH)
    src = make_server(auth=NO_AUTH)

    async def go():
        async with Client(src.url) as client, Client(dst.url) as remote:
            bucket = await client.create_bucket("src", exist_ok=True)
            settings = ReplicationSettings(src_bucket="src", dst_bucket="dst", dst_host=dst.url, dst_token="t",
                                           entries=["e*"])
            await client.create_replication("rep", settings)
            reps = await client.get_replications()
            assert [(r.name, r.is_active, r.pending_records, r.is_provisioned) for r in reps] == [("rep", True, 0, False)]
            detail = await client.get_replication_detail("rep")
            assert detail.settings.dst_token is None and detail.settings.entries == ["e*"]
            assert detail.diagnostics.hourly.ok == 0 and detail.diagnostics.hourly.errors == {}
            await bucket.write("e1", b"payload", timestamp=1000, labels={"a": "b"})
            for _ in range(100):
                if (await client.get_replication_detail("rep")).info.pending_records == 0:
                    break
                await asyncio.sleep(0.05)
            async with (await remote.get_bucket("dst")).read("e1", timestamp=1000) as record:
                assert await record.read_all() == b"payload" and record.labels == {"a": "b"}
            settings.dst_bucket = "dst2"
            settings.dst_token = None
            await client.update_replication("rep", settings)
            assert (await client.get_replication_detail("rep")).settings.dst_bucket == "dst2"
            await client.set_replication_mode("rep", ReplicationMode.PAUSED)
            assert (await client.get_replication_detail("rep")).info.mode == ReplicationMode.PAUSED
            await client.delete_replication("rep")
            with pytest.raises(ReductError) as exc:
                await client.get_replication_detail("rep")
            assert exc.value.status_code == 404 and "Replication 'rep' does not exist" in str(exc.value)

    run(go())


def test_lifecycle_calls(make_server):
    srv = make_server({"EDGE_LIFECYCLE_MIN_INTERVAL_S": "1"}, auth=NO_AUTH)

    async def go():
        async with Client(srv.url) as client:
            bucket = await client.create_bucket("lc", exist_ok=True)
            old = int((time.time() - 7200) * 1_000_000)
            await bucket.write("e", b"old", timestamp=old)
            await bucket.write("e", b"new")
            settings = LifecycleSettings(type=LifecycleType.DELETE, bucket="lc", older_than="1h")
            await client.create_lifecycle("lc1", settings)   # interval null -> default
            for _ in range(100):
                info = (await client.get_lifecycle_detail("lc1")).info
                if info.last_run is not None:
                    break
                await asyncio.sleep(0.05)
            assert info.last_run is not None and info.type == LifecycleType.DELETE
            assert (await bucket.get_entry_list())[0].record_count == 1
            lst = await client.get_lifecycles()
            assert [lc.name for lc in lst] == ["lc1"]
            settings.older_than = "2d"
            await client.update_lifecycle("lc1", settings)
            assert (await client.get_lifecycle_detail("lc1")).settings.older_than == "2d"
            await client.set_lifecycle_mode("lc1", LifecycleMode.DRY_RUN)
            assert (await client.get_lifecycle_detail("lc1")).info.mode == LifecycleMode.DRY_RUN
            await client.delete_lifecycle("lc1")
            with pytest.raises(ReductError) as exc:
                await client.get_lifecycle_detail("lc1")
            assert "Lifecycle 'lc1' does not exist" in str(exc.value)

    run(go())
