"""Property test of the whole query path (plan -> cursor -> store) against a reference model.

Random records in two entries and random ``when`` expressions (comparisons, $and/$or/$not, $in,
$has, missing labels, $each_n, $limit) plus random time ranges go through ``plan_from_json`` and
``QueryCursor`` over a real ``Engine``; the expected result is computed by the small evaluator
below, written from spec §10 without using ``edge.query.when`` (labels are typed by hand here).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.model import BucketSettings
from edge.query.cursor import BUSY, QueryCursor
from edge.query.plan import plan_from_json
from edge.store import Engine

KEYS = ["a", "b", "c"]
LABEL_VALUES = ["-1", "0", "1", "2", "x", "y"]       # ints and plain words
LITERALS = [-1, 0, 1, 2, 3, "x", "y"]
CMP = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]


class Missing(Exception):
    pass


# --- reference model ---------------------------------------------------------------------------


def _typed(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _value(operand, labels):
    if isinstance(operand, str) and operand.startswith("&"):
        if operand[1:] not in labels:
            raise Missing(operand)
        return _typed(labels[operand[1:]])
    return operand


def _compare(op, left, right) -> bool:
    if isinstance(left, str) != isinstance(right, str):
        return op == "$ne"          # String vs number: only "not equal" holds
    return {"$eq": left == right, "$ne": left != right, "$gt": left > right, "$gte": left >= right,
            "$lt": left < right, "$lte": left <= right}[op]


def _eval(expr, labels) -> bool:
    ((key, arg),) = expr.items()
    if key in ("$and", "$or"):
        for sub in arg:             # short-circuit: later operands (and their errors) are skipped
            value = _eval(sub, labels)
            if key == "$and" and not value:
                return False
            if key == "$or" and value:
                return True
        return key == "$and"
    if key == "$not":
        return not _eval(arg[0], labels)
    if key == "$has":
        return arg in labels
    if key == "$in":
        first = _value(arg[0], labels)
        return any(_compare("$eq", first, v) for v in arg[1:])
    ((op, literal),) = arg.items()
    return _compare(op, _value(key, labels), literal)


def reference(records, expr, each_n, limit, start, stop):
    """Per-entry evaluation in ts order (stateful counters per entry), merged by (ts, entry)."""
    out = []
    for name in ("a", "b"):
        seen = evaluated_limit = 0
        for ts, labels in sorted(records[name].items()):
            if start is not None and ts < start or stop is not None and ts >= stop:
                continue
            # Top-level keys in order, AND with short-circuit: $each_n / $limit only count the
            # records that reach them; an error (missing label) means "no match" for the record.
            try:
                if expr is not None and not _eval(expr, labels):
                    continue
            except Missing:
                continue
            if each_n is not None:
                seen += 1
                if seen % each_n:
                    continue
            if limit is not None:
                evaluated_limit += 1
                if evaluated_limit > limit:
                    break               # the entry's query is over
            out.append((ts, name))
    return sorted(out)


# --- generators --------------------------------------------------------------------------------

refs = st.sampled_from(["&" + k for k in KEYS])
leaf = st.one_of(
    st.builds(lambda r, op, lit: {r: {op: lit}}, refs, st.sampled_from(CMP), st.sampled_from(LITERALS)),
    st.builds(lambda k: {"$has": k}, st.sampled_from(KEYS)),
    st.builds(lambda r, lits: {"$in": [r, *lits]}, refs, st.lists(st.sampled_from(LITERALS), min_size=1, max_size=3)),
)
exprs = st.recursive(leaf, lambda inner: st.one_of(
    st.builds(lambda xs: {"$and": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda xs: {"$or": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda x: {"$not": [x]}, inner),
), max_leaves=6)
label_maps = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(LABEL_VALUES), max_size=3)
entry_records = st.dictionaries(st.integers(min_value=0, max_value=300), label_maps, max_size=25)
bounds = st.none() | st.integers(min_value=0, max_value=320)


@settings(max_examples=60, deadline=None)
@given(records=st.fixed_dictionaries({"a": entry_records, "b": entry_records}),
       expr=st.none() | exprs, each_n=st.none() | st.integers(min_value=1, max_value=3),
       limit=st.none() | st.integers(min_value=0, max_value=5), start=bounds, stop=bounds)
def test_query_path_matches_the_reference(records, expr, each_n, limit, start, stop):
    if start is not None and stop is not None and start > stop:
        start, stop = stop, start
    when = {}
    if expr is not None:
        when["$and"] = [expr]
    if each_n is not None:
        when["$each_n"] = each_n
    if limit is not None:
        when["$limit"] = limit
    plan = plan_from_json({"query_type": "QUERY", "start": start, "stop": stop, "when": when or None})

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(Path(tmp))
        try:
            bucket = engine.create_bucket("b", BucketSettings(max_block_records=7))  # several blocks
            for name, recs in records.items():
                entry = bucket.get_or_create_entry(name)
                for ts, labels in sorted(recs.items()):
                    writer = entry.begin_write(ts, 1, "application/octet-stream", labels)
                    writer.write(b"x")
                    writer.finish()
                entry.flush()
            cursor = QueryCursor(bucket, plan, ["a", "b"])
            got = []
            while True:
                match = cursor.next(budget=5)   # tiny budget: exercise the BUSY path too
                if match is BUSY:
                    continue
                if match is None:
                    break
                got.append((match.ts_us, match.entry))
            assert cursor.finished
        finally:
            engine.close()
    assert got == reference(records, expr, each_n, limit, start, stop)
