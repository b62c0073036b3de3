"""Audit aggregation: identical API calls within a window become one ``api_call`` event.

Owns: the key (token, method, path, client address, status), the sums (call count, duration),
the bound on distinct keys per window and what happens past it, and turning a window into
events. Must not: do I/O, know trio or HTTP (the caller hands in plain values).

Why a bound: the path and the client address come from the network. A flood of distinct paths
(a scanner's 401s) must neither grow memory nor write a record per request: past
``MAX_KEYS`` distinct keys in one window, further new calls are summed under the path ``*``
and no client address, per token and status.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.sysevents.records import AUDIT, SystemEvent

MAX_KEYS = 1000
MAX_PATH = 512
OVERFLOW_PATH = "*"
UNAUTHORIZED = "unauthorized"    # the token name of calls that failed authentication (spec §15.5)

Key = tuple[str, str, str, str | None, int]     # token, method, path, client ip, status


@dataclass(slots=True)
class _Sum:
    calls: int
    duration_s: float


class AuditWindow:
    def __init__(self, max_keys: int = MAX_KEYS):
        self.max_keys = max_keys
        self._sums: dict[Key, _Sum] = {}

    def __len__(self) -> int:
        return len(self._sums)

    def add(self, token: str, method: str, path: str, client_ip: str | None, status: int, duration_s: float) -> None:
        key: Key = (token, method, path[:MAX_PATH], client_ip, status)
        s = self._sums.get(key)
        if s is None:
            if len(self._sums) >= self.max_keys:
                key = (token, method, OVERFLOW_PATH, None, status)
                s = self._sums.get(key)
            if s is None:
                self._sums[key] = _Sum(1, duration_s)
                return
        s.calls += 1
        s.duration_s += duration_s

    def drain(self, ts_us: int) -> list[SystemEvent]:
        """The window as events (stamped ``ts_us``), and a fresh window."""
        sums, self._sums = self._sums, {}
        return [SystemEvent(AUDIT, token, "api_call", status, f"{method} {path}", ts_us,
                            {"token_name": token, "method": method, "path": path, "client_ip": ip,
                             "call_count": s.calls, "duration": round(s.duration_s, 6)})
                for (token, method, path, ip, status), s in sums.items()]
