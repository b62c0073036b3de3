"""Values as the vendor sharing APIs write them: expiry days, ISO timestamps, human sizes.

Owns: the ``YYYY-MM-DD`` expiry-day rule (a link lives through that whole day, UTC), ISO 8601
UTC timestamps with milliseconds (``2016-12-19T21:56:08.719Z``) and ``size_human`` the way the
vendor shows sizes (``147874`` -> ``144 KB``: 1024-based, three significant digits, trailing zeros
dropped, like Rails' ``number_to_human_size``).
Must not: do I/O or read clocks.

Why UTC and not the server's local zone: an edge device's zone is often unset or wrong, and a
link must expire at the same instant whatever host it was restored on. The README says so.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from ..errors import InvalidInputError

DAY_S = 86400
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_UNITS = ("KB", "MB", "GB", "TB", "PB", "EB")


def parse_day(value: object, field: str) -> date:
    """A strict ``YYYY-MM-DD`` (422 naming ``field`` otherwise)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"'{field}' must be a date string YYYY-MM-DD")
    m = _DAY.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        day = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise InvalidInputError(f"'{field}' must be a date YYYY-MM-DD, got '{value[:40]}'") from None
    if day.year < 1970:
        raise InvalidInputError(f"'{field}' must not be before 1970-01-01")
    return day


def day_end_s(day: date) -> int:
    """The last second of ``day`` (UTC): a link expiring then is still valid during that second."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return int(start.timestamp()) + DAY_S - 1


def expiry_day(expire_at_s: int) -> str:
    """The ``YYYY-MM-DD`` of a link's expiry (UTC)."""
    return datetime.fromtimestamp(max(0, expire_at_s), timezone.utc).date().isoformat()


def days_from(now_s: float, days: int) -> int:
    """End of the day ``days`` days after ``now_s`` (the default expiry of a FileLink)."""
    today = datetime.fromtimestamp(now_s, timezone.utc).date()
    return day_end_s(today + timedelta(days=days))


def iso_ms(ms: int) -> str:
    """``2016-12-19T21:56:08.719Z``."""
    t = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def size_human(size: int) -> str:
    """``0 Bytes``, ``1 Byte``, ``999 Bytes``, ``144 KB``, ``1.5 MB``, ``10.2 GB``."""
    if size < 1024:
        return f"{size} Byte" if size == 1 else f"{size} Bytes"
    value = float(size)
    text, unit = "", _UNITS[0]
    for unit in _UNITS:
        value /= 1024
        digits = max(0, 3 - len(str(int(value))))
        text = f"{value:.{digits}f}"
        if float(text) < 1024:          # 1023.99 KB rounds to 1024 KB: say 1 MB instead
            break
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"
