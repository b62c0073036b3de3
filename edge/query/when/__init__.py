"""The ``when`` condition language (spec §10): the public surface of the package.

Owns: ``compile_when`` (JSON object -> ``Condition`` + ``Directives``), ``legacy_condition`` and
``combine``. Internals: parse.py (grammar), values.py (value model), one module per operator
family, directives.py, condition.py (evaluation), legacy.py (<= 1.20 filters).
Must not: import trio, do file I/O, or know about blocks, entries or HTTP. Stdlib + edge.errors.

    cond, directives = compile_when({"&score": {"$gt": 10}, "#batch_records": 10}, strict=False)
    cond.evaluate(record)   # record: .ts_us, .labels, .computed
    cond.stopped            # a $limit was exceeded: end the query
    cond.clone_fresh()      # same condition, fresh counters (one per entry)
"""

from __future__ import annotations

from edge.errors import InvalidInputError
from edge.query.when.condition import Combined, Condition, ConditionLike, combine
from edge.query.when.directives import Directives, parse_directives, parse_size
from edge.query.when.legacy import LegacyCondition, legacy_condition
from edge.query.when.node import RecordView
from edge.query.when.parse import OPERATORS, parse_condition
from edge.query.when.values import Duration

__all__ = [
    "compile_when", "Condition", "Directives", "Duration", "RecordView", "ConditionLike",
    "legacy_condition", "LegacyCondition", "combine", "Combined", "OPERATORS", "parse_size",
]


def compile_when(obj: object, *, strict: bool = False) -> tuple[Condition | None, Directives]:
    """Compile a ``when`` object. The condition is None when there are no condition keys.

    Raises ``InvalidInputError`` (422) for every syntax, arity, literal or directive error.
    """
    if obj is None:
        return None, Directives()
    if not isinstance(obj, dict):
        raise InvalidInputError("Condition must be a JSON object")
    # Directives are split off first (upstream removes them before parsing); order is kept.
    directives = parse_directives({k: v for k, v in obj.items() if isinstance(k, str) and k.startswith("#")})
    expressions = parse_condition({k: v for k, v in obj.items() if not (isinstance(k, str) and k.startswith("#"))})
    if not expressions:
        return None, directives
    return Condition(expressions, strict=strict), directives
