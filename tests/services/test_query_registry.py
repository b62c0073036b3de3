"""QueryRegistry on a real store under Trio's virtual clock: ids, TTL + reaper, batch filling,
continuous wake-ups, multi-entry order, strict errors, $meta tombstones, remove queries."""

from __future__ import annotations

import pytest
import trio

from edge.config import Config
from edge.errors import InvalidInputError, NotFoundError
from edge.formats.batch_v2 import parse_read_batch
from edge.model import BucketSettings
from edge.query.plan import plan_from_json
from edge.services.commit import Flusher
from edge.services.queries import BUCKET, ENTRY, QueryRegistry
from edge.services.storage import StorageService
from edge.store import Engine

OCT = "application/octet-stream"


def put(entry, ts, data=b"", labels=None, ct=OCT):
    w = entry.begin_write(ts, len(data), ct, labels or {})
    if data:
        w.write(data)
    w.finish()
    entry.flush()


class _Source:
    length = None   # a RecordBody of unknown length

    def __init__(self, data: bytes):
        self.data = data

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        out, self.data = self.data[:max_bytes], self.data[max_bytes:]
        return out


@pytest.fixture
def engine(tmp_path):
    e = Engine.open(tmp_path)
    e.create_bucket("b", BucketSettings())
    yield e
    e.close()


@pytest.fixture
def registry(engine):
    return QueryRegistry(engine, StorageService(engine, Flusher("none")), Config())


def plan(**fields):
    return plan_from_json({"query_type": "QUERY", **fields})


def entry(engine, name):
    return engine.get_bucket("b").get_or_create_entry(name)


async def drain(registry, query, **kw):
    out = []
    while True:
        batch = await registry.next_batch(query, **kw)
        if batch is None:
            return out
        out.append(batch)


async def test_ids_share_one_counter_and_tables_are_separate(engine, registry):
    entry(engine, "e")
    a = registry.open_entry("b", "e", plan())
    b = registry.open_bucket("b", plan())
    c = registry.open_entry("b", "e", plan())
    assert (a, b, c) == (1, 2, 3)
    registry.get(a, ENTRY)
    with pytest.raises(NotFoundError):
        registry.get(a, BUCKET)
    with pytest.raises(NotFoundError):
        registry.get(b, ENTRY)


async def test_entry_query_on_missing_entry_is_404(registry):
    with pytest.raises(NotFoundError, match="Entry 'nope' not found in bucket 'b'"):
        registry.open_entry("b", "nope", plan())


async def test_unknown_extension_is_422_with_the_id(engine, registry):
    entry(engine, "e")
    with pytest.raises(InvalidInputError, match=r"Unknown extension 'img' in query id=1"):
        registry.open_entry("b", "e", plan(ext={"img": {}}))


async def test_ttl_zero_is_unusable_at_once(engine, registry):
    entry(engine, "e")
    qid = registry.open_entry("b", "e", plan(ttl=0))
    with pytest.raises(NotFoundError) as info:
        registry.get(qid, ENTRY)
    assert info.value.message == (f"Query {qid} not found and it might have expired. "
                                  "Check TTL in your query request.")


async def test_finished_query_answers_204_until_ttl_then_404(autojump_clock, engine, registry):
    put(entry(engine, "e"), 1000, b"x")
    qid = registry.open_entry("b", "e", plan(ttl=1))
    batch = await registry.next_batch(registry.get(qid, ENTRY))
    assert [m.ts_us for m in batch.matches] == [1000] and batch.last
    assert await registry.next_batch(registry.get(qid, ENTRY)) is None
    await trio.sleep(0.5)
    assert await registry.next_batch(registry.get(qid, ENTRY)) is None   # each read refreshes
    await trio.sleep(0.9)
    registry.get(qid, ENTRY)
    await trio.sleep(1.1)
    with pytest.raises(NotFoundError):
        registry.get(qid, ENTRY)


async def test_reaper_removes_idle_queries_without_any_request(autojump_clock, engine, registry, nursery):
    entry(engine, "e")
    await nursery.start(registry.reap_forever)
    registry.open_entry("b", "e", plan(ttl=60))
    registry.open_bucket("b", plan(ttl=5))
    stats = registry.statistics()
    assert (stats.entry_queries, stats.bucket_queries) == (1, 1)
    await trio.sleep(6)
    stats = registry.statistics()
    assert (stats.entry_queries, stats.bucket_queries, stats.reaped) == (1, 0, 1)
    await trio.sleep(60)
    assert registry.statistics().entry_queries == 0


