"""Stateful operators: $each_n $each_t $limit $gate (spec §10.3).

Owns: the per-Condition state of thinning, rate limiting, query limits and edge-triggered gates.
Must not: share state between Conditions (one per entry: multi-entry queries count per entry) or
count records it was not asked about (position in an $and matters, by design).
Pure, stdlib only (+ edge.errors).

A literal parameter (``{"$each_n": 0}``) is validated at compile time so the client gets a 422 on
query creation; a computed one is validated on every evaluation with the same text.
"""

from __future__ import annotations

import math
from typing import Sequence

from edge.errors import InvalidInputError
from edge.query.when.node import Const, Node, Operator, RecordView
from edge.query.when.values import Duration, Value, saturate, to_bool, to_float, to_int, to_string


def _invalid(name: str, value: Value) -> InvalidInputError:
    return InvalidInputError(f"Value '{to_string(value)}' is not a valid operand for {name}")


def _interval_us(name: str, value: Value) -> int:
    """A Duration, or a number of seconds, as µs; negative or NaN is invalid."""
    if isinstance(value, Duration):
        us = value.us
    else:
        seconds = to_float(value)
        if math.isnan(seconds):
            raise _invalid(name, value)
        us = saturate(seconds * 1_000_000)
    if us < 0:
        raise _invalid(name, value)
    return us


class _Stateful(Operator):
    __slots__ = ()
    MIN = MAX = 1

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        if isinstance(operands[0], Const):
            self.parameter(operands[0].value)

    def parameter(self, value: Value):  # pragma: no cover - abstract
        raise NotImplementedError


class EachN(_Stateful):
    """Counter on each evaluation; true on the n-th, 2n-th, ... (differs from legacy each_n)."""

    __slots__ = ("count",)

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        self.count = 0

    def parameter(self, value: Value) -> int:
        n = to_int(value)
        if n <= 0:
            raise _invalid("$each_n", value)
        return n

    def eval(self, record: RecordView) -> Value:
        n = self.parameter(self.operands[0].eval(record))
        self.count += 1
        return self.count % n == 0


class EachT(_Stateful):
    """The first record sets the reference and is dropped; keep when ``ts - ref >= interval``."""

    __slots__ = ("reference",)

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        self.reference: int | None = None

    def parameter(self, value: Value) -> int:
        return _interval_us("$each_t", value)

    def eval(self, record: RecordView) -> Value:
        interval = self.parameter(self.operands[0].eval(record))
        ts = record.ts_us
        if interval == 0:  # spec: interval 0 keeps everything, the first record included
            self.reference = ts
            return True
        if self.reference is None or ts < self.reference:  # first record, or time went back
            self.reference = ts
            return False
        if ts - self.reference >= interval:
            self.reference = ts
            return True
        return False


class Limit(_Stateful):
    """Counts evaluations; the one after the n-th stops the whole query (``exhausted``)."""

    __slots__ = ("count", "exhausted")

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        self.count = 0
        self.exhausted = False

    def parameter(self, value: Value) -> int:
        n = to_int(value)
        if n < 0:
            raise _invalid("$limit", value)
        return n

    def eval(self, record: RecordView) -> Value:
        n = self.parameter(self.operands[0].eval(record))
        self.count += 1
        if self.count > n:
            self.exhausted = True
            return False
        return True


class Gate(Operator):
    """Edge-triggered window ``[duration, condition]``.

    A false->true transition opens a window of ``duration``; inside it the output mirrors the
    condition. Once it expires the output stays false until the condition was false at least once
    (so a condition stuck at true cannot keep the gate open). Time going backwards resets.
    """

    __slots__ = ("previous", "window_end", "blocked", "last_ts")
    MIN = MAX = 2

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        if isinstance(operands[0], Const):
            _interval_us("$gate", operands[0].value)
        self.previous = False
        self.window_end: int | None = None
        self.blocked = False
        self.last_ts: int | None = None

    def eval(self, record: RecordView) -> Value:
        duration = _interval_us("$gate", self.operands[0].eval(record))
        condition = to_bool(self.operands[1].eval(record))
        ts = record.ts_us
        if self.last_ts is not None and ts < self.last_ts:
            self.previous, self.window_end, self.blocked = False, None, False
        self.last_ts = ts
        if self.window_end is not None and ts >= self.window_end:
            self.window_end = None
            self.blocked = True
        if not condition:
            self.blocked = False
        elif not self.previous and self.window_end is None and not self.blocked:
            # A zero window still lets the triggering record through; it expires on the next one.
            self.window_end = ts + duration
        self.previous = condition
        return condition and self.window_end is not None


OPERATORS = {"$each_n": EachN, "$each_t": EachT, "$limit": Limit, "$gate": Gate}
