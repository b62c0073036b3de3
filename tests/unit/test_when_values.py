"""Value model of the `when` language (spec §10.1): label typing, durations, to-string, ordering."""

import math

import pytest

from edge.errors import InvalidInputError
from edge.query.when.values import (
    Duration, compare, equals, format_duration, format_float, parse_duration, parse_label,
    to_bool, to_duration, to_float, to_int, to_string,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True), ("false", False), ("True", "True"), ("TRUE", "TRUE"),
        ("10", 10), ("-5", -5), ("+7", 7), ("9223372036854775807", 2**63 - 1),
        ("1.5", 1.5), ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("-2.5E-1", -0.25),
        ("1_000", "1_000"), (" 1", " 1"), ("1 ", "1 "), ("0x10", "0x10"), ("", ""),
        ("abc", "abc"), ("5s", "5s"), ("1h", "1h"),
    ],
)
def test_parse_label_follows_rust_grammar(text, expected):
    value = parse_label(text)
    assert value == expected and type(value) is type(expected)


def test_parse_label_large_int_becomes_float_and_special_floats():
    assert parse_label("9223372036854775808") == 9223372036854775808.0
    assert parse_label("inf") == math.inf and parse_label("-Infinity") == -math.inf
    assert math.isnan(parse_label("NaN"))
    assert parse_label("1_0.5") == "1_0.5"


@pytest.mark.parametrize(
    "text, us",
    [
        ("1s", 1_000_000), ("10ms", 10_000), ("3us", 3), ("2m", 120_000_000), ("1h", 3_600_000_000),
        ("1d", 86_400_000_000), ("1h -30m", 1_800_000_000), ("s5", 5_000_000), ("-1s", -1_000_000),
        ("1h  30m", 5_400_000_000),
    ],
)
def test_duration_literals(text, us):
    assert parse_duration(text) == Duration(us)


@pytest.mark.parametrize("text", ["1.5s", "5", "", "   ", "1x", "1d2h", "abc", "s", "+5s", "1 h"])
def test_not_duration_literals(text):
    assert parse_duration(text) is None


def test_duration_to_string():
    us = ((((1 * 24 + 2) * 60 + 3) * 60 + 4) * 1000 + 5) * 1000 + 6
    assert format_duration(us) == "1d 2h 3m 4s 5ms 6us"
    assert format_duration(0) == "0us"
    assert format_duration(3_600_000_000) == "1h"
    assert format_duration(-90_000_000) == "-1m -30s"
    assert parse_duration(format_duration(-90_000_000)) == Duration(-90_000_000)


@pytest.mark.parametrize(
    "number, text",
    [(1.0, "1"), (0.1, "0.1"), (-0.0, "-0"), (1e20, "100000000000000000000"), (1e-7, "0.0000001"),
     (2.5, "2.5"), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "NaN"), (123.456, "123.456")],
)
def test_float_to_string_is_rust_display(number, text):
    assert format_float(number) == text


def test_to_string_of_every_type():
    assert to_string(True) == "true" and to_string(False) == "false"
    assert to_string(42) == "42" and to_string("x") == "x" and to_string(Duration(1000)) == "1ms"


def test_to_bool():
    assert to_bool(True) and not to_bool(False)
    assert to_bool(2) and not to_bool(0)
    assert to_bool(0.5) and not to_bool(0.0) and to_bool(math.nan)
    assert to_bool("a") and not to_bool("") and to_bool("false")
    assert to_bool(Duration(1)) and not to_bool(Duration(0))


def test_to_int_and_float():
    assert to_int(True) == 1 and to_int(-2.9) == -2 and to_int(Duration(5)) == 5 and to_int("12") == 12
    assert to_int(math.nan) == 0 and to_int(math.inf) == 2**63 - 1
    with pytest.raises(InvalidInputError, match="Value '1.5' could not be parsed as integer"):
        to_int("1.5")
    assert to_float("1.5") == 1.5 and to_float(3) == 3.0 and to_float(Duration(2)) == 2.0
    with pytest.raises(InvalidInputError, match="Value 'x' could not be parsed as float"):
        to_float("x")
    assert to_duration("1s") == Duration(1_000_000) and to_duration(5) == Duration(5)
    with pytest.raises(InvalidInputError, match="could not be parsed as duration"):
        to_duration("soon")


def test_comparison_rules():
    assert equals(1, 1.0) and equals(True, 1) and equals(Duration(1_000_000), 1_000_000)
    assert compare(2, 1.5) == 1 and compare("a", "b") == -1 and compare("b", "a") == 1
    assert compare("1", 1) is None and not equals("1", 1)
    assert compare(math.nan, 1.0) is None
    assert compare("é", "z") == 1  # code point order == UTF-8 byte order
