"""Stateful operators of `when` (spec §10.3): $each_n $each_t $limit $gate."""

from edge.query.when import compile_when


class Rec:
    def __init__(self, ts_us=0, labels=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, {}


def run(when, records):
    cond, _ = compile_when(when)
    return [cond.evaluate(r) for r in records], cond


def at(*seconds):
    return [Rec(int(s * 1_000_000)) for s in seconds]


def test_each_n_keeps_nth_records():
    kept, _ = run({"$each_n": 2}, at(1, 2, 3))  # integration test_query_each_n
    assert kept == [False, True, False]
    kept, _ = run({"$each_n": 3}, at(*range(7)))
    assert kept == [False, False, True, False, False, True, False]
    kept, _ = run({"$each_n": 1}, at(1, 2))
    assert kept == [True, True]


def test_stateful_operators_count_only_when_evaluated():
    records = [Rec(i, {"type": t}) for i, t in enumerate("abaab")]
    kept, _ = run({"&type": {"$eq": "a"}, "$each_n": 2}, records)
    assert kept == [False, False, True, False, False]  # thins only the "a" records: a, a*, a


def test_each_t_first_record_sets_reference():
    kept, _ = run({"$each_t": 10}, at(0, 5, 10, 15, 21, 30))
    assert kept == [False, False, True, False, True, False]
    kept, _ = run({"$each_t": "10s"}, at(0, 10, 20))
    assert kept == [False, True, True]


def test_each_t_time_backwards_resets_and_zero_keeps_all():
    kept, _ = run({"$each_t": 10}, at(100, 50, 60, 61))
    assert kept == [False, False, True, False]
    kept, _ = run({"$each_t": 0}, at(1, 1, 2))
    assert kept == [True, True, True]
    kept, _ = run({"$each_t": 0.5}, at(0, 0.4, 0.5))
    assert kept == [False, False, True]


def test_limit_stops_the_query():
    kept, cond = run({"$limit": 2}, at(1, 2))
    assert kept == [True, True] and not cond.stopped
    assert not cond.evaluate(Rec(3)) and cond.stopped
    assert not cond.evaluate(Rec(4))
    kept, cond = run({"$limit": 0}, at(1))
    assert kept == [False] and cond.stopped


def test_limit_position_matters():
    records = [Rec(i, {"k": str(i % 2)}) for i in range(6)]
    kept, cond = run({"&k": {"$eq": 1}, "$limit": 1}, records)
    assert kept == [False, True, False, False, False, False] and cond.stopped


def test_spec_example_time_window_thinning_and_limit():
    when = {"$timestamp": {"$lt": 1700000000000000}, "$each_t": "10s", "$limit": 1000}
    kept, cond = run(when, at(0, 5, 10, 20))
    assert kept == [False, False, True, True] and not cond.stopped


def test_clone_fresh_resets_state():
    cond, _ = compile_when({"$each_n": 2, "$limit": 5})
    assert [cond.evaluate(r) for r in at(1, 2)] == [False, True]
    fresh = cond.clone_fresh()
    assert [fresh.evaluate(r) for r in at(1, 2)] == [False, True]
    for r in at(*range(20)):
        cond.evaluate(r)
    assert cond.stopped and not fresh.stopped
    assert not fresh.clone_fresh().stopped


def test_gate_opens_a_window_on_rising_edge():
    when = {"$gate": ["10s", "&on"]}
    cond, _ = compile_when(when)
    seq = [(0, "0"), (1, "1"), (5, "1"), (11, "1"), (12, "1"), (13, "0"), (14, "1"), (15, "0"), (16, "1")]
    kept = [cond.evaluate(Rec(int(t * 1e6), {"on": v})) for t, v in seq]
    # opens at 1 (until 11); at 11 it has expired while still true -> blocked until a false;
    # 13 false unblocks, 14 re-opens (until 24): mirrors the condition inside the window.
    assert kept == [False, True, True, False, False, False, True, False, True]


def test_gate_time_backwards_resets():
    cond, _ = compile_when({"$gate": [5, "&on"]})
    assert cond.evaluate(Rec(10_000_000, {"on": "1"}))
    assert not cond.evaluate(Rec(20_000_000, {"on": "1"}))  # expired, blocked
    assert cond.evaluate(Rec(1_000_000, {"on": "1"}))  # backwards: reset, rising edge again