async def test_v1_batches_stop_at_85_records(engine, registry):
    e = entry(engine, "e")
    for i in range(100):
        put(e, 1000 + i)
    query = registry.get(registry.open_entry("b", "e", plan()), ENTRY)
    first, second = await drain(registry, query)
    assert (len(first.matches), first.last) == (85, False)
    assert (len(second.matches), second.last) == (15, True)
    assert first.record_headers[0] == ("x-reduct-time-1000", "0,application/octet-stream")


async def test_batch_size_limit_and_oversized_record_alone(engine, registry):
    e = entry(engine, "e")
    for i, size in enumerate([40, 40, 40, 200, 10]):
        put(e, 1000 + i, b"x" * size)
    query = registry.get(registry.open_entry("b", "e", plan(when={"#batch_size": 100})), ENTRY)
    sizes = [[m.size for m in b.matches] for b in await drain(registry, query)]
    # 40+40+40 crosses 100 with the third record (still included); 200 travels alone.
    assert sizes == [[40, 40, 40], [200], [10]]


async def test_head_ignores_the_size_limit(engine, registry):
    e = entry(engine, "e")
    for i in range(5):
        put(e, 1000 + i, b"x" * 60)
    query = registry.get(registry.open_entry("b", "e", plan(when={"#batch_size": 100})), ENTRY)
    (batch,) = await drain(registry, query, head=True)
    assert len(batch.matches) == 5


async def test_directive_batch_records(engine, registry):
    e = entry(engine, "e")
    for i in range(5):
        put(e, 1000 + i)
    query = registry.get(registry.open_entry("b", "e", plan(when={"#batch_records": 2})), ENTRY)
    assert [len(b.matches) for b in await drain(registry, query)] == [2, 2, 1]


async def test_default_stop_is_latest_at_creation(engine, registry):
    e = entry(engine, "e")
    put(e, 1000)
    query = registry.get(registry.open_entry("b", "e", plan()), ENTRY)
    put(e, 2000)
    assert [m.ts_us for b in await drain(registry, query) for m in b.matches] == [1000]


async def test_multi_entry_merge_order_and_v2_headers(engine, registry):
    put(entry(engine, "x-0"), 1010, b"AA", ct="text/plain")
    put(entry(engine, "x-1"), 1000, b"BBB", ct="text/plain")
    put(entry(engine, "a-entry"), 5000, b"a")
    put(entry(engine, "z-entry"), 5000, b"z")
    query = registry.get(registry.open_bucket("b", plan(entries=["x-*", "a-entry", "z-entry"])), BUCKET)
    (batch,) = await drain(registry, query, v2=True)
    assert [(m.entry, m.ts_us) for m in batch.matches] == [("x-1", 1000), ("x-0", 1010), ("a-entry", 5000),
                                                           ("z-entry", 5000)]
    headers = dict(batch.record_headers)
    assert headers["x-reduct-entries"] == "x-1,x-0,a-entry,z-entry"
    assert headers["x-reduct-start-ts"] == "1000"
    assert headers["x-reduct-0-0"].startswith("3,text/plain")
    assert headers["x-reduct-1-10"].startswith("2,text/plain")
    decoded = parse_read_batch(batch.record_headers)
    assert [(r.entry, r.ts_us, r.size) for r in decoded] == [(m.entry, m.ts_us, m.size) for m in batch.matches]


async def test_v2_batch_closes_before_an_entry_reappears(engine, registry):
    a, b = entry(engine, "a"), entry(engine, "b")
    put(a, 1), put(b, 2), put(a, 3)
    query = registry.get(registry.open_bucket("b", plan()), BUCKET)
    batches = await drain(registry, query, v2=True)
    assert [[(m.entry, m.ts_us) for m in x.matches] for x in batches] == [[("a", 1), ("b", 2)], [("a", 3)]]
    assert [x.last for x in batches] == [False, True]


async def test_when_and_stateful_ops_count_per_entry(engine, registry):
    for name in ("a", "b"):
        e = entry(engine, name)
        for i in range(4):
            put(e, 10 * i + (name == "b"), labels={"n": str(i)})
    query = registry.get(registry.open_bucket("b", plan(when={"&n": {"$gte": 1}, "$each_n": 2})), BUCKET)
    got = [(m.entry, m.ts_us) for x in await drain(registry, query, v2=True) for m in x.matches]
    assert got == [("a", 20), ("b", 21)]


async def test_limit_stops_the_query(engine, registry):
    e = entry(engine, "e")
    for i in range(10):
        put(e, i)
    query = registry.get(registry.open_entry("b", "e", plan(when={"$limit": 3})), ENTRY)
    batches = await drain(registry, query)
    assert [m.ts_us for b in batches for m in b.matches] == [0, 1, 2]
    assert batches[-1].last


