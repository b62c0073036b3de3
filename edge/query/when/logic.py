"""Logical and membership operators: $and/$all_of $or/$any_of $not/$none_of $xor/$one_of $in $nin.

Owns: truthiness combinators and list membership (spec §10.3).
Must not: redefine truthiness or equality (``values.to_bool`` / ``values.equals`` do).
Pure, stdlib only.

Short-circuit is part of the contract, not an optimisation: stateful operators count only when
evaluated and a missing label only fails when reached, so operands run strictly left to right.
"""

from __future__ import annotations

from edge.query.when.node import Operator, RecordView
from edge.query.when.values import Value, equals, to_bool


class And(Operator):
    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        return all(to_bool(op.eval(record)) for op in self.operands)


class Or(Operator):
    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        return any(to_bool(op.eval(record)) for op in self.operands)


class Not(Operator):
    """True when no operand is truthy, so ``{"$not": [x]}`` negates x."""

    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        return not any(to_bool(op.eval(record)) for op in self.operands)


class Xor(Operator):
    """Exactly one truthy operand; every operand is evaluated (no short-circuit)."""

    __slots__ = ()

    def eval(self, record: RecordView) -> Value:
        return sum(1 for op in self.operands if to_bool(op.eval(record))) == 1


class In(Operator):
    __slots__ = ()
    MIN = 2

    def eval(self, record: RecordView) -> Value:
        needle = self.operands[0].eval(record)
        return any(equals(needle, op.eval(record)) for op in self.operands[1:])


class Nin(Operator):
    __slots__ = ()
    MIN = 2

    def eval(self, record: RecordView) -> Value:
        needle = self.operands[0].eval(record)
        return not any(equals(needle, op.eval(record)) for op in self.operands[1:])


OPERATORS = {
    "$and": And, "$all_of": And,
    "$or": Or, "$any_of": Or,
    "$not": Not, "$none_of": Not,
    "$xor": Xor, "$one_of": Xor,
    "$in": In, "$nin": Nin,
}
