"""Property tests for the batch header codecs: round trips, reduct-py agreement, and fuzzing
(arbitrary header text raises only InvalidInputError)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import InvalidInputError
from edge.formats import batch_v1 as v1
from edge.formats import batch_v2 as v2
from edge.formats.labels import clean_content_type, split_label_items, v1_name_ok, value_ok

from reduct.batch.batch_v2 import RecordBatch, _parse_batched_headers, make_headers_v2

# Characters that matter to the grammars, plus some unicode and whitespace.
TRICKY = ',="%@$/ \t-_.xyzAB01π☃ü'
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=12) | st.text(max_size=12)

sizes = st.integers(min_value=0, max_value=(1 << 64) - 1)
content_types = st.sampled_from(["application/octet-stream", "text/plain", "image/png; q=1", ""]) | tricky_text
names = tricky_text
values = tricky_text
label_maps = st.dictionaries(names, values, max_size=5)


def ok_v1(labels):
    return {k: v for k, v in labels.items() if v1_name_ok(k) and value_ok(v, allow_empty=True)}


def ok_v2(labels):
    return {k: v for k, v in labels.items() if k and value_ok(v, allow_empty=False)}


# --- v1 --------------------------------------------------------------------------------------


@given(sizes, content_types, label_maps.map(lambda m: {k: v for k, v in m.items() if not k.startswith("@")}),
       label_maps)
def test_v1_roundtrip(size, content_type, labels, computed):
    header = v1.format_record_header(size, content_type, labels, computed)
    [item] = v1.parse_record_headers([("x-reduct-time-7", header)])
    expected = ok_v1(labels)
    expected.update({"@" + k: v for k, v in ok_v1(computed).items()})
    assert item == v1.BatchItem(7, size, clean_content_type(content_type), expected)


@given(st.dictionaries(names.filter(v1_name_ok), values.filter(lambda v: value_ok(v, allow_empty=True)), max_size=5))
def test_v1_representable_labels_survive_exactly(labels):
    header = v1.format_record_header(1, "ct", labels)
    assert v1.parse_record_headers([("x-reduct-time-1", header)])[0].labels == labels


# --- v2 --------------------------------------------------------------------------------------

entry_names = st.sampled_from(["a", "b", "x-0", "x-1", "a/b", "a/x/y/$meta", "$meta", "s_1/t-2"]) | st.text(
    min_size=1, max_size=8
)


@st.composite
def read_batches(draw, with_computed=True):
    """Records in body order: ts non-decreasing, each entry one contiguous run."""
    runs = draw(st.lists(entry_names, unique=True, max_size=4))
    ts = draw(st.integers(min_value=0, max_value=1 << 40))
    records = []
    for entry in runs:
        for i in range(draw(st.integers(min_value=1, max_value=4))):
            ts += draw(st.integers(min_value=1 if i else 0, max_value=1000))
            computed = draw(label_maps) if with_computed else {}
            records.append(
                v2.ReadRecord(entry, ts, draw(st.integers(0, 1 << 40)), draw(content_types), draw(label_maps), computed)
            )
    return records


def normalised(record):
    labels = ok_v2(record.labels)
    computed = {k: v for k, v in record.computed.items() if value_ok(v, allow_empty=False)}
    # a stored label literally named "@x" collides with computed "x" on the client: computed wins
    plain = {k: v for k, v in labels.items() if not k.startswith("@")}
    shadow = {k[1:]: v for k, v in labels.items() if k.startswith("@")}
    return v2.ReadRecord(record.entry, record.ts_us, record.size, clean_content_type(record.content_type),
                         plain, {**shadow, **computed})


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(read_batches())
def test_v2_read_roundtrip_and_reduct_py_agrees(records):
    headers = v2.encode_read_batch(records)
    ours = v2.parse_read_batch(headers)
    assert ours == [normalised(r) for r in records]
    theirs = _parse_batched_headers(dict(headers))
    assert [(h.entry, h.timestamp, h.header.content_length, h.header.content_type, h.header.labels) for h in theirs] == [
        (r.entry, r.ts_us, r.size, r.content_type, {**r.labels, **{"@" + k: v for k, v in r.computed.items()}})
        for r in ours
    ]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(read_batches(with_computed=False))
def test_v2_read_headers_are_valid_write_headers_in_body_order(records):
    records = [r._replace(labels={k: v for k, v in r.labels.items() if not k.startswith("@")}) for r in records]
    batch = v2.parse_write_headers(v2.encode_read_batch(records))
    assert [(r.entry, r.ts_us, r.size, r.content_type, r.labels) for r in batch.records] == [
        (n.entry, n.ts_us, n.size, n.content_type, n.labels) for n in map(normalised, records)
    ]


@st.composite
def client_batches(draw):
    """What reduct-py can send faithfully: values it quotes correctly, names without '%'."""
    entries = draw(st.lists(entry_names.filter(lambda e: "%" not in e), min_size=1, max_size=3, unique=True))
    items = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(entries), st.integers(0, 1 << 50)),
            st.tuples(
                st.binary(max_size=3),
                content_types.filter(lambda c: c == clean_content_type(c)),
                st.dictionaries(
                    names.filter(lambda n: n and "%" not in n and not n.startswith("@") and n == n.strip()),
                    values.filter(lambda v: value_ok(v, allow_empty=False)),
                    max_size=4,
                ),
            ),
            max_size=8,
        )
    )
    return items


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(client_batches())
def test_v2_parses_reduct_py_write_headers(items):
    batch = RecordBatch()
    for (entry, ts), (data, content_type, labels) in items.items():
        batch.add(entry, ts, data, content_type=content_type, labels=labels)
    length, headers = make_headers_v2(batch)
    parsed = v2.parse_write_headers((k.lower(), v) for k, v in headers.items())
    assert parsed.total_size == length
    got = sorted((r.entry, r.ts_us, r.size, r.content_type, r.labels) for r in parsed.records)
    want = sorted((e, ts, len(d), ct, lb) for (e, ts), (d, ct, lb) in items.items())
    assert got == want


@given(st.text())
def test_entry_name_roundtrip(name):
    encoded = v2.encode_entry_name(name)
    assert encoded.isascii() and "," not in encoded and "/" not in encoded
    assert v2.decode_entry_name(encoded) == name


# --- fuzz: only InvalidInputError ------------------------------------------------------------

header_names = st.one_of(
    st.sampled_from(["x-reduct-entries", "x-reduct-start-ts", "x-reduct-labels", "x-reduct-last", "content-length"]),
    st.builds(lambda a, b: f"x-reduct-{a}-{b}", st.sampled_from(["0", "1", "01", "error-0", "time", "", "x"]) | tricky_text,
              st.sampled_from(["0", "5", "", "99999999999999999999999"]) | st.text(alphabet="0123456789-", max_size=6)),
    st.builds(lambda s: f"x-reduct-time-{s}", st.text(alphabet="0123456789-+ x", max_size=6) | st.text(max_size=4)),
    st.builds(lambda a, b: f"x-reduct-error-{a}-{b}", st.sampled_from(["0", "1", "x"]), st.sampled_from(["0", "3", "y"])),
    st.text(max_size=20),
)
header_values = st.one_of(
    st.text(alphabet=st.sampled_from(TRICKY + '0123456789%,,,==""'), max_size=30),
    st.builds(lambda a, b: f"{a},{b}", st.sampled_from(["0", "1", "10", "x", ""]), tricky_text),
    st.text(max_size=30),
)
valid_base = st.tuples(
    st.sampled_from(["a", "a,b", "a%2Fb,$meta", ""]).map(lambda e: ("x-reduct-entries", e)),
    st.sampled_from(["0", "1000", "18446744073709551615"]).map(lambda t: ("x-reduct-start-ts", t)),
    st.sampled_from(["x", "x,%40y", "%zz", ""]).map(lambda n: ("x-reduct-labels", n)),
).map(list)
record_headers = st.tuples(
    st.builds(lambda i, d: f"x-reduct-{i}-{d}", st.sampled_from(["0", "1", "2"]), st.sampled_from(["0", "1", "2", "5"])),
    header_values | st.builds(lambda s, c, l: f"{s},{c},{l}", st.sampled_from(["0", "3", ""]),
                              st.sampled_from(["", "text/plain"]), tricky_text),
)
header_lists = st.lists(st.tuples(header_names, header_values), max_size=8) | st.builds(
    lambda base, extra: base + extra, valid_base, st.lists(record_headers | st.tuples(header_names, header_values), max_size=6)
)

PARSERS = [
    v1.parse_record_headers,
    v1.parse_record_timestamps,
    v2.parse_write_headers,
    v2.parse_remove_headers,
    v2.parse_read_batch,
    v2.parse_error_headers,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: f"{p.__module__.rsplit('.', 1)[-1]}.{p.__name__}")
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(headers=header_lists)
def test_parsers_raise_only_invalid_input(parser, headers):
    try:
        parser(headers)
    except InvalidInputError:
        pass


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(TRICKY + '"%,=0123456789abcdefABCDEF'), max_size=20) | st.text())
def test_name_and_label_parsers_raise_only_invalid_input(text):
    for fn in (v2.decode_entry_name, lambda t: split_label_items(t, require_eq=True),
               lambda t: split_label_items(t, require_eq=False)):
        try:
            fn(text)
        except InvalidInputError:
            pass
