"""Arithmetic operators: $add $sub $mult $div $div_num $rem $abs (spec §10.3).

Owns: numeric typing of results (any Float -> Float, else any Duration -> Duration, else Int; Bool
counts as 0/1), i64 overflow checks, Rust's truncating division and remainder.
Must not: accept String operands except for ``$add`` of Strings only (concatenation).
Pure, stdlib only (+ edge.errors).
"""

from __future__ import annotations

import math

from edge.errors import InvalidInputError
from edge.query.when.node import Operator, RecordView
from edge.query.when.values import Duration, Value, check_i64, to_int, type_name


def _reject_strings(name: str, left: Value, right: Value | None = None) -> None:
    if isinstance(left, str) or isinstance(right, str):
        kinds = type_name(left) if right is None else f"{type_name(left)} and {type_name(right)}"
        raise InvalidInputError(f"Cannot apply '{name}' to {kinds}")


def _raw(value: Value) -> int | float:
    if isinstance(value, Duration):
        return value.us
    return value  # type: ignore[return-value]  # bool/int/float; bool acts as 0/1 below


def _combine(left: Value, right: Value, int_op, float_op) -> Value:
    """Apply a binary numeric op with the shared result typing."""
    a, b = _raw(left), _raw(right)
    if isinstance(a, float) or isinstance(b, float):
        return float_op(float(a), float(b))
    result = check_i64(int_op(int(a), int(b)))
    if isinstance(left, Duration) or isinstance(right, Duration):
        return Duration(result)
    return result


def _trunc_div(a: int, b: int) -> int:
    # Python's // floors; Rust truncates toward zero.
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _trunc_rem(a: int, b: int) -> int:
    # Rust's % keeps the sign of the dividend; Python's follows the divisor.
    remainder = abs(a) % abs(b)
    return remainder if a >= 0 else -remainder


def _float_rem(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)  # sign of the dividend, as Rust's f64 %
    except ValueError:  # fmod(x, 0) / fmod(inf, y): Rust yields NaN
        return math.nan


class Add(Operator):
    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        values = [op.eval(record) for op in self.operands]
        if any(isinstance(v, str) for v in values):
            for value in values:
                if not isinstance(value, str):
                    raise InvalidInputError(f"Cannot apply '{self.name}' to String and {type_name(value)}")
            return "".join(values)  # type: ignore[arg-type]
        total: Value = 0
        for value in values:
            total = _combine(total, value, lambda a, b: a + b, lambda a, b: a + b)
        return total


class Sub(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        left, right = self.operands[0].eval(record), self.operands[1].eval(record)
        _reject_strings(self.name, left, right)
        return _combine(left, right, lambda a, b: a - b, lambda a, b: a - b)


class Mult(Operator):
    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        values = [op.eval(record) for op in self.operands]
        product: Value = 1 if values else 0  # no operands -> Int 0, as upstream
        for value in values:
            _reject_strings(self.name, value)
            product = _combine(product, value, lambda a, b: a * b, lambda a, b: a * b)
        return product


class Div(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        left, right = self.operands[0].eval(record), self.operands[1].eval(record)
        _reject_strings(self.name, left, right)
        divisor = float(_raw(right))
        if divisor == 0.0:
            raise InvalidInputError("Cannot divide by zero")
        return float(_raw(left)) / divisor


class DivNum(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        left = to_int(self.operands[0].eval(record))
        right = to_int(self.operands[1].eval(record))
        if right == 0:
            raise InvalidInputError("Cannot divide by zero")
        return check_i64(_trunc_div(left, right))


class Rem(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        left, right = self.operands[0].eval(record), self.operands[1].eval(record)
        _reject_strings(self.name, left, right)
        if not isinstance(_raw(left), float) and not isinstance(_raw(right), float) and _raw(right) == 0:
            raise InvalidInputError("Cannot divide by zero")
        return _combine(left, right, _trunc_rem, _float_rem)


class Abs(Operator):
    __slots__ = ()
    MIN = MAX = 1

    def eval(self, record: RecordView) -> Value:
        value = self.operands[0].eval(record)
        _reject_strings(self.name, value)
        raw = _raw(value)
        if isinstance(raw, float):
            return abs(raw)
        return check_i64(abs(int(raw)))  # Bool and Duration come out as Int


OPERATORS = {
    "$add": Add, "$sub": Sub, "$mult": Mult, "$div": Div,
    "$div_num": DivNum, "$rem": Rem, "$abs": Abs,
}
