"""Record and type operators: $exists/$has $cast $ref $timestamp/$id (spec §10.3).

Owns: label existence, explicit type casts, indirect label lookup and the record timestamp.
Must not: look at computed labels for ``$exists``/``$ref`` (only ``@name`` references do).
Pure, stdlib only (+ edge.errors).
"""

from __future__ import annotations

from typing import Sequence

from edge.errors import InvalidInputError, NotFoundError
from edge.query.when.node import Const, Node, Operator, RecordView
from edge.query.when.values import Value, parse_label, to_bool, to_duration, to_float, to_int, to_string

_CASTS = {"bool": to_bool, "int": to_int, "float": to_float, "string": to_string, "duration": to_duration}


class Exists(Operator):
    __slots__ = ()
    MIN = 1

    def eval(self, record: RecordView) -> Value:
        return all(to_string(op.eval(record)) in record.labels for op in self.operands)


class Cast(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def __init__(self, name: str, operands: Sequence[Node]):
        super().__init__(name, operands)
        target = operands[1]
        if isinstance(target, Const):  # a literal type name is checked at compile time
            self._converter(to_string(target.value))

    @staticmethod
    def _converter(kind: str):
        try:
            return _CASTS[kind]
        except KeyError:
            raise InvalidInputError(f"Unknown type '{kind}'") from None

    def eval(self, record: RecordView) -> Value:
        value = self.operands[0].eval(record)
        convert = self._converter(to_string(self.operands[1].eval(record)))
        return convert(value)


class Ref(Operator):
    __slots__ = ()
    MIN = MAX = 1

    def eval(self, record: RecordView) -> Value:
        label = to_string(self.operands[0].eval(record))
        text = record.labels.get(label)
        if text is None:
            # Upstream prints the name with Rust's Debug quoting, hence the double quotes.
            raise NotFoundError(f"Label '\"{label}\"' not found")
        return parse_label(text)


class Timestamp(Operator):
    __slots__ = ()
    MAX = 0

    def eval(self, record: RecordView) -> Value:
        return int(record.ts_us)


OPERATORS = {
    "$exists": Exists, "$has": Exists,
    "$cast": Cast, "$ref": Ref,
    "$timestamp": Timestamp, "$id": Timestamp,
}
