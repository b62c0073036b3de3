"""The legacy (<= 1.20) query filters: include / exclude / each_n / each_s / limit (spec §9.2, §9.4).

Owns: ``LegacyCondition`` with the same evaluate/stopped/clone_fresh API as ``Condition`` and
the validation texts of the legacy parameters.
Must not: parse URLs or JSON bodies (the query plan does) or share code paths with ``$each_n``,
whose counting differs on purpose (legacy keeps the 1st, (n+1)th ...; ``$each_n`` the n-th ...).
Pure, stdlib only (+ edge.errors).
"""

from __future__ import annotations

from typing import Mapping

from edge.errors import InvalidInputError
from edge.query.when.node import RecordView
from edge.query.when.values import to_string


def _label_map(name: str, values: Mapping[str, object] | None) -> dict[str, str]:
    if not values:
        return {}
    result = {}
    for key, value in values.items():
        if isinstance(value, (str, bool, int, float)):
            result[str(key)] = to_string(value)
        else:
            raise InvalidInputError(f"'{name}' label values must be strings")
    return result


class LegacyCondition:
    def __init__(
        self,
        include: Mapping[str, object] | None = None,
        exclude: Mapping[str, object] | None = None,
        each_n: int | None = None,
        each_s: float | None = None,
        limit: int | None = None,
    ):
        if each_n is not None and each_n <= 0:
            raise InvalidInputError("'each_n' must be greater than 0")
        if each_s is not None and not each_s > 0:  # also rejects NaN
            raise InvalidInputError("Time must be greater than 0 seconds")
        if limit is not None and limit < 0:
            raise InvalidInputError("'limit' must be an unsigned integer")
        self.include = _label_map("include", include)
        self.exclude = _label_map("exclude", exclude)
        self.each_n = each_n
        self.each_s = each_s
        self.limit = limit
        self._each_s_us = None if each_s is None else each_s * 1_000_000
        self._seen = 0  # records that reached the each_n stage
        self._kept = 0  # records returned, for limit
        self._last_kept_ts: int | None = None
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def evaluate(self, record: RecordView) -> bool:
        if self._stopped:
            return False
        labels = record.labels
        if any(labels.get(key) != value for key, value in self.include.items()):
            return False
        if self.exclude and all(labels.get(key) == value for key, value in self.exclude.items()):
            return False
        ts = record.ts_us
        if self._each_s_us is not None and self._last_kept_ts is not None:
            if ts - self._last_kept_ts < self._each_s_us:
                return False
        if self.each_n is not None:
            self._seen += 1
            if (self._seen - 1) % self.each_n != 0:
                return False
        if self.limit is not None:
            if self._kept >= self.limit:
                self._stopped = True  # the query ends: no later record can be returned
                return False
            self._kept += 1
        self._last_kept_ts = ts
        return True

    def clone_fresh(self) -> "LegacyCondition":
        return LegacyCondition(self.include, self.exclude, self.each_n, self.each_s, self.limit)


def legacy_condition(
    include: Mapping[str, object] | None = None,
    exclude: Mapping[str, object] | None = None,
    each_n: int | None = None,
    each_s: float | None = None,
    limit: int | None = None,
) -> LegacyCondition | None:
    """The legacy filter, or None when no legacy field is set."""
    if not include and not exclude and each_n is None and each_s is None and limit is None:
        return None
    return LegacyCondition(include, exclude, each_n, each_s, limit)
