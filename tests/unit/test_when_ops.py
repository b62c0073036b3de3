"""Stateless operator families of `when` (spec §10.3): logic, comparison, arithmetic, strings, misc."""

import math

import pytest

from edge.errors import InvalidInputError, NotFoundError
from edge.query.when import Duration, compile_when


class Rec:
    def __init__(self, ts_us=0, labels=None, computed=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, computed or {}


def value(expr, labels=None, ts=0):
    """The raw value of one expression, read through the compiled tree."""
    cond, _ = compile_when({"$and": [True]} if expr is None else {"$eq": [expr, expr]})
    node = cond._expressions[0].operands[0]
    return node.eval(Rec(ts, labels))


def match(when, labels=None, ts=0, strict=False):
    cond, _ = compile_when(when, strict=strict)
    return cond.evaluate(Rec(ts, labels))


def raises(expr, text, labels=None, exc=InvalidInputError):
    with pytest.raises(exc) as info:
        value(expr, labels)
    assert info.value.message == text


# --- logic -------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["$and", "$all_of"])
def test_and(op):
    assert match({op: [True, 1, "x"]}) and not match({op: [True, 0]}) and match({op: []})


@pytest.mark.parametrize("op", ["$or", "$any_of"])
def test_or(op):
    assert match({op: [False, 1]}) and not match({op: [False, ""]}) and not match({op: []})


@pytest.mark.parametrize("op", ["$not", "$none_of"])
def test_not(op):
    assert match({op: [False]}) and not match({op: [True]}) and not match({op: [False, True]})


@pytest.mark.parametrize("op", ["$xor", "$one_of"])
def test_xor(op):
    assert match({op: [True, False]}) and not match({op: [True, True]}) and not match({op: [False]})


def test_short_circuit_protects_missing_labels():
    assert not match({"$and": [False, "&missing"]}, strict=True)
    assert match({"$or": [True, "&missing"]}, strict=True)
    with pytest.raises(NotFoundError):
        match({"$xor": [True, "&missing"]}, strict=True)  # $xor evaluates everything


def test_in_nin():
    assert match({"$in": ["&k", 1, 2]}, {"k": "2"}) and not match({"$in": ["&k", 1, 2]}, {"k": "3"})
    assert match({"$nin": ["&k", 1, 2]}, {"k": "3"}) and not match({"$nin": ["&k", "2", 2]}, {"k": "2"})
    assert match({"$in": ["&k", "a", 1.0]}, {"k": "1"})  # numbers cross-compare
    assert not match({"$in": ["&k", "1"]}, {"k": "1"})  # label "1" is Int, "1" literal is String
    assert match({"$in": [{"&key": {"$cast": "string"}}, "1", "2.5", "$$system"]}, {"key": "2.5"})


# --- comparison --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("$eq", 1, 1.0, True), ("$eq", True, 1, True), ("$eq", "a", "a", True), ("$eq", "1", 1, False),
        ("$ne", "1", 1, True), ("$ne", 1, 2, True), ("$ne", 1, 1.0, False), ("$gt", 2, 1.5, True), ("$gt", "b", "a", True),
        ("$gt", "b", 1, False), ("$lt", "b", 1, False), ("$gte", 1, 1, True), ("$lte", 1, 2, True),
        ("$lt", 2, 1, False), ("$gt", "1s", 999_999, True), ("$eq", "1s", 1_000_000, True),
        ("$gte", "a", 1, False), ("$lte", "a", 1, False),
    ],
)
def test_comparisons(op, a, b, expected):
    assert match({op: [a, b]}) is expected


def test_number_label_comparison():
    assert match({"&number": {"$gt": 1}}, {"number": "2"})
    assert not match({"&number": {"$gt": 1}}, {"number": "abc"})


# --- arithmetic --------------------------------------------------------------------------------

def test_add():
    assert value({"$add": [1, 2]}) == 3 and type(value({"$add": [1, 2]})) is int
    assert value({"$add": [1, 2.5]}) == 3.5
    assert value({"$add": [True, True]}) == 2
    assert value({"$add": []}) == 0
    assert value({"$add": ["a", "b"]}) == "ab"
    assert value({"$add": ["1s", "1ms"]}) == Duration(1_001_000)
    raises({"$add": ["a", 1]}, "Cannot apply '$add' to String and Int")


def test_sub_mult():
    assert value({"$sub": [5, 7]}) == -2 and value({"$sub": [5, 0.5]}) == 4.5
    raises({"$sub": ["a", "b"]}, "Cannot apply '$sub' to String and String")
    assert value({"$mult": [2, 3, 4]}) == 24 and value({"$mult": []}) == 0
    assert value({"$mult": [2, 0.5]}) == 1.0
    raises({"$mult": [2, "x"]}, "Cannot apply '$mult' to String")
    raises({"$mult": [2**62, 4]}, "Integer overflow")