async def test_strict_error_before_any_record_is_the_read_status(engine, registry):
    put(entry(engine, "e"), 1, labels={"a": "1"})
    query = registry.get(registry.open_entry("b", "e", plan(strict=True, when={"&x": {"$eq": 1}})), ENTRY)
    with pytest.raises(NotFoundError, match="Reference 'x' not found"):
        await registry.next_batch(query)
    assert await registry.next_batch(query) is None
    lax = registry.get(registry.open_entry("b", "e", plan(when={"&x": {"$eq": 1}})), ENTRY)
    assert await registry.next_batch(lax) is None


async def test_strict_error_after_records_surfaces_on_the_next_read(engine, registry):
    e = entry(engine, "e")
    put(e, 1, labels={"x": "1"})
    put(e, 2, labels={})
    query = registry.get(registry.open_entry("b", "e", plan(strict=True, when={"&x": {"$eq": 1}})), ENTRY)
    batch = await registry.next_batch(query)
    assert [m.ts_us for m in batch.matches] == [1]
    with pytest.raises(NotFoundError):
        await registry.next_batch(query)
    assert await registry.next_batch(query) is None


async def test_meta_tombstones_are_not_queried(engine, registry):
    meta = entry(engine, "e/$meta")
    put(meta, 1, b"{}", labels={"key": "a"})
    put(meta, 2, b"{}", labels={"key": "b", "remove": "true"})
    query = registry.get(registry.open_bucket("b", plan(entries=["e/$meta"])), BUCKET)
    assert [m.ts_us for x in await drain(registry, query, v2=True) for m in x.matches] == [1]
    everything = registry.get(registry.open_bucket("b", plan()), BUCKET)
    assert await drain(registry, everything, v2=True) == []   # $meta not selected by default


async def test_select_labels_and_context_records(engine, registry):
    e = entry(engine, "e")
    for i in range(10):
        put(e, i, labels={"hit": "1" if i == 5 else "0", "other": "x"})
    query = registry.get(registry.open_entry("b", "e", plan(
        when={"&hit": {"$eq": 1}, "#ctx_before": 2, "#ctx_after": "2us", "#select_labels": ["hit"]})), ENTRY)
    matches = [m for b in await drain(registry, query) for m in b.matches]
    assert [m.ts_us for m in matches] == [3, 4, 5, 6, 7]
    assert all(set(m.labels) == {"hit"} for m in matches)


async def test_continuous_query_is_idle_then_woken_by_a_write(autojump_clock, engine, registry, nursery):
    storage = registry.storage
    put(entry(engine, "e"), 1000, b"a")
    query = registry.get(registry.open_entry("b", "e", plan(continuous=True, ttl=10)), ENTRY)
    batch = await registry.next_batch(query)
    assert [m.ts_us for m in batch.matches] == [1000] and batch.last
    started = trio.current_time()
    assert await registry.next_batch(query) is None          # idle: 204 after the record timeout
    assert trio.current_time() - started == pytest.approx(1.0)

    async def write_later():
        await trio.sleep(0.25)
        await storage.write_record("b", "e", 2000, 1, OCT, {}, _Source(b"b"))

    nursery.start_soon(write_later)
    started = trio.current_time()
    batch = await registry.next_batch(query)
    assert [m.ts_us for m in batch.matches] == [2000]
    assert trio.current_time() - started == pytest.approx(0.25)   # woken by the flush, not a poll


async def test_continuous_io_query_sees_new_entries(engine, registry):
    query = registry.get(registry.open_bucket("b", plan(continuous=True, entries=["cam-*"])), BUCKET)
    with trio.move_on_after(5):
        assert await registry.next_batch(query, v2=True) is None
    put(entry(engine, "cam-1"), 7)
    batch = await registry.next_batch(query, v2=True)
    assert [(m.entry, m.ts_us) for m in batch.matches] == [("cam-1", 7)]


async def test_remove_query_counts_and_removes(engine, registry):
    e = entry(engine, "e")
    for i in range(10):
        put(e, i, labels={"odd": str(i % 2)})
    removed = await registry.remove("b", plan_from_json({"query_type": "REMOVE", "when": {"&odd": {"$eq": 1}}}), "e")
    assert removed == 5
    assert [r.ts_us for r in e.iter_refs()] == [0, 2, 4, 6, 8]


async def test_remove_query_io_skips_meta_and_creates_missing_entry(engine, registry):
    put(entry(engine, "a"), 1)
    put(entry(engine, "a/$meta"), 1, labels={"key": "k"})
    removed = await registry.remove("b", plan_from_json({"query_type": "REMOVE", "entries": ["a", "a/$meta"],
                                                         "start": 0}))
    assert removed == 1
    assert await registry.remove("b", plan_from_json({"query_type": "REMOVE", "start": 0}), "new") == 0
    assert "new" in engine.get_bucket("b").entry_names()
