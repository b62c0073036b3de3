"""Batch protocol v2 codec (spec §8): literal examples and reduct-py cross-checks."""

from __future__ import annotations

import pytest

from edge.errors import InvalidInputError
from edge.formats import batch_v2 as v2
from edge.formats.batch_v1 import format_error
from edge.formats.batch_v2 import ReadRecord

from reduct.batch.batch_v2 import (
    RecordBatch,
    _decode_entry_name,
    _encode_entry_name,
    _parse_batched_headers,
    make_headers_v2,
    parse_errors_from_headers_v2,
)


def req(entries="a", start="1000", labels=None, **records):
    headers = [("x-reduct-entries", entries), ("x-reduct-start-ts", start)]
    if labels is not None:
        headers.append(("x-reduct-labels", labels))
    headers += [(f"x-reduct-{k.replace('_', '-')}", v) for k, v in records.items()]
    return headers


def err(headers, parser=v2.parse_write_headers) -> str:
    with pytest.raises(InvalidInputError) as e:
        parser(headers)
    return e.value.message


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, encoded",
    [
        ("a/x/y/$meta", "a%2Fx%2Fy%2F$meta"),
        ("$meta", "$meta"),
        ("x-1", "x-1"),
        ("a b,c@d", "a%20b%2Cc%40d"),
        ("π", "%CF%80"),
        ("100%", "100%25"),  # deviation: "%" is escaped so it survives (entries never contain it)
        ("!#$&'*+-.^_`|~", "!#$&'*+-.^_`|~"),
    ],
)
def test_entry_name_encoding(name, encoded):
    assert v2.encode_entry_name(name) == encoded
    assert v2.decode_entry_name(encoded) == name


def test_entry_name_decoding_is_lenient_and_matches_reduct_py():
    assert v2.decode_entry_name("a/b") == "a/b"  # raw "/" accepted
    assert v2.decode_entry_name("a%2fb") == "a/b"
    for name in ["a/x/y/$meta", "sensor-1/temp", "a b,c@d", "π/ü"]:
        assert v2.encode_entry_name(name) == _encode_entry_name(name)
        assert _decode_entry_name(v2.encode_entry_name(name)) == name


@pytest.mark.parametrize(
    "encoded, message",
    [
        ("a%2", "Invalid entry encoding in header name: 'a%2'"),
        ("a%", "Invalid entry encoding in header name: 'a%'"),
        ("a%zz", "Invalid entry encoding in header name: 'a%zz'"),
        ("a%+F", "Invalid entry encoding in header name: 'a%+F'"),
        ("a%FF", "Entry name is not valid UTF-8 in header 'a%FF'"),
        ("%C3", "Entry name is not valid UTF-8 in header '%C3'"),
    ],
)
def test_entry_name_decoding_errors(encoded, message):
    with pytest.raises(InvalidInputError) as e:
        v2.decode_entry_name(encoded)
    assert e.value.message == message


# --- write / update / remove requests --------------------------------------------------------


def test_write_body_order_entry_then_time():
    # test_write_batched_orders_by_entry_then_time: x-reduct-0-10 (2 bytes) before x-reduct-1-0 (3 bytes)
    batch = v2.parse_write_headers(
        req("a,b", "1000", **{"1_0": "3,text/plain", "0_10": "2", "0_5": "1,text/plain"})
    )
    assert [(r.entry, r.ts_us, r.size) for r in batch.records] == [("a", 1005, 1), ("a", 1010, 2), ("b", 1000, 3)]
    assert batch.total_size == 6
    assert batch.records[0].content_type == "text/plain"  # bare size inherits from the previous record
    assert batch.echo_headers() == [("x-reduct-entries", "a,b"), ("x-reduct-start-ts", "1000")]


def test_record_value_forms():
    batch = v2.parse_write_headers(
        req(
            "e",
            "0",
            **{
                "0_0": "1,,a=1,b=2",
                "0_1": "2",
                "0_2": "3,text/plain",
                "0_3": "4,,b=,c=\"x,y\"",
                "0_4": "5,image/png,a=9",
            },
        )
    )
    got = [(r.size, r.content_type, r.labels) for r in batch.records]
    assert got == [
        (1, "application/octet-stream", {"a": "1", "b": "2"}),
        (2, "application/octet-stream", {"a": "1", "b": "2"}),
        (3, "text/plain", {"a": "1", "b": "2"}),
        (4, "text/plain", {"a": "1", "c": "x,y"}),
        (5, "image/png", {"a": "9", "c": "x,y"}),
    ]