def test_div():
    result = value({"$div": [7, 2]})
    assert result == 3.5 and type(result) is float
    assert value({"$div": [4, 2]}) == 2.0 and type(value({"$div": [4, 2]})) is float
    raises({"$div": [1, 0]}, "Cannot divide by zero")
    raises({"$div": [1, 0.0]}, "Cannot divide by zero")
    raises({"$div": ["a", 1]}, "Cannot apply '$div' to String and Int")


def test_div_num_truncates_toward_zero():
    assert value({"$div_num": [7, 2]}) == 3
    assert value({"$div_num": [-7, 2]}) == -3  # Python's // would give -4
    assert value({"$div_num": [7, -2]}) == -3
    assert value({"$div_num": [7.9, 2]}) == 3
    raises({"$div_num": [1, 0]}, "Cannot divide by zero")
    raises({"$div_num": [-(2**63), -1]}, "Integer overflow")


def test_rem_has_sign_of_dividend():
    assert value({"$rem": [7, 3]}) == 1 and value({"$rem": [-7, 3]}) == -1 and value({"$rem": [7, -3]}) == 1
    assert value({"$rem": [7.5, 2]}) == 1.5 and value({"$rem": [-7.5, 2]}) == -1.5
    raises({"$rem": [1, 0]}, "Cannot divide by zero")
    assert math.isnan(value({"$rem": [1.0, 0.0]}))


def test_abs():
    assert value({"$abs": -3}) == 3 and value({"$abs": -2.5}) == 2.5
    assert value({"$abs": True}) == 1 and type(value({"$abs": True})) is int
    assert value({"$abs": "-1s"}) == 1_000_000 and type(value({"$abs": "-1s"})) is int
    raises({"$abs": "x"}, "Cannot apply '$abs' to String")


# --- strings -----------------------------------------------------------------------------------

def test_string_operators_use_string_forms():
    assert match({"&name": {"$contains": "ell"}}, {"name": "hello"})
    assert match({"&name": {"$starts_with": "he"}}, {"name": "hello"})
    assert match({"&name": {"$ends_with": "lo"}}, {"name": "hello"})
    assert not match({"&name": {"$ends_with": "he"}}, {"name": "hello"})
    assert match({"$starts_with": [1.0, "1"]}) and not match({"$contains": [1.0, "."]})
    assert match({"$ends_with": [True, "ue"]})


# --- misc --------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["$exists", "$has"])
def test_exists(op):
    assert match({op: ["a", "b"]}, {"a": "1", "b": "2"})
    assert not match({op: ["a", "c"]}, {"a": "1", "b": "2"})
    assert not match({op: "a"}, {}, strict=True)
    assert not Rec().computed and not match({op: "c"}, {"a": "1"})


def test_has_guard_example():
    when = {"$and": [{"$has": "remove"}, {"&remove": {"$eq": True}}]}
    assert match(when, {"remove": "true"}, strict=True)
    assert not match(when, {}, strict=True)


def test_cast():
    assert value({"$cast": ["12", "int"]}) == 12
    assert value({"$cast": [1.5, "string"]}) == "1.5"
    assert value({"$cast": [1.0, "string"]}) == "1"
    assert value({"$cast": ["2.5", "float"]}) == 2.5
    assert value({"$cast": ["false", "bool"]}) is True  # non-empty string
    assert value({"$cast": [0, "bool"]}) is False
    assert value({"$cast": [1500, "duration"]}) == Duration(1500)
    assert value({"$cast": ["1h", "string"]}) == "1h"
    raises({"$cast": ["1.5", "int"]}, "Value '1.5' could not be parsed as integer")
    with pytest.raises(InvalidInputError, match="Unknown type 'bogus'"):
        value({"$cast": [1, "&t"]}, {"t": "bogus"})


def test_ref():
    assert value({"$ref": "&which"}, {"which": "b", "b": "5"}) == 5
    raises({"$ref": "nope"}, "Label '\"nope\"' not found", {}, NotFoundError)


def test_references_missing():
    raises("&x", "Reference 'x' not found", {}, NotFoundError)
    raises("@x", "Reference '@x' not found", {}, NotFoundError)
    cond, _ = compile_when({"@score": {"$gt": 1}})
    assert cond.evaluate(Rec(0, {}, {"score": "2"}))


def test_timestamp():
    assert value("$timestamp", ts=123) == 123 and value("$id", ts=5) == 5
