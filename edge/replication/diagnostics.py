"""Hourly replication diagnostics (spec §13.2): ``{ok, errored, errors{status: {count, last_message}}}``.

Owns: the counters, kept as one bucket per minute for the last 60 minutes, and running totals
(records, bytes, time spent sending, the last error, records failed by status) that the
``$system`` replication events are sampled from and ``/metrics`` exposes as counters (so a
Prometheus can take ``rate()`` of them; the hourly window is the API's view).
Must not: know HTTP, trio or the store. Pure, stdlib only.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TypedDict


class ErrorCount(TypedDict):
    count: int
    last_message: str


class Hourly(TypedDict):
    """One minute's counters, or the hour's sum (the wire shape of spec §13.2)."""
    ok: int
    errored: int
    errors: dict[str, ErrorCount]    # status (as text) -> records failed with it


def _empty() -> Hourly:
    return {"ok": 0, "errored": 0, "errors": {}}


class Diagnostics:
    """Hourly counters, kept as one bucket per minute (at most 60)."""

    def __init__(self) -> None:
        self._minutes: deque[tuple[int, Hourly]] = deque()
        self.total_ok = 0
        self.total_errored = 0
        self.total_errors: dict[int, int] = {}     # HTTP-like status -> records
        self.total_bytes = 0          # payload bytes the destination accepted
        self.busy_s = 0.0             # time spent in transfers
        self.last_error: tuple[int, str] = (200, "")

    def _bucket(self) -> Hourly:
        minute = int(time.time() // 60)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, _empty()))
        while self._minutes and self._minutes[0][0] <= minute - 60:
            self._minutes.popleft()
        return self._minutes[-1][1]

    def ok(self, n: int = 1, nbytes: int = 0) -> None:
        self._bucket()["ok"] += n
        self.total_ok += n
        self.total_bytes += nbytes

    def unreachable(self, message: str) -> None:
        """A transfer that did not reach the destination (connection, timeout): no record counted."""
        self.last_error = (503, message)

    def error(self, status: int, message: str, n: int = 1) -> None:
        self.total_errored += n
        self.last_error = (status, message)
        b = self._bucket()
        b["errored"] += n
        self.total_errors[status] = self.total_errors.get(status, 0) + n
        e = b["errors"].setdefault(str(status), {"count": 0, "last_message": ""})
        e["count"] += n
        e["last_message"] = message

    def hourly(self) -> Hourly:
        self._bucket()
        out = _empty()
        for _, b in self._minutes:
            out["ok"] += b["ok"]
            out["errored"] += b["errored"]
            for status, e in b["errors"].items():
                agg = out["errors"].setdefault(status, {"count": 0, "last_message": ""})
                agg["count"] += e["count"]
                agg["last_message"] = e["last_message"]
        return out
