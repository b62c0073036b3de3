"""Syntax forms and compile-time errors of the `when` language (spec §10.2)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import InvalidInputError
from edge.query.when import OPERATORS, compile_when
from edge.query.when.node import Const, LabelRef
from edge.query.when.values import Duration


class Rec:
    def __init__(self, ts_us=0, labels=None, computed=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, computed or {}


def match(when, labels=None, ts=0, strict=False):
    cond, _ = compile_when(when, strict=strict)
    return cond.evaluate(Rec(ts, labels))


def error_of(when):
    with pytest.raises(InvalidInputError) as info:
        compile_when(when)
    return info.value.message


def test_none_and_empty_compile_to_no_condition():
    assert compile_when(None)[0] is None
    assert compile_when({})[0] is None
    cond, directives = compile_when({"#batch_records": 3})
    assert cond is None and directives.batch_records == 3


def test_three_syntax_forms():
    assert match({"&score": {"$gt": 10}}, {"score": "11"})
    assert not match({"&score": {"$gt": 10}}, {"score": "10"})
    assert match({"$gt": ["&score", 10]}, {"score": "11"})
    assert match({"$has": "key"}, {"key": "x"})
    assert match({"$in": ["&k", "a", "b"]}, {"k": "b"})


def test_object_in_array_contributes_one_operand_per_key():
    when = {"$or": [{"&a": {"$eq": 1}, "&b": {"$eq": 2}}]}
    assert match(when, {"a": "0", "b": "2"})
    assert match(when, {"a": "1", "b": "0"})
    assert not match(when, {"a": "0", "b": "0"})


def test_literals():
    cond, _ = compile_when({"$eq": ["$$text", "&x"]})
    left = cond._expressions[0].operands[0]
    assert isinstance(left, Const) and left.value == "$text"
    assert isinstance(cond._expressions[0].operands[1], LabelRef)
    cond, _ = compile_when({"$eq": ["1h -30m", 1]})
    assert cond._expressions[0].operands[0].value == Duration(1_800_000_000)
    cond, _ = compile_when({"$eq": [2**63, 1.5]})
    assert cond._expressions[0].operands[0].value == float(2**63)
    assert match({"$eq": ["$$text", "$$text"]})
    assert match({"$timestamp": {"$gte": 1000}}, ts=1000)
    assert match({"$id": {"$eq": 7}}, ts=7)


def test_key_order_is_and_with_short_circuit():
    # The guard comes first: the missing label is never read.
    assert not match({"$has": "x", "&x": {"$eq": 1}}, {})
    cond, _ = compile_when({"&x": {"$eq": 1}, "$has": "x"}, strict=True)
    with pytest.raises(Exception, match="Reference 'x' not found"):
        cond.evaluate(Rec(0, {}))


@pytest.mark.parametrize(
    "when, text",
    [
        ({"$foo": [1]}, "Operator '$foo' not supported"),
        ({"&a": {"$eq": 1, "$ne": 2}}, "Object notation must have exactly one operator"),
        ({"&a": {}}, "Object notation must have exactly one operator"),
        ({"&a": {"eq": 1}}, "Operator 'eq' must start with '$'"),
        ({"&a": 1}, "Operator '&a' must start with '$'"),
        ({"$eq": ["$foo", 1]}, "Unknown '$' literal '$foo'; use '$$' to escape a string value"),
        ({"$eq": ["$gt", 1]}, "Unknown '$' literal '$gt'; use '$$' to escape a string value"),
        ({"$eq": [None, 1]}, "Null type is not supported: null"),
        ({"$and": None}, "Null type is not supported: null"),
        ({"&k": {"$in": [1, 2]}}, "Array type is not supported: [1,2]"),
        ({"$and": [[1, "a"]]}, 'Array type is not supported: [1,"a"]'),
        ({"$gt": [1]}, "$gt requires exactly two operands"),
        ({"$gt": [1, 2, 3]}, "$gt requires exactly two operands"),
        ({"$in": [1]}, "$in requires at least two operands"),
        ({"$nin": 1}, "$nin requires at least two operands"),
        ({"$abs": [1, 2]}, "$abs requires exactly one operand"),
        ({"$exists": []}, "$exists requires at least one operand"),
        ({"$has": []}, "$has requires at least one operand"),
        ({"$hour": [1, "UTC", 3]}, "$hour requires one or two operands"),
        ({"$timestamp": 5}, "$timestamp requires no operands"),
        ({"$cast": [1, "text"]}, "Unknown type 'text'"),
        ({"$each_n": 0}, "Value '0' is not a valid operand for $each_n"),
        ({"$each_n": -1}, "Value '-1' is not a valid operand for $each_n"),
        ({"$each_t": -1}, "Value '-1' is not a valid operand for $each_t"),
        ({"$limit": -1}, "Value '-1' is not a valid operand for $limit"),
        ({"$each_n": "x"}, "Value 'x' could not be parsed as integer"),
        ({"#foo": 1}, "Directive '#foo' is not supported"),
        ({"#ctx_before": None}, "Directive '#ctx_before' cannot be null"),
    ],
)
def test_compile_errors(when, text):
    assert error_of(when) == text


def test_every_operator_name_is_reachable():
    for name in OPERATORS:
        assert name.startswith("$")
    assert {"$all_of", "$any_of", "$none_of", "$one_of", "$has", "$id"} <= set(OPERATORS)


def test_deep_nesting_is_a_422_not_a_crash():
    when = {"$not": [True]}
    for _ in range(300):
        when = {"$not": [when]}
    assert "nested too deeply" in error_of(when)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(["&a", "@a", "$$x", "$timestamp", "$x", "1s", "UTC", "int", "Mars/Base"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(sorted(OPERATORS) + ["&a", "a", "#batch_size", "#x", "$nope", "$timestamp"])
        | st.text(max_size=4),
        children,
        max_size=3,
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.booleans())
def test_any_json_compiles_or_raises_invalid_input(obj, strict):
    try:
        cond, _ = compile_when(obj, strict=strict)
    except InvalidInputError:
        return
    if cond is not None:
        json.dumps(obj)  # it was JSON all along
        for ts, labels in [(0, {}), (3_600_000_000, {"a": "1"}), (-5, {"a": "x"})]:
            try:
                cond.evaluate(Rec(ts, labels))
            except InvalidInputError:
                assert strict
            except Exception as exc:  # noqa: BLE001 - only EdgeErrors may escape, and only if strict
                from edge.errors import EdgeError

                assert strict and isinstance(exc, EdgeError), repr(exc)
