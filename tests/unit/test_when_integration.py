"""The spec's worked examples (§10.5) and strict mode (§10.4), end to end through compile_when."""

import pytest

from edge.errors import NotFoundError
from edge.query.when import compile_when


class Rec:
    def __init__(self, ts_us=0, labels=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, {}


def test_truthiness_example_from_integration_test_query_when():
    cond, _ = compile_when({"&label1": {"$and": True}})
    assert cond.evaluate(Rec(1, {"label1": "true"}))
    assert cond.evaluate(Rec(2, {"label1": "value"}))
    assert not cond.evaluate(Rec(3, {"label1": "false"}))
    assert not cond.evaluate(Rec(4, {"label1": "0"}))
    assert not cond.evaluate(Rec(5, {}))


def test_each_n_integration_example():
    cond, _ = compile_when({"$each_n": 2})
    assert [cond.evaluate(Rec(t)) for t in (1, 2, 3)] == [False, True, False]


def test_strict_missing_label_raises_and_non_strict_skips():
    when = {"&NOT_EXIST": {"$eq": 2}}
    strict, _ = compile_when(when, strict=True)
    with pytest.raises(NotFoundError) as info:
        strict.evaluate(Rec(1, {"a": "1"}))
    assert info.value.message == "Reference 'NOT_EXIST' not found"
    lenient, _ = compile_when(when)
    assert not lenient.evaluate(Rec(1, {"a": "1"}))


def test_strict_type_error_raises_422_text():
    cond, _ = compile_when({"$add": ["&s", 1]}, strict=True)
    with pytest.raises(Exception, match="Cannot apply '\\$add' to String and Int"):
        cond.evaluate(Rec(1, {"s": "text"}))


@pytest.mark.parametrize(
    "when, labels, ts, expected",
    [
        ({"&number": {"$gt": 1}}, {"number": "5"}, 0, True),
        ({"$and": [{"$has": "remove"}, {"&remove": {"$eq": True}}]}, {"remove": "true"}, 0, True),
        ({"$in": [{"&key": {"$cast": "string"}}, "1", "2.5", "$$system"]}, {"key": "1"}, 0, True),
        ({"$in": [{"&key": {"$cast": "string"}}, "1", "2.5", "$$system"]}, {"key": "$system"}, 0, True),
        ({"$in": [{"&key": {"$cast": "string"}}, "1", "2.5", "$$system"]}, {"key": "3"}, 0, False),
        ({"$gte": [{"$hour": ["$timestamp", "Europe/Berlin"]}, 8]}, {}, 7 * 3600 * 10**6, True),
    ],
)
def test_spec_examples(when, labels, ts, expected):
    cond, _ = compile_when(when)
    assert cond.evaluate(Rec(ts, labels)) is expected
