"""The store against a dict model: random writes (in order, belated, in batches that straddle
blocks), label updates, removals, block evictions, reopens and crashes (no clean close), with a
cache so small that block
indexes are dropped and loaded again all the time. After every step the entry must serve exactly
the model (iteration, single lookups, bounds) and its counters must match what a fresh load of the
same folder computes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ConflictError, NotFoundError
from edge.model import BucketSettings, EngineLimits
from edge.store import Engine

OCT = "application/octet-stream"
LIMITS = EngineLimits(index_cache_size=3_000)  # about one small block

op = st.one_of(
    st.tuples(st.just("write"), st.lists(st.integers(0, 400), min_size=1, max_size=12)),
    st.tuples(st.just("label"), st.integers(0, 400), st.text("abc", max_size=4)),
    st.tuples(st.just("remove"), st.integers(0, 400)),
    st.tuples(st.just("evict"), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0)),
    st.tuples(st.just("crash"), st.just(0)),  # no clean close: nothing sealed, the newest block scanned
)


def check(entry, model: dict[int, tuple[bytes, dict]]) -> None:
    got = {r.ts_us: (b"".join(entry.read_payload(r)), dict(r.labels)) for r in entry.iter_refs()}
    assert got == model
    assert entry.record_count == len(model)
    assert (entry.oldest_ts, entry.latest_ts) == ((min(model), max(model)) if model else (0, 0))
    for ts in list(model)[:5]:
        assert entry.get(ts).ts_us == ts
    if model:
        assert entry.latest().ts_us == max(model)
    lo, hi = 100, 250
    assert [r.ts_us for r in entry.iter_refs(lo, hi)] == sorted(t for t in model if lo <= t < hi)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=25), st.integers(2, 6))
def test_store_matches_the_model(ops, per_block):
    root = Path(tempfile.mkdtemp(prefix="edge-model-"))
    try:
        engine = Engine.open(root, limits=LIMITS)
        entry = engine.create_bucket("b", BucketSettings(max_block_records=per_block)).get_or_create_entry("e")
        model: dict[int, tuple[bytes, dict]] = {}
        for kind, *args in ops:
            if kind == "write":
                writers = []
                for ts in args[0]:
                    data = bytes([ts % 251]) * (ts % 37)
                    try:
                        w = entry.begin_write(ts, len(data), OCT, {"t": str(ts)})
                    except ConflictError:
                        assert ts in model or ts in [w.ts_us for w, _ in writers]
                        continue
                    w.write(data)
                    w.finish()
                    writers.append((w, data))
                entry.flush().sync()
                for w, data in writers:
                    model[w.ts_us] = (data, {"t": str(w.ts_us)})
            elif kind == "label":
                ts, value = args
                if ts in model:
                    entry.update_labels(ts, {"t": "", "v": value})
                    labels = {"v": value} if value else {}
                    model[ts] = (model[ts][0], labels)
                else:
                    try:
                        entry.update_labels(ts, {"v": value})
                        raise AssertionError("label update of a missing record")
                    except NotFoundError:
                        pass
            elif kind == "remove":
                ts = args[0]
                if ts in model:
                    entry.remove_record(ts)
                    del model[ts]
            elif kind == "evict":
                first = next((b for b in entry.blocks if b.file_size), None)
                if first is not None:
                    gone = {r.ts_us for r in entry.iter_refs() if r.block_id == first.id}
                    entry.evict_oldest_block()
                    model = {t: v for t, v in model.items() if t not in gone}
            else:
                entry.flush().sync()
                if kind == "crash":
                    engine.fds.close_all()
                else:
                    engine.close()
                engine = Engine.open(root, limits=LIMITS)
                assert engine.recovery_report == []
                entry = engine.get_bucket("b").get_entry("e")
            check(entry, model)
        size, count, bucket_size = entry.size, entry.record_count, entry.bucket.size
        disk = entry.bucket.disk_usage
        engine.close()
        engine = Engine.open(root, limits=LIMITS)
        entry = engine.get_bucket("b").get_entry("e")
        check(entry, model)
        assert (entry.size, entry.record_count, entry.bucket.size) == (size, count, bucket_size)
        assert entry.bucket.disk_usage == sum(p.stat().st_size for p in (root / "b").rglob("*")
                                              if p.is_file() and p.name != "settings.json")
        assert disk <= entry.bucket.disk_usage + 10_000
        engine.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
