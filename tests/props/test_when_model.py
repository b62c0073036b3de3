"""Model test: compile_when(...).evaluate agrees with a small reference evaluator written here.

The reference works on the JSON directly, with values tagged by hand, and knows every label's type
from how the record was generated (so it does not reuse the package's label parser). Floats are
multiples of 1/4 with small magnitude, so their Rust string form is simply repr() without ".0".
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import InvalidInputError, NotFoundError
from edge.query.when import compile_when

NAMES = ["a", "b", "c", "d"]
REFS = NAMES * 3 + ["zz"]  # "zz" is never present; present names are more likely


class Missing(Exception):
    pass


class TypeErr(Exception):
    pass


# --- generated data ----------------------------------------------------------------------------

quarters = st.integers(min_value=-400, max_value=400).map(lambda n: n / 4)
small_ints = st.integers(min_value=-50, max_value=50)
words = st.text(alphabet="abcxyz", min_size=0, max_size=4).filter(
    lambda s: s.lower() not in {"true", "false"} and not s.startswith(("$", "&", "@"))
)
# Literal strings may look numeric ("1.0", "true") - a JSON string literal is always a String -
# but avoid the duration units s/m/h/d so that none of them becomes a Duration.
literal_words = st.sampled_from(["", "t", "ue", "true", "fal", ".", ".0", "0", "5", "-", ".5", "1", "e"]) | st.text(
    alphabet="abrtuex.05-", min_size=0, max_size=4
)
typed = st.one_of(
    st.tuples(st.just("i"), small_ints),
    st.tuples(st.just("f"), quarters),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("s"), words),
)


def label_text(tv):
    kind, v = tv
    if kind == "b":
        return "true" if v else "false"
    if kind == "f":
        return repr(v)  # "2.5", "3.0": Rust parses "3.0" as a float too
    return str(v)


records = st.tuples(
    st.integers(min_value=0, max_value=10**12),
    st.dictionaries(st.sampled_from(NAMES), typed, min_size=1, max_size=4),
)

leaf = st.one_of(
    small_ints, quarters, st.booleans(), literal_words, st.sampled_from(REFS).map(lambda n: "&" + n),
)


def extend(children):
    two = st.tuples(children, children).map(list)
    many = st.lists(children, max_size=3)
    return st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), two),
        st.tuples(st.sampled_from(["$add", "$sub", "$mult"]), two),
        st.tuples(st.sampled_from(["$contains", "$starts_with", "$ends_with"]), two),
        st.tuples(st.sampled_from(["$and", "$or", "$not", "$xor"]), many),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(children, min_size=2, max_size=4)),
        st.tuples(st.just("$exists"), st.lists(st.sampled_from(REFS), min_size=1, max_size=2)),
    ).map(lambda pair: {pair[0]: pair[1]}) | st.tuples(
        # object syntax with a label on the left: {"&a": {"$gt": x}}
        st.sampled_from(REFS), st.sampled_from(["$eq", "$ne", "$gt", "$lt", "$contains"]), children
    ).map(lambda t: {"&" + t[0]: {t[1]: t[2]}})


expressions = st.recursive(leaf, extend, max_leaves=8)
top_levels = st.lists(expressions.filter(lambda e: isinstance(e, dict)), min_size=1, max_size=3).map(
    lambda exprs: {k: v for e in exprs for k, v in e.items()}
)


# --- the reference evaluator -------------------------------------------------------------------

def lit(x, labels):
    if isinstance(x, bool):
        return ("b", x)
    if isinstance(x, int):
        return ("i", x)
    if isinstance(x, float):
        return ("f", x)
    if x.startswith("&"):
        if x[1:] not in labels:
            raise Missing(x[1:])
        return labels[x[1:]]
    return ("s", x)


def truthy(tv):
    kind, v = tv
    return v != "" if kind == "s" else v != 0


def num(tv):
    kind, v = tv
    return int(v) if kind == "b" else v


def text(tv):
    kind, v = tv
    if kind == "b":
        return "true" if v else "false"
    if kind == "f":
        r = repr(v)
        return r[:-2] if r.endswith(".0") else r
    return str(v)


def order(x, y):
    if x[0] == "s" or y[0] == "s":
        if x[0] == y[0] == "s":
            return (x[1] > y[1]) - (x[1] < y[1])
        return None
    a, b = num(x), num(y)
    return (a > b) - (a < b)


def arith(op, x, y):
    if x[0] == "s" or y[0] == "s":
        if op == "$add" and x[0] == y[0] == "s":
            return ("s", x[1] + y[1])
        raise TypeErr(op)
    a, b = num(x), num(y)
    r = a + b if op == "$add" else a - b if op == "$sub" else a * b
    if x[0] == "f" or y[0] == "f":
        return ("f", float(r))
    if not -(2**63) <= r < 2**63:
        raise TypeErr("overflow")
    return ("i", r)


def operands(args, labels):
    """Each operand expression lazily: an object contributes one operand per key."""
    for arg in args:
        if isinstance(arg, dict):
            for k, v in arg.items():
                yield lambda k=k, v=v: ev_pair(k, v, labels)
        else:
            yield lambda arg=arg: lit(arg, labels)


def ev_pair(key, value, labels):
    if isinstance(value, dict):  # object syntax
        ((op, right),) = value.items()
        return apply(op, [key, right], labels)
    return apply(key, value, labels)


def apply(op, args, labels):
    ops = list(operands(args, labels))
    if op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        o = order(ops[0](), ops[1]())
        if op == "$eq":
            return ("b", o == 0)
        if op == "$ne":
            return ("b", o != 0)
        if o is None:
            return ("b", False)
        return ("b", {"$gt": o > 0, "$gte": o >= 0, "$lt": o < 0, "$lte": o <= 0}[op])
    if op in ("$add", "$sub", "$mult"):
        return arith(op, ops[0](), ops[1]())
    if op in ("$contains", "$starts_with", "$ends_with"):
        s, p = text(ops[0]()), text(ops[1]())
        return ("b", {"$contains": p in s, "$starts_with": s.startswith(p), "$ends_with": s.endswith(p)}[op])
    if op == "$and":
        return ("b", all(truthy(f()) for f in ops))
    if op == "$or":
        return ("b", any(truthy(f()) for f in ops))
    if op == "$not":
        return ("b", not any(truthy(f()) for f in ops))
    if op == "$xor":
        return ("b", [truthy(f()) for f in ops].count(True) == 1)
    if op in ("$in", "$nin"):
        needle = ops[0]()
        found = any(order(needle, f()) == 0 for f in ops[1:])
        return ("b", found if op == "$in" else not found)
    if op == "$exists":
        return ("b", all(text(f()) in labels for f in ops))
    raise AssertionError(op)


def reference(when, labels):
    """True/False, or the exception class the record's evaluation must fail with."""
    try:
        return all(truthy(ev_pair(k, v, labels)) for k, v in when.items())
    except Missing:
        return NotFoundError
    except TypeErr:
        return InvalidInputError


class Rec:
    def __init__(self, ts_us, labels):
        self.ts_us, self.labels, self.computed = ts_us, labels, {}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(top_levels, records)
def test_evaluate_matches_reference(when, record):
    ts, typed_labels = record
    expected = reference(when, typed_labels)
    rec = Rec(ts, {k: label_text(v) for k, v in typed_labels.items()})

    lenient, _ = compile_when(when)
    assert lenient.evaluate(rec) is (expected is True), (when, rec.labels, expected)

    strict, _ = compile_when(when, strict=True)
    if isinstance(expected, bool):
        assert strict.evaluate(rec) is expected
    else:
        try:
            strict.evaluate(rec)
        except Exception as exc:  # noqa: BLE001 - the type is what is checked
            assert type(exc) is expected, (when, rec.labels, exc)
        else:
            raise AssertionError(f"expected {expected.__name__} for {when} on {rec.labels}")