def test_update_example_from_spec():
    # §8.3: labels a,b; x-reduct-0-0: 0,,0=one,1=,c=3; x-reduct-1-10: 0,,a=two (a name, not an index)
    batch = v2.parse_update_headers(req("e0,e1", "1000", "a,b", **{"0_0": "0,,0=one,1=,c=3", "1_10": "0,,a=two"}))
    first, second = batch.records
    assert (first.entry, first.ts_us, first.delta) == ("e0", 1000, {"a": "one", "b": "", "c": "3"})
    assert first.labels == {"a": "one", "c": "3"}
    assert (second.entry, second.ts_us, second.delta) == ("e1", 1010, {"a": "two"})


def test_update_accumulates_per_entry():
    batch = v2.parse_update_headers(
        req("e,f", "0", "x", **{"0_0": "0,,0=1", "0_1": "0,,y=2", "0_2": "0", "1_0": "0,,0="})
    )
    assert [r.delta for r in batch.records] == [{"x": "1"}, {"x": "1", "y": "2"}, {"x": "1", "y": "2"}, {"x": ""}]


def test_update_of_reduct_py_second_record_removals():
    # reduct-py update_record_batch: second record of an entry whose client delta is 0=,1=,2=
    batch = RecordBatch()
    batch.add("entry-1", 1, labels={"a": "1", "b": "2", "c": "3"})
    batch.add("entry-1", 2, labels={})
    _, headers = make_headers_v2(batch)
    parsed = v2.parse_update_headers((k.lower(), v) for k, v in headers.items())
    assert parsed.records[1].delta == {"a": "", "b": "", "c": ""}
    assert parsed.records[1].labels == {}


def test_remove_ignores_values():
    batch = v2.parse_remove_headers(req("a,b", "100", **{"1_2": "", "0_0": "junk"}))
    assert [(r.entry, r.ts_us, r.ts_offset) for r in batch.records] == [("a", 100, 0), ("b", 102, 2)]
    assert v2.error_header_name(1, 2) == "x-reduct-error-1-2"


def test_empty_batch_is_a_noop():
    batch = v2.parse_write_headers([("x-reduct-entries", ""), ("x-reduct-start-ts", "0"), ("content-length", "0")])
    assert batch.entries == [] and batch.records == [] and batch.start_ts == 0
    assert batch.echo_headers() == [("x-reduct-entries", ""), ("x-reduct-start-ts", "0")]
    assert v2.parse_remove_headers([("x-reduct-entries", ""), ("x-reduct-start-ts", "0")]).records == []


def test_entries_are_percent_decoded_and_re_encoded():
    batch = v2.parse_write_headers(req("a%2Fx%2Fy%2F$meta, b/c", "5", **{"0_0": "1,", "1_0": "1,"}))
    assert batch.entries == ["a/x/y/$meta", "b/c"]
    assert batch.echo_headers()[0] == ("x-reduct-entries", "a%2Fx%2Fy%2F$meta,b%2Fc")


@pytest.mark.parametrize(
    "headers, message",
    [
        ([("x-reduct-entries", "a")], "x-reduct-start-ts header is required"),
        ([("x-reduct-entries", "a"), ("x-reduct-start-ts", " ")], "x-reduct-start-ts header is required"),
        ([("x-reduct-entries", "a"), ("x-reduct-start-ts", "x")], "Invalid x-reduct-start-ts header"),
        ([("x-reduct-entries", "a"), ("x-reduct-start-ts", "-1")], "Invalid x-reduct-start-ts header"),
        ([("x-reduct-start-ts", "1")], "x-reduct-entries header is required"),
        (req("", **{"0_0": "1,"}), "x-reduct-entries header is required"),
        (req("a,,b"), "x-reduct-entries header must not contain empty entry names"),
        (req("a,"), "x-reduct-entries header must not contain empty entry names"),
        (req("a%zz"), "Invalid entry encoding in header name: 'a%zz'"),
        (req(**{"time_1000": "1,"}), "Invalid header 'x-reduct-time-1000': entry index must be a number"),
        (req(**{"1_0": "1,"}), "Invalid header 'x-reduct-1-0': entry index out of range"),
        (req(**{"0_0": "1"}), "Content-type and labels must be provided for the first record of an entry"),
        (req(**{"0_0": "x,"}), "Invalid content length"),
        (req(labels="a", **{"0_0": "1,,1=x"}), "Label index '1' is out of range"),
        (req(**{"0_0": "1,,@x=1"}), "Label names must not start with '@': reserved for computed labels"),
        (req(labels="%40x", **{"0_0": "1,,0=1"}), "Label names must not start with '@': reserved for computed labels"),
        (req(**{"0_0": "1,,abc"}), "Invalid batched header"),
        (req(**{"0_0": "1,,a=1,b"}), "Invalid batched header"),
        (req(**{"0_0": '1,,a="open'}), "Invalid batched header"),
        (
            req(start="18446744073709551615", **{"0_1": "1,"}),
            "Invalid header 'x-reduct-0-1': must be an unix timestamp in microseconds",
        ),
    ],
)
def test_request_errors(headers, message):
    assert err(headers) == message


