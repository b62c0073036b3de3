"""Batch protocol v1 codec (spec §7): literal examples and reduct-py cross-checks."""

from __future__ import annotations

import pytest

from edge.errors import InvalidInputError
from edge.formats import batch_v1 as v1
from edge.formats.batch_v1 import BatchItem

from reduct.batch.batch_v1 import (
    Batch,
    _parse_header_as_csv_row,
    make_headers_v1,
    parse_errors_from_headers_v1,
)


def parse_one(value: str, ts: int = 1) -> BatchItem:
    [item] = v1.parse_record_headers([(f"x-reduct-time-{ts}", value)])
    return item


# --- parsing ---------------------------------------------------------------------------------


def test_parse_sorts_by_ts_and_ignores_other_headers():
    items = v1.parse_record_headers(
        [
            ("content-type", "application/octet-stream"),
            ("x-reduct-time-1002", "3,text/plain"),
            ("X-Reduct-Time-1000", "1,"),
            ("x-reduct-label-a", "b"),
            ("x-reduct-time-1001", "2,image/png,a=b"),
        ]
    )
    assert items == [
        BatchItem(1000, 1, "application/octet-stream", {}),
        BatchItem(1001, 2, "image/png", {"a": "b"}),
        BatchItem(1002, 3, "text/plain", {}),
    ]


def test_integration_style_empty_content_type():
    assert parse_one("1000000,") == BatchItem(1, 1_000_000, "application/octet-stream", {})
    assert parse_one(" 5 ,  ,") == BatchItem(1, 5, "application/octet-stream", {})


@pytest.mark.parametrize(
    "value, labels",
    [
        ("1,ct,a=b", {"a": "b"}),
        ("1,ct, a = b , c=d", {"a": "b", "c": "d"}),
        ('1,ct,x="[a,b]"', {"x": "[a,b]"}),
        ('1,ct,x="[a,b]",y=1', {"x": "[a,b]", "y": "1"}),
        ('1,ct,x=" a,b ",,y=1', {"x": "a,b", "y": "1"}),
        ("1,ct,x=a=b", {"x": "a=b"}),
        ("1,ct,x=", {"x": ""}),
        ("1,ct,x=,y=", {"x": "", "y": ""}),
        ('1,ct,x=a"b', {"x": 'a"b'}),
        ("1,ct,k=a,b", {"k": "a"}),  # reduct-py does not quote values with commas: split like upstream
        ("1,ct,k=a,b,c=d", {"k": "a", "b,c": "d"}),
        ('1,ct,a,b="v"', {"a,b": "v"}),  # reduct-py quotes when the *name* has "," or "="
        ("1,ct,   ", {}),
        ("1,ct,junk", {}),
    ],
)
def test_label_grammar(value, labels):
    assert parse_one(value).labels == labels


def test_patch_style_header():
    item = parse_one("0,,x=z,a=")
    assert item.size == 0 and item.labels == {"x": "z", "a": ""}


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("x-reduct-time-abc", "1,", "Invalid header 'x-reduct-time-abc': must be an unix timestamp in microseconds"),
        ("x-reduct-time-", "1,", "Invalid header 'x-reduct-time-': must be an unix timestamp in microseconds"),
        ("x-reduct-time--1", "1,", "Invalid header 'x-reduct-time--1': must be an unix timestamp in microseconds"),
        ("x-reduct-time-+1", "1,", "Invalid header 'x-reduct-time-+1': must be an unix timestamp in microseconds"),
        (
            "x-reduct-time-18446744073709551616",
            "1,",
            "Invalid header 'x-reduct-time-18446744073709551616': must be an unix timestamp in microseconds",
        ),
        ("x-reduct-time-1", "10", "Invalid batched header"),
        ("x-reduct-time-1", "", "Invalid batched header"),
        ("x-reduct-time-1", "ten,text/plain", "Invalid content length"),
        ("x-reduct-time-1", "-1,text/plain", "Invalid content length"),
        ("x-reduct-time-1", ",text/plain", "Invalid content length"),
        ("x-reduct-time-1", '1,ct,x="unterminated', "Invalid batched header"),
    ],
)
def test_parse_errors(name, value, message):
    with pytest.raises(InvalidInputError) as err:
        v1.parse_record_headers([(name, value)])
    assert err.value.message == message


