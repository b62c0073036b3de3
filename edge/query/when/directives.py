"""Query directives: the top-level ``#`` keys of a ``when`` object (spec §10.6).

Owns: the ``Directives`` value (None = not given), the validation and error texts of each
directive, and the size-string grammar (``"1MB"``).
Must not: apply them (the query layer does: context records, label selection, batch limits).
Pure, stdlib only (+ edge.errors).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, TypeGuard

from edge.errors import InvalidInputError
from edge.query.when.values import Duration, parse_duration


@dataclass(frozen=True)
class Directives:
    ctx_before: int | Duration | None = None  # int = number of records, Duration = time span
    ctx_after: int | Duration | None = None
    select_labels: tuple[str, ...] | None = None
    batch_size: int | None = None  # bytes
    batch_records: int | None = None
    batch_metadata_size: int | None = None  # bytes
    batch_timeout_s: float | None = None
    record_timeout_s: float | None = None
    io_timeout_s: float | None = None
    ext: dict[str, object] | list[dict[str, object]] | None = None  # raw JSON: only its keys are read


_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*\Z")
_SIZE_UNITS = {"": 1, "b": 1}
for _power, _prefix in enumerate("kmgtp", start=1):
    _SIZE_UNITS[_prefix] = _SIZE_UNITS[_prefix + "b"] = 1000**_power
    _SIZE_UNITS[_prefix + "i"] = _SIZE_UNITS[_prefix + "ib"] = 1024**_power


def parse_size(text: str) -> int | None:
    """Bytes in a size string (``"1MB"`` = 10^6, ``"1MiB"`` = 2^20, case-insensitive), or None."""
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        return None
    try:
        return int(Decimal(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    except InvalidOperation:  # pragma: no cover - the regex admits only plain decimals
        return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _context(key: str, value: object) -> int | Duration:
    if isinstance(value, str):
        value = parse_duration(value) or value
    if _is_int(value):
        if value < 0:
            raise InvalidInputError(f"{key} must be non-negative")
        return value
    if isinstance(value, Duration):
        if value.us < 0:
            raise InvalidInputError(f"{key} must be non-negative")
        return value
    raise InvalidInputError(f"{key} must be an integer or a duration")


def _size(key: str, value: object) -> int:
    size = parse_size(value) if isinstance(value, str) else value
    if not _is_int(size):
        raise InvalidInputError(f"{key} must be an integer or a size string (e.g. '1MB')")
    if size < 0:
        raise InvalidInputError(f"{key} must be non-negative")
    return size


def _records(key: str, value: object) -> int:
    if not _is_int(value):
        raise InvalidInputError(f"{key} must be an integer")
    if value < 1:  # zero records per batch could never make progress
        raise InvalidInputError(f"{key} must be positive")
    return value


def _seconds(key: str, value: object) -> float:
    if isinstance(value, str):
        duration = parse_duration(value)
        if duration is None:
            raise InvalidInputError(f"{key} must be a number of seconds or a duration")
        seconds = duration.us / 1_000_000
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidInputError(f"{key} must be a number of seconds or a duration")
    if math.isnan(seconds) or seconds < 0:
        raise InvalidInputError(f"{key} must be non-negative")
    return seconds


def _labels(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInputError(f"{key} must be an array of strings")
    if not value:
        raise InvalidInputError(f"{key} must contain at least one label")
    return tuple(value)


def _ext(key: str, value: object) -> dict[str, object] | list[dict[str, object]]:
    if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        return value
    raise InvalidInputError(f"{key} must be an object or an array of objects")


# directive -> (field name, validator)
_DIRECTIVES = {
    "#ctx_before": ("ctx_before", _context),
    "#ctx_after": ("ctx_after", _context),
    "#select_labels": ("select_labels", _labels),
    "#batch_size": ("batch_size", _size),
    "#batch_records": ("batch_records", _records),
    "#batch_metadata_size": ("batch_metadata_size", _size),
    "#batch_timeout": ("batch_timeout_s", _seconds),
    "#record_timeout": ("record_timeout_s", _seconds),
    "#io_timeout": ("io_timeout_s", _seconds),
    "#ext": ("ext", _ext),
}


def parse_directives(items: Mapping[str, object]) -> Directives:
    """``Directives`` from the ``#`` keys of a condition object (other keys must be removed)."""
    fields: dict[str, Any] = {}   # field -> its validator's value (each typed as the field)
    for key, value in items.items():
        if key not in _DIRECTIVES:
            raise InvalidInputError(f"Directive '{key}' is not supported")
        if value is None:
            raise InvalidInputError(f"Directive '{key}' cannot be null")
        field, validate = _DIRECTIVES[key]
        fields[field] = validate(key, value)
    return Directives(**fields)
