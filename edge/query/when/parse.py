"""JSON -> expression tree (spec §10.2): the three syntax forms, literals and the OPERATORS table.

Owns: the grammar (object/binary, array and unary syntax), ``&label`` / ``@computed`` / ``$$``
literals, duration literals in strings, the operator name table with its aliases, and every
compile-time error text ("Operator '$x' not supported", "Null type is not supported: null", ...).
Must not: evaluate anything but literals, or see directives (``#`` keys are split off before).
Pure, stdlib only (+ edge.errors).

Mirrors upstream's recursive parser: a JSON value parses to a *list* of nodes, because an object
in operand position contributes one operand per key (``{"$or": [{"&a": ..., "&b": ...}]}``).
"""

from __future__ import annotations

import json
from typing import Mapping

from edge.errors import InvalidInputError
from edge.query.when import aggregate, arith, compare, dates, logic, misc, strings
from edge.query.when.node import ComputedRef, Const, LabelRef, Node, Operator
from edge.query.when.values import I64_MAX, I64_MIN, parse_duration

OPERATORS: dict[str, type[Operator]] = {
    **logic.OPERATORS,
    **compare.OPERATORS,
    **arith.OPERATORS,
    **strings.OPERATORS,
    **misc.OPERATORS,
    **dates.OPERATORS,
    **aggregate.OPERATORS,
}

# serde_json refuses documents nested deeper than 128; we stop at the same depth so that neither
# parsing nor evaluation can hit Python's recursion limit.
MAX_DEPTH = 128


def parse_condition(obj: Mapping[str, object]) -> list[Node]:
    """The top-level expressions of a condition object (directives already removed), in key order."""
    return _parse_object(obj, 0)


def build_operator(name: str, operands: list[Node]) -> Operator:
    if not name.startswith("$"):
        raise InvalidInputError(f"Operator '{name}' must start with '$'")
    try:
        cls = OPERATORS[name]
    except KeyError:
        raise InvalidInputError(f"Operator '{name}' not supported") from None
    return cls(name, operands)


def _compact(value: object) -> str:
    # serde_json's compact form, which upstream puts in the error text.
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _parse(value: object, depth: int) -> list[Node]:
    if depth > MAX_DEPTH:
        raise InvalidInputError("Condition is nested too deeply")
    if isinstance(value, dict):
        return _parse_object(value, depth)
    if isinstance(value, bool):
        return [Const(value)]
    if isinstance(value, int):
        if I64_MIN <= value <= I64_MAX:
            return [Const(value)]
        try:  # serde_json reads integers outside i64 as f64
            return [Const(float(value))]
        except OverflowError:
            raise InvalidInputError(f"Number out of range: {value}") from None
    if isinstance(value, float):
        return [Const(value)]
    if isinstance(value, str):
        return [_literal(value)]
    if isinstance(value, list):
        raise InvalidInputError(f"Array type is not supported: {_compact(value)}")
    if value is None:
        raise InvalidInputError("Null type is not supported: null")
    raise InvalidInputError(f"Unsupported value: {value!r}")  # not JSON at all


def _parse_object(obj: Mapping[str, object], depth: int) -> list[Node]:
    nodes: list[Node] = []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"Operator '{key}' must start with '$'")
        if isinstance(value, list):
            # Array syntax: {"$gt": ["&score", 10]}; objects inside give one operand per key.
            operands: list[Node] = []
            for element in value:
                operands.extend(_parse(element, depth + 1))
            nodes.append(build_operator(key, operands))
        elif isinstance(value, dict):
            nodes.append(_parse_binary(key, value, depth + 1))
        else:
            # Unary syntax: {"$each_n": 5}, {"$has": "key"}.
            nodes.append(build_operator(key, _parse(value, depth + 1)))
    return nodes


def _parse_binary(key: str, inner: Mapping[str, object], depth: int) -> Operator:
    """Object syntax ``{"&score": {"$gt": 10}}``: the key is the left operand."""
    if len(inner) != 1:
        raise InvalidInputError("Object notation must have exactly one operator")
    ((operator, right),) = inner.items()
    if not isinstance(operator, str):
        raise InvalidInputError(f"Operator '{operator}' must start with '$'")
    left = _literal(key)
    return build_operator(operator, [left, *_parse(right, depth + 1)])


def _literal(text: str) -> Node:
    if text.startswith("&"):
        return LabelRef(text[1:])
    if text.startswith("@"):
        return ComputedRef(text[1:])
    if text.startswith("$$"):
        return Const(text[1:])
    if text.startswith("$"):
        # A nullary operator such as "$timestamp"; anything else starting with "$" is an error
        # so that a typo in an operator name never silently becomes a string.
        try:
            return build_operator(text, [])
        except InvalidInputError:
            raise InvalidInputError(
                f"Unknown '$' literal '{text}'; use '$$' to escape a string value"
            ) from None
    duration = parse_duration(text)
    return Const(duration if duration is not None else text)
