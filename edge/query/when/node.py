"""The expression-tree building blocks shared by every operator family.

Owns: the ``Node`` base class, constants, ``&label`` / ``@computed`` references, the record view
protocol and the arity check with its error texts.
Must not: parse JSON (``parse.py`` does) or implement operators (one module per family does).
Pure, stdlib only (+ edge.errors).

A node is built once at compile time and evaluated per record with ``node.eval(record)``; only the
stateful nodes of ``aggregate.py`` keep anything between two calls.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

from edge.errors import InvalidInputError, NotFoundError
from edge.query.when.values import Value, parse_label


class RecordView(Protocol):
    """What a condition reads of a record (read-only: any object with these attributes).
    A ``computed`` mapping (extension labels, ``@name``) is optional: without one they are missing."""

    @property
    def ts_us(self) -> int: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


class Node:
    """One expression; subclasses set ``name`` (as written) and ``operands``."""

    __slots__ = ()

    def eval(self, record: RecordView) -> Value:  # pragma: no cover - abstract
        raise NotImplementedError


class Const(Node):
    __slots__ = ("value",)

    def __init__(self, value: Value):
        self.value = value

    def eval(self, record: RecordView) -> Value:
        return self.value

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


class LabelRef(Node):
    """``&name``: the label's string, typed on each read (labels are stored as strings)."""

    __slots__ = ("label",)

    def __init__(self, label: str):
        self.label = label

    def eval(self, record: RecordView) -> Value:
        text = record.labels.get(self.label)
        if text is None:
            raise NotFoundError(f"Reference '{self.label}' not found")
        return parse_label(text)

    def __repr__(self) -> str:
        return f"LabelRef({self.label!r})"


class ComputedRef(Node):
    """``@name``: a label computed by an extension; without extensions it is always missing."""

    __slots__ = ("label",)

    def __init__(self, label: str):
        self.label = label

    def eval(self, record: RecordView) -> Value:
        computed = getattr(record, "computed", None) or {}
        text = computed.get(self.label)
        if text is None:
            raise NotFoundError(f"Reference '@{self.label}' not found")
        return parse_label(text)

    def __repr__(self) -> str:
        return f"ComputedRef({self.label!r})"


class Operator(Node):
    """Base of all operators: ``MIN``/``MAX`` operands (MAX None = unbounded) checked at build."""

    __slots__ = ("name", "operands")
    MIN = 0
    MAX: int | None = None

    def __init__(self, name: str, operands: Sequence[Node]):
        check_arity(name, len(operands), self.MIN, self.MAX)
        self.name = name
        self.operands = tuple(operands)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {list(self.operands)!r})"


_WORDS = {0: "no operands", 1: "one operand", 2: "two operands"}


def check_arity(name: str, count: int, low: int, high: int | None) -> None:
    """Raise the upstream-style arity text (``$gt requires exactly two operands``)."""
    if count >= low and (high is None or count <= high):
        return
    if high is None:
        need = f"at least {_WORDS[low]}"
    elif low == high:
        need = "no operands" if low == 0 else f"exactly {_WORDS[low]}"
    else:
        need = f"{_WORDS[low].split()[0]} or {_WORDS[high]}"
    raise InvalidInputError(f"{name} requires {need}")
