"""Legacy (<= 1.20) query filters (spec §9.2/§9.4) and combining them with a `when` condition."""

import pytest

from edge.errors import InvalidInputError
from edge.query.when import combine, compile_when, legacy_condition


class Rec:
    def __init__(self, ts_us=0, labels=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, {}


def run(cond, records):
    return [cond.evaluate(r) for r in records]


def test_nothing_set_is_no_condition():
    assert legacy_condition(None, None, None, None, None) is None
    assert legacy_condition({}, {}, None, None, None) is None


def test_include_exclude():
    records = [Rec(1, {"a": "1", "b": "x"}), Rec(2, {"a": "1", "b": "y"}), Rec(3, {"a": "2"})]
    assert run(legacy_condition({"a": "1"}, None, None, None, None), records) == [True, True, False]
    assert run(legacy_condition(None, {"a": "1", "b": "x"}, None, None, None), records) == [False, True, True]
    assert run(legacy_condition({"a": 1}, None, None, None, None), records) == [True, True, False]


def test_each_n_keeps_first_then_every_nth():
    cond = legacy_condition(None, None, 2, None, None)
    assert run(cond, [Rec(i) for i in range(5)]) == [True, False, True, False, True]


def test_each_s_keeps_first_then_waits():
    cond = legacy_condition(None, None, None, 1.0, None)
    ts = [0, 500_000, 1_000_000, 1_200_000, 2_100_000]
    assert run(cond, [Rec(t) for t in ts]) == [True, False, True, False, True]


def test_limit_stops_after_n_records():
    cond = legacy_condition(None, None, None, None, 2)
    assert run(cond, [Rec(i) for i in range(2)]) == [True, True] and not cond.stopped
    assert not cond.evaluate(Rec(3)) and cond.stopped


def test_validation():
    with pytest.raises(InvalidInputError, match="'each_n' must be greater than 0"):
        legacy_condition(None, None, 0, None, None)
    with pytest.raises(InvalidInputError, match="Time must be greater than 0 seconds"):
        legacy_condition(None, None, None, 0.0, None)


def test_combine_with_when_and_clone():
    when, _ = compile_when({"&k": {"$eq": 1}})
    both = combine(when, legacy_condition(None, None, None, None, 1))
    records = [Rec(i, {"k": str(i % 2)}) for i in range(4)]
    assert run(both, records) == [False, True, False, False] and both.stopped
    fresh = both.clone_fresh()
    assert not fresh.stopped and run(fresh, records[:2]) == [False, True]
    assert combine(None, when) is when and combine(when, None) is when and combine(None, None) is None
