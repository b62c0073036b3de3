"""The compiled condition: evaluation per record, strict/non-strict errors, $limit stop, combining.

Owns: ``Condition`` (AND of the top-level expressions in key order, short-circuit), ``combine``
and the ``ConditionLike`` protocol shared with the legacy filter.
Must not: parse JSON (``parse.py``) or know operators beyond finding ``$limit`` nodes.
Pure, stdlib only (+ edge.errors).
"""

from __future__ import annotations

import copy
from typing import Iterator, Protocol, Sequence

from edge.errors import EdgeError
from edge.query.when.aggregate import Limit
from edge.query.when.node import Node, Operator, RecordView
from edge.query.when.values import to_bool


class ConditionLike(Protocol):
    def evaluate(self, record: RecordView) -> bool: ...

    @property
    def stopped(self) -> bool: ...

    def clone_fresh(self) -> "ConditionLike": ...


def _walk(nodes: Sequence[Node]) -> Iterator[Node]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Operator):
            stack.extend(node.operands)


class Condition:
    """A compiled ``when``; stateful, so one instance per entry (``clone_fresh`` for more)."""

    def __init__(self, expressions: Sequence[Node], *, strict: bool = False):
        # Kept untouched before any evaluation so that clone_fresh() starts from zero counters.
        self._pristine = copy.deepcopy(tuple(expressions))
        self._expressions = tuple(expressions)
        self._limits = tuple(node for node in _walk(self._expressions) if isinstance(node, Limit))
        self._stopped = False
        self.strict = strict

    @property
    def stopped(self) -> bool:
        """True once a ``$limit`` was exceeded: the query must end (no more records)."""
        return self._stopped

    def evaluate(self, record: RecordView) -> bool:
        """Whether the record matches. Strict: evaluation errors raise; else they mean "no"."""
        if self._stopped:
            return False
        try:
            for expression in self._expressions:
                if not to_bool(expression.eval(record)):
                    return False
            return True
        except EdgeError:
            if self.strict:
                raise
            return False
        finally:
            if self._limits and any(limit.exhausted for limit in self._limits):
                self._stopped = True

    def clone_fresh(self) -> "Condition":
        """A new Condition with the same tree and fresh state (e.g. one per entry)."""
        return Condition(copy.deepcopy(self._pristine), strict=self.strict)

    def __repr__(self) -> str:
        return f"Condition({list(self._expressions)!r}, strict={self.strict})"


class Combined:
    """``a AND b`` with short-circuit: ``b`` (and its counters) only sees records ``a`` kept."""

    def __init__(self, first: ConditionLike, second: ConditionLike):
        self.first = first
        self.second = second

    @property
    def stopped(self) -> bool:
        return self.first.stopped or self.second.stopped

    def evaluate(self, record: RecordView) -> bool:
        if self.stopped:
            return False
        return self.first.evaluate(record) and self.second.evaluate(record)

    def clone_fresh(self) -> "Combined":
        return Combined(self.first.clone_fresh(), self.second.clone_fresh())


def combine(first: ConditionLike | None, second: ConditionLike | None) -> ConditionLike | None:
    """AND two conditions (either may be None); ``first`` is evaluated first."""
    if first is None:
        return second
    if second is None:
        return first
    return Combined(first, second)