def test_digit_key_without_labels_header_is_a_name():
    batch = v2.parse_write_headers(req(**{"0_0": "1,,0=zero"}))
    assert batch.records[0].labels == {"0": "zero"}


def test_reduct_py_write_headers_roundtrip():
    batch = RecordBatch()
    batch.add("b/$meta", 1010, b"xx", content_type="application/json", labels={"key": "k,1"})
    batch.add("a", 1000, b"abc", content_type="text/plain", labels={"x": "1", "y": "q q"})
    batch.add("a", 1001, b"", content_type="text/plain", labels={"x": "1"})
    batch.add("a", 1003, b"z", labels={"x": "2", "z": "3"})
    length, headers = make_headers_v2(batch)
    parsed = v2.parse_write_headers((k.lower(), v) for k, v in headers.items())
    assert parsed.total_size == length == 6
    got = [(r.entry, r.ts_us, r.size, r.content_type, r.labels) for r in parsed.records]
    assert got == [
        ("a", 1000, 3, "text/plain", {"x": "1", "y": "q q"}),
        ("a", 1001, 0, "text/plain", {"x": "1"}),
        ("a", 1003, 1, "application/octet-stream", {"x": "2", "z": "3"}),
        ("b/$meta", 1010, 2, "application/json", {"key": "k,1"}),
    ]


def test_reduct_py_parses_our_echo_and_errors():
    batch = v2.parse_write_headers(req("a/$meta,b", "1000", **{"0_0": "1,", "1_5": "1,"}))
    headers = dict(batch.echo_headers())
    headers[v2.error_header_name(1, 5)] = format_error(409, "A record with timestamp 1005 already exists")
    errors = parse_errors_from_headers_v2(headers)
    assert errors["b"][1005].status_code == 409
    assert errors["b"][1005].message == "A record with timestamp 1005 already exists"
    assert v2.parse_error_headers(headers.items()) == [("b", 1005, 409, "A record with timestamp 1005 already exists")]


# --- read responses --------------------------------------------------------------------------


def test_read_integration_example():
    # writing x-0@1010 "AA", x-1@1000 "BBB" then reading: entries x-1,x-0, start 1000, body BBBAA
    headers = v2.encode_read_batch(
        [("x-1", 1000, 3, "text/plain", {}, {}), ("x-0", 1010, 2, "text/plain", {}, {})]
    )
    assert headers == [
        ("x-reduct-entries", "x-1,x-0"),
        ("x-reduct-start-ts", "1000"),
        ("x-reduct-0-0", "3,text/plain"),
        ("x-reduct-1-10", "2,text/plain"),
    ]


