"""Calendar operators: $second $minute $hour $day $month $year $weekday (spec §10.3, 1.19+).

Owns: turning a µs timestamp into one calendar field in UTC or an IANA zone (stdlib zoneinfo).
Must not: cache anything per record or accept a bad zone silently ("Invalid timezone: '<tz>'").
Pure, stdlib only (+ edge.errors); zoneinfo reads the system tz database, which is not our I/O.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone, tzinfo

from edge.errors import InvalidInputError
from edge.query.when.node import Operator, RecordView
from edge.query.when.values import Value, to_int, to_string

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo | None:
    if name == "UTC":  # works even without a tz database
        return timezone.utc
    try:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)
    except Exception:  # noqa: BLE001 - not found, bad key, path tricks, NUL: all "invalid"
        return None


def zone_or_error(name: str) -> tzinfo:
    zone = _zone(name)
    if zone is None:
        raise InvalidInputError(f"Invalid timezone: '{name}'")
    return zone


class _CalendarField(Operator):
    __slots__ = ()
    MIN, MAX = 1, 2

    def eval(self, record: RecordView) -> Value:
        ts_us = to_int(self.operands[0].eval(record))
        zone: tzinfo = timezone.utc
        if len(self.operands) == 2:
            zone = zone_or_error(to_string(self.operands[1].eval(record)))
        try:
            # timedelta arithmetic instead of fromtimestamp(): exact µs, no float rounding.
            moment = (_EPOCH + timedelta(microseconds=ts_us)).astimezone(zone)
        except (OverflowError, ValueError):
            raise InvalidInputError(f"Timestamp {ts_us} is out of range") from None
        return self.field(moment)

    @staticmethod
    def field(moment: datetime) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class Second(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.second


class Minute(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.minute


class Hour(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.hour


class Day(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.day


class Month(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.month


class Year(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:
        return moment.year


class Weekday(_CalendarField):
    __slots__ = ()

    @staticmethod
    def field(moment: datetime) -> int:  # 0 = Monday, as upstream
        return moment.weekday()


OPERATORS = {
    "$second": Second, "$minute": Minute, "$hour": Hour, "$day": Day,
    "$month": Month, "$year": Year, "$weekday": Weekday,
}
