"""The five value types of the `when` language and every conversion between them (spec §10.1).

Owns: the Python representation of values (bool, int, float, str and ``Duration``), the parsing of
label strings and duration literals with Rust's grammars, the conversions to bool/int/float/string,
and the comparison rules shared by ``$eq``... and ``$in``/``$nin``.
Must not: know about operators, JSON syntax, records or I/O. Pure, stdlib only (+ edge.errors).

Representation: Bool -> ``bool``, Int -> ``int`` (kept inside i64), Float -> ``float``,
String -> ``str``, Duration -> ``Duration`` (µs). ``bool`` is a subclass of ``int`` in Python, so
every type test below checks ``bool`` first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

from edge.errors import InvalidInputError

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time in microseconds; a value type of its own (never produced from a label)."""

    us: int

    def __str__(self) -> str:
        return format_duration(self.us)


Value = Union[bool, int, float, str, Duration]

# Rust's `i64::from_str`: optional sign, ASCII digits only. Python's int() also takes "_" and
# surrounding whitespace, which Rust rejects, so the grammar is checked first.
_RUST_INT = re.compile(r"[+-]?[0-9]+\Z")
# Rust's `f64::from_str`: decimal with optional exponent, or inf/infinity/nan in any case.
_RUST_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z", re.IGNORECASE
)

_UNIT_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
# Largest unit first: this is the order of the parts in the string form of a Duration.
_FORMAT_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000), ("us", 1))


def type_name(value: Value) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, Duration):
        return "Duration"
    return "String"


def parse_rust_int(text: str) -> int | None:
    """The i64 that Rust would parse from ``text``, or None."""
    if not _RUST_INT.match(text):
        return None
    number = int(text)
    return number if I64_MIN <= number <= I64_MAX else None


def parse_rust_float(text: str) -> float | None:
    """The f64 that Rust would parse from ``text``, or None (Python float() is more lenient)."""
    if not _RUST_FLOAT.match(text):
        return None
    return float(text)


def parse_label(text: str) -> Value:
    """A label value as the language sees it: Bool, Int, Float or String (never Duration)."""
    if text == "true":
        return True
    if text == "false":
        return False
    number = parse_rust_int(text)
    if number is not None:
        return number
    real = parse_rust_float(text)
    if real is not None:
        return real
    return text


def parse_duration(text: str) -> Duration | None:
    """A duration literal (``"1h -30m"``) or None when ``text`` is not one.

    Upstream splits every whitespace-separated part into the characters ``[0-9.-]`` (the number)
    and the rest (the unit), wherever they are; we do the same so ``"s5"`` is 5 s there and here.
    """
    parts = text.split()
    if not parts:
        return None
    total = 0
    for part in parts:
        digits = "".join(ch for ch in part if ch in "0123456789.-")
        unit = "".join(ch for ch in part if ch not in "0123456789.-")
        number = parse_rust_int(digits)  # "1.5" fails here: decimals are not durations
        if number is None or unit not in _UNIT_US:
            return None
        total += number * _UNIT_US[unit]
    if not I64_MIN <= total <= I64_MAX:
        return None
    return Duration(total)


def format_duration(us: int) -> str:
    """``1d 2h 3m 4s 5ms 6us`` with non-zero parts only; ``0us`` for zero; negative parts signed."""
    if us == 0:
        return "0us"
    sign = "-" if us < 0 else ""
    rest = abs(us)
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{sign}{count}{unit}")
    return " ".join(parts)


def format_float(number: float) -> str:
    """Rust's ``Display`` for f64: shortest round-trip digits, never an exponent, ``1.0`` -> ``1``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = format(Decimal(repr(number)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_string(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Duration):
        return format_duration(value.us)
    return value


def to_bool(value: Value) -> bool:
    if isinstance(value, Duration):
        return value.us != 0
    if isinstance(value, str):
        return value != ""
    return bool(value)  # bool, int, float: NaN is truthy, as in Rust's `!= 0.0`


def saturate(number: float) -> int:
    """Rust's ``f64 as i64``: truncate, NaN -> 0, out of range -> the nearest bound."""
    if math.isnan(number):
        return 0
    if number >= 2.0**63:
        return I64_MAX
    if number < -(2.0**63):
        return I64_MIN
    return int(number)


def to_int(value: Value) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return saturate(value)
    if isinstance(value, Duration):
        return value.us
    number = parse_rust_int(value)
    if number is None:
        raise InvalidInputError(f"Value '{value}' could not be parsed as integer")
    return number


def to_float(value: Value) -> float:
    if isinstance(value, Duration):
        return float(value.us)
    if isinstance(value, str):
        real = parse_rust_float(value)
        if real is None:
            raise InvalidInputError(f"Value '{value}' could not be parsed as float")
        return real
    return float(value)


def to_duration(value: Value) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, str):
        parsed = parse_duration(value)
        if parsed is None:
            raise InvalidInputError(f"Value '{value}' could not be parsed as duration")
        return parsed
    return Duration(to_int(value))


def check_i64(number: int) -> int:
    """Integer results stay inside i64, as upstream's checked arithmetic does."""
    if not I64_MIN <= number <= I64_MAX:
        raise InvalidInputError("Integer overflow")
    return number


def _numeric(value: Value) -> int | float:
    if isinstance(value, Duration):
        return value.us
    return value  # type: ignore[return-value]  # bool/int/float; bool compares as 0/1


def compare(left: Value, right: Value) -> int | None:
    """-1/0/1 ordering of two values, or None when they are not comparable (String vs other).

    NaN is unordered: it yields None too, so every ordering and $eq are false for it.
    """
    if isinstance(left, str) or isinstance(right, str):
        if isinstance(left, str) and isinstance(right, str):
            return (left > right) - (left < right)
        return None
    a, b = _numeric(left), _numeric(right)
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)  # Int vs Float compare via float, as upstream does
        if math.isnan(a) or math.isnan(b):
            return None
    return (a > b) - (a < b)


def equals(left: Value, right: Value) -> bool:
    return compare(left, right) == 0