def test_remove_only_names_matter():
    stamps = v1.parse_record_timestamps(
        [("x-reduct-time-3", ""), ("x-reduct-time-1", "garbage"), ("host", "x")]
    )
    assert stamps == [1, 3]
    with pytest.raises(InvalidInputError):
        v1.parse_record_timestamps([("x-reduct-time-x", "")])


# --- formatting ------------------------------------------------------------------------------


def test_read_integration_expectations():
    # test_read_batched_records
    assert v1.format_record_header(10, "application/octet-stream", {}) == "10,application/octet-stream"
    assert v1.format_record_header(10, "text/plain", {"x": "[a,b]"}) == '10,text/plain,x="[a,b]"'


def test_format_sorts_items_as_strings_with_computed():
    header = v1.format_record_header(1, "ct", {"b": "2", "a-b": "x", "a": "1"}, {"score": "0.5"})
    # "@" (0x40) < "a"; "a-b=" < "a=" because "-" < "="
    assert header == "1,ct,@score=0.5,a-b=x,a=1,b=2"


def test_format_empty_content_type_and_comma_content_type():
    assert v1.format_record_header(1, "", {}) == "1,application/octet-stream"
    assert v1.format_record_header(1, 'multipart/mixed; b="x,y"', {}) == '1,multipart/mixed; b="x'


def test_unrepresentable_labels_are_left_out():
    labels = {
        "ok": 'has"quote',  # fine: no comma, does not start with a quote
        "both": 'a"b,c',  # would need quoting, cannot contain a quote
        "lead": '"abc',  # would be read as a quoted value
        "sp": " pad",  # values are trimmed by every parser
        "a=b": "v",  # name with "=" cannot be parsed back
        ",lead": "v",
    }
    header = v1.format_record_header(1, "ct", labels)
    assert header == '1,ct,ok=has"quote'
    assert parse_one(header).labels == {"ok": 'has"quote'}


def test_error_helpers():
    assert v1.error_header_name(1002) == "x-reduct-error-1002"
    assert v1.time_header_name(5) == "x-reduct-time-5"
    assert v1.format_error(404, "Record 1002 not found in entry b/entry") == "404,Record 1002 not found in entry b/entry"


# --- reduct-py cross-checks ------------------------------------------------------------------


def test_reduct_py_write_headers_parse():
    batch = Batch()
    batch.add(1000, b"abc", content_type="text/plain", labels={"a": "1", "b": "x y"})
    batch.add(999, b"", labels={"weird,name": "v", "k=k": "w"})
    batch.add(1001, b"12")
    _, headers = make_headers_v1(batch)
    items = v1.parse_record_headers((k.lower(), v) for k, v in headers.items())
    assert items == [
        BatchItem(999, 0, "application/octet-stream", {"weird,name": "v", "k": 'k="w"'}),
        BatchItem(1000, 3, "text/plain", {"a": "1", "b": "x y"}),
        BatchItem(1001, 2, "application/octet-stream", {}),
    ]
    # (names with "=" cannot be sent in v1: upstream reads `k=k="w"` the same way)


def test_reduct_py_reads_our_header():
    header = v1.format_record_header(10, "text/plain", {"a": "1", "b": "two"}, {"c": "3"})
    assert _parse_header_as_csv_row(header) == (10, "text/plain", {"@c": "3", "a": "1", "b": "two"})


def test_reduct_py_reads_our_errors():
    errors = parse_errors_from_headers_v1({v1.error_header_name(1002): v1.format_error(409, "A record, dup")})
    assert errors[1002].status_code == 409 and errors[1002].message == "A record, dup"
