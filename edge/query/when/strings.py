"""String operators: $contains $starts_with $ends_with (spec §10.3).

Owns: substring/prefix/suffix tests on the string forms of both operands.
Must not: define the string form (``values.to_string`` does: ``1.0`` -> ``"1"``, ``true`` -> ``"true"``).
Pure, stdlib only.
"""

from __future__ import annotations

from edge.query.when.node import Operator, RecordView
from edge.query.when.values import Value, to_string


class _StringTest(Operator):
    __slots__ = ()
    MIN = MAX = 2

    def eval(self, record: RecordView) -> Value:
        text = to_string(self.operands[0].eval(record))
        part = to_string(self.operands[1].eval(record))
        return self.test(text, part)

    @staticmethod
    def test(text: str, part: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class Contains(_StringTest):
    __slots__ = ()
    test = staticmethod(lambda text, part: part in text)


class StartsWith(_StringTest):
    __slots__ = ()
    test = staticmethod(lambda text, part: text.startswith(part))


class EndsWith(_StringTest):
    __slots__ = ()
    test = staticmethod(lambda text, part: text.endswith(part))


OPERATORS = {"$contains": Contains, "$starts_with": StartsWith, "$ends_with": EndsWith}
