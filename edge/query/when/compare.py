"""Comparison operators: $eq $ne $gt $gte $lt $lte (spec §10.3, rules of §10.1).

Owns: the six binary comparisons.
Must not: define the comparison rules themselves (``values.compare`` does, so ``$in`` shares them).
Pure, stdlib only.
"""

from __future__ import annotations

from edge.query.when.node import Operator, RecordView
from edge.query.when.values import Value, compare


class _Comparison(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        left = self.operands[0].eval(record)
        right = self.operands[1].eval(record)
        return self.test(compare(left, right))

    @staticmethod
    def test(order: int | None) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class Eq(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        return order == 0


class Ne(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        # String vs non-String is "not equal": $ne is the exact negation of $eq.
        return order != 0


class Gt(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        return order is not None and order > 0


class Gte(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        return order is not None and order >= 0


class Lt(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        return order is not None and order < 0


class Lte(_Comparison):
    __slots__ = ()

    @staticmethod
    def test(order: int | None) -> bool:
        return order is not None and order <= 0


OPERATORS = {"$eq": Eq, "$ne": Ne, "$gt": Gt, "$gte": Gte, "$lt": Lt, "$lte": Lte}