def test_read_delta_encoding():
    records = [
        ReadRecord("a", 10, 1, "text/plain", {"x": "1", "y": "a,b"}, {}),
        ReadRecord("a", 11, 2, "text/plain", {"x": "1", "y": "a,b"}, {}),
        ReadRecord("a", 12, 3, "text/csv", {"x": "2"}, {}),
        ReadRecord("a", 13, 4, "text/csv", {"x": "2"}, {"score": "7"}),
        ReadRecord("a", 14, 5, "text/csv", {"x": "2"}, {"score": "7"}),
        ReadRecord("a", 15, 6, "text/csv", {"x": "2"}, {}),
        ReadRecord("b/$meta", 15, 7, "application/json", {"key": "k"}, {}),
    ]
    headers = v2.encode_read_batch(records)
    assert headers == [
        ("x-reduct-entries", "a,b%2F$meta"),
        ("x-reduct-start-ts", "10"),
        ("x-reduct-labels", "x,y,%40score,key"),
        ("x-reduct-0-0", '1,text/plain,0=1,1="a,b"'),
        ("x-reduct-0-1", "2"),
        ("x-reduct-0-2", "3,text/csv,0=2,1="),
        ("x-reduct-0-3", "4,,2=7"),
        ("x-reduct-0-4", "5,,2=7"),  # computed labels always in full
        ("x-reduct-0-5", "6,,2="),
        ("x-reduct-1-5", "7,application/json,3=k"),
    ]
    assert v2.parse_read_batch(headers) == records


def test_read_empty_batch():
    headers = v2.encode_read_batch([])
    assert headers == [("x-reduct-entries", ""), ("x-reduct-start-ts", "0")]
    assert v2.parse_read_batch(headers) == []
    assert _parse_batched_headers(dict(headers)) == []


def test_read_unrepresentable_labels_left_out():
    record = ("a", 1, 1, "ct", {"ok": 'q"q', "bad": 'x"y,z', "empty": "", "sp": " x"}, {})
    headers = v2.encode_read_batch([record])
    assert v2.parse_read_batch(headers)[0].labels == {"ok": 'q"q'}


def test_ordering_rule():
    # §8.6: a record whose entry appeared but is not the previous one must start a new batch
    pending = [("a", 1), ("b", 2)]
    assert v2.can_append(pending, "b") and v2.can_append(pending, "c")
    assert not v2.can_append(pending, "a")
    assert v2.can_append([], "a")
    enc = v2.ReadBatchEncoder()
    enc.add("a", 1, 0, "ct", {})
    enc.add("b", 2, 0, "ct", {})
    assert not enc.can_append("a", 3) and enc.can_append("c", 3) and enc.can_append("b", 3)
    assert not enc.can_append("b", 1)  # time order
    assert not enc.can_append("b", 2)  # duplicate ts in one entry
    with pytest.raises(ValueError):
        enc.add("a", 3, 0, "ct", {})
    assert len(enc) == 2 and enc.entries == ["a", "b"] and enc.start_ts == 1


def test_add_returns_metadata_size():
    enc = v2.ReadBatchEncoder()
    n = enc.add("a", 1000, 10, "text/plain", {"k": "v"})
    name, value = enc.headers()[-1]
    assert n == len(name) + len(value) + 2 == len("x-reduct-0-0") + len("10,text/plain,0=v") + 2


def test_reduct_py_parses_our_read_batch():
    records = [
        ReadRecord("x-1", 1000, 3, "text/plain", {"a": "1,2"}, {"c": "x"}),
        ReadRecord("x-1", 1000 + 7, 4, "text/plain", {}, {"c": "y"}),
        ReadRecord("a/x/y/$meta", 1010, 2, "application/json", {"key": "k"}, {}),
        ReadRecord("z-entry", 1010, 1, "text/plain", {"a": "1,2"}, {}),
    ]
    headers = dict(v2.encode_read_batch(records))
    theirs = _parse_batched_headers(headers)
    assert [
        (h.entry, h.timestamp, h.header.content_length, h.header.content_type, h.header.labels) for h in theirs
    ] == [
        (r.entry, r.ts_us, r.size, r.content_type, {**r.labels, **{"@" + k: v for k, v in r.computed.items()}})
        for r in records
    ]


def test_client_decoder_errors():
    assert err([("x-reduct-entries", "a")], v2.parse_read_batch) == "x-reduct-start-ts header is required"
    headers = [("x-reduct-entries", "a"), ("x-reduct-start-ts", "0"), ("x-reduct-0-0", "1")]
    assert err(headers, v2.parse_read_batch) == "Content-type and labels must be provided for the first record of an entry"
    # non-record x-reduct-* headers and error headers are skipped by the client, like reduct-py
    headers = [("x-reduct-entries", "a"), ("x-reduct-start-ts", "0"), ("x-reduct-last", "true"),
               ("x-reduct-error-0-1", "404,x"), ("x-reduct-time-5", "1,")]
    assert v2.parse_read_batch(headers) == []
