"""Calendar operators of `when` (spec §10.3, 1.19+): fields in UTC or an IANA zone."""

import pytest

from edge.errors import InvalidInputError
from edge.query.when import compile_when

TS = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z, a Tuesday
SUMMER = 1_688_169_600_000_000  # 2023-07-01T00:00:00Z, a Saturday


class Rec:
    def __init__(self, ts_us=0, labels=None):
        self.ts_us, self.labels, self.computed = ts_us, labels or {}, {}


def field(op, ts, *zone):
    cond, _ = compile_when({"$eq": [{op: ["$timestamp", *zone]}, 0]})
    return cond._expressions[0].operands[0].eval(Rec(ts))


@pytest.mark.parametrize(
    "op, expected", [("$second", 20), ("$minute", 13), ("$hour", 22), ("$day", 14), ("$month", 11),
                     ("$year", 2023), ("$weekday", 1)],
)
def test_fields_in_utc(op, expected):
    assert field(op, TS) == expected
    assert field(op, TS, "UTC") == expected


def test_zones_follow_daylight_saving():
    assert field("$hour", TS, "Europe/Berlin") == 23  # CET, UTC+1
    assert field("$hour", SUMMER, "Europe/Berlin") == 2  # CEST, UTC+2
    assert field("$weekday", SUMMER, "America/New_York") == 4  # still Friday 20:00
    assert field("$day", SUMMER, "America/New_York") == 30


def test_spec_example_hour_in_berlin():
    cond, _ = compile_when({"$gte": [{"$hour": ["$timestamp", "Europe/Berlin"]}, 8]})
    assert cond.evaluate(Rec(TS)) and not cond.evaluate(Rec(SUMMER))


def test_operand_from_a_label_and_unary_form():
    cond, _ = compile_when({"&t": {"$year": "UTC"}})  # object syntax: $year(&t, "UTC")
    assert cond.evaluate(Rec(0, {"t": str(TS)}))  # 2023 is truthy
    cond, _ = compile_when({"$eq": [{"$year": 0}, 1970]})
    assert cond.evaluate(Rec())


def test_bad_timezone():
    cond, _ = compile_when({"$hour": ["$timestamp", "Mars/Olympus"]}, strict=True)
    with pytest.raises(InvalidInputError, match=r"^Invalid timezone: 'Mars/Olympus'$"):
        cond.evaluate(Rec(TS))
    for bad in ["", "../../etc/passwd", "/etc/localtime", "a\x00b", "Europe"]:
        cond, _ = compile_when({"$hour": ["$timestamp", bad]}, strict=True)
        with pytest.raises(InvalidInputError, match="Invalid timezone"):
            cond.evaluate(Rec(TS))
    cond, _ = compile_when({"$hour": ["$timestamp", "Mars/Olympus"]})
    assert not cond.evaluate(Rec(TS))


def test_timestamp_out_of_range_is_an_evaluation_error():
    cond, _ = compile_when({"$year": 2**62}, strict=True)
    with pytest.raises(InvalidInputError, match="out of range"):
        cond.evaluate(Rec())
