"""QueryPlan from legacy URL parameters and QueryEntry JSON (spec §9.2, §9.4): values and 422 texts."""

from __future__ import annotations

import pytest

from edge.errors import InvalidInputError
from edge.query.plan import DEFAULT_TTL_S, QUERY, REMOVE, extension_names, plan_from_json, plan_from_params


def _error(fn, *args) -> str:
    with pytest.raises(InvalidInputError) as info:
        fn(*args)
    return info.value.message


def test_legacy_params_become_a_plan():
    plan = plan_from_params([("start", "10"), ("stop", "20"), ("ttl", "5"), ("continuous", "true"),
                             ("include-a", "1"), ("exclude-b", "x"), ("each_s", "0.5"), ("each_n", "2"),
                             ("limit", "7"), ("unknown", "ignored")])
    assert (plan.kind, plan.start_us, plan.stop_us, plan.ttl_s, plan.continuous) == (QUERY, 10, 20, 5, True)
    assert plan.include == {"a": "1"} and plan.exclude == {"b": "x"}
    assert (plan.each_s, plan.each_n, plan.limit) == (0.5, 2, 7)
    assert not plan.only_metadata


@pytest.mark.parametrize("name,value,text", [
    ("start", "x", "'start' must be an unix timestamp in microseconds"),
    ("start", "-1", "'start' must be an unix timestamp in microseconds"),
    ("stop", "1.5", "'stop' must be an unix timestamp in microseconds"),
    ("ttl", "ten", "'ttl' must be in seconds as an unsigned integer"),
    ("continuous", "maybe", "'continue' must be a bool value"),
    ("each_s", "0", "Time must be greater than 0 seconds"),
    ("each_s", "-1", "Time must be greater than 0 seconds"),
    ("each_n", "0", "'each_n' must be greater than 0"),
])
def test_legacy_param_errors(name, value, text):
    assert _error(plan_from_params, [(name, value)]) == text


def test_start_after_stop_is_refused_unless_continuous():
    assert _error(plan_from_params, [("start", "20"), ("stop", "10")]) == "Start time must be before stop time"
    assert plan_from_params([("start", "20"), ("stop", "20")]).start_us == 20  # equal is allowed
    assert plan_from_json({"query_type": "QUERY", "start": 20, "stop": 10, "continuous": True}).continuous


def test_legacy_delete_needs_a_parameter():
    assert _error(plan_from_params, [], REMOVE) == "Define at least one query parameter to delete records"
    assert plan_from_params([("start", "1")], REMOVE).kind == REMOVE


def test_reduct_py_body_with_nulls():
    doc = {"query_type": "QUERY", "entries": ["entry-2"], "start": None, "stop": None, "ttl": None,
           "only_metadata": False, "continuous": None, "when": None, "strict": None, "ext": None}
    plan = plan_from_json(doc)
    assert plan.entries == ("entry-2",) and plan.ttl_s == DEFAULT_TTL_S
    assert not plan.continuous and not plan.strict and plan.when is None


def test_json_fields():
    plan = plan_from_json({"query_type": "QUERY", "start": 1, "stop": 5, "ttl": 0, "only_metadata": True,
                           "continuous": True, "strict": True, "when": {"&a": {"$eq": 1}, "#batch_records": 3},
                           "include": {"k": "v"}, "each_n": 3, "limit": 2, "extra": "ignored"})
    assert (plan.start_us, plan.stop_us, plan.ttl_s) == (1, 5, 0)
    assert plan.only_metadata and plan.continuous and plan.strict
    assert plan.directives.batch_records == 3
    assert plan.include == {"k": "v"}


@pytest.mark.parametrize("doc,text", [
    ({}, "Invalid JSON: missing field `query_type`"),
    ({"query_type": "SELECT"}, "Invalid JSON: unknown variant `SELECT`, expected `QUERY` or `REMOVE`"),
    ({"query_type": "QUERY", "start": "1"}, 'Invalid JSON: invalid type: string "1", expected u64'),
    ({"query_type": "QUERY", "stop": -1}, "Invalid JSON: invalid value: integer `-1`, expected u64"),
    ({"query_type": "QUERY", "strict": 1}, "Invalid JSON: invalid type: integer `1`, expected a boolean"),
    ({"query_type": "QUERY", "when": [1]}, "Invalid JSON: invalid type: sequence, expected a map"),
    ({"query_type": "QUERY", "entries": "a"}, 'Invalid JSON: invalid type: string "a", expected a sequence'),
    ([], "Invalid JSON: invalid type: sequence, expected struct QueryEntry"),
    ({"query_type": "REMOVE"}, "Define at least one query parameter to delete records"),
    ({"query_type": "REMOVE", "start": None, "when": None}, "Define at least one query parameter to delete records"),
])
def test_json_errors(doc, text):
    assert _error(plan_from_json, doc) == text


@pytest.mark.parametrize("when,text", [
    ({"&a": {"$foo": 1}}, "Operator '$foo' not supported"),
    ({"&a": {"$eq": None}}, "Null type is not supported: null"),
    ({"#nope": 1}, "Directive '#nope' is not supported"),
    ({"$each_n": 0}, "Value '0' is not a valid operand for $each_n"),
])
def test_when_is_compiled_at_creation(when, text):
    assert _error(plan_from_json, {"query_type": "QUERY", "when": when}) == text


def test_remove_ignores_continuous():
    plan = plan_from_json({"query_type": "REMOVE", "start": 1, "continuous": True})
    assert plan.kind == REMOVE and not plan.continuous


def test_extension_names_from_ext_and_directive():
    assert extension_names(plan_from_json({"query_type": "QUERY", "ext": {"img": {}}})) == ["img"]
    assert extension_names(plan_from_json({"query_type": "QUERY", "when": {"#ext": {"sel": {}}}})) == ["sel"]
    assert extension_names(plan_from_json({"query_type": "QUERY"})) == []


def test_conditions_are_fresh_per_call():
    plan = plan_from_json({"query_type": "QUERY", "when": {"$each_n": 2}})
    (_, a), (_, b) = plan.conditions(), plan.conditions()
    assert a is not b
