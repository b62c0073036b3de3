"""Throttling of repeated bad tokens, per client address and per token name.

Owns: the decision "may this address (or this name) try another unknown token now?" and the
failure bookkeeping behind it.
Must not: read clocks (the caller passes ``now`` as float seconds, e.g. ``trio.current_time()``
or ``time.monotonic()``, so tests use a fake clock), do I/O, import trio or HTTP.

Use (``edge/http/context.py`` ``authorize``)::

    try:
        token = repo.authenticate(header, client_ip, wall_now)   # a valid token: never throttled
    except UnauthorizedError as exc:
        if exc.message == "Invalid token":
            throttle.check(client_ip, now, name)   # RateLimitedError (429 + Retry-After) if blocked
            throttle.record_failure(client_ip, now, name)
        raise

The throttle stops guessing, not work: it is consulted only after a token turned out to be
unknown, so writers behind the same address as a script with a stale token keep working, and
only further unknown tokens from that address get 429 with ``Retry-After``. ``name`` is the
name part of a presented ``<name>-<hex>`` secret (server-made tokens look like that): guesses at
one token's secret from many addresses are throttled by that name too. Which address a request
comes from is decided by ``EDGE_TRUSTED_PROXIES`` (``edge/server/client_address.py``), so nobody
can trigger a lockout for an address they do not hold.

Count only wrong secrets ("Invalid token"): a missing header is not guessing, and reduct-py
probes ``/info`` without a token (spec §0), which must never lock a client out.

Rule: ``max_failures`` failures inside a fixed window of ``window_s`` (the window starts at the
first failure) block the address for ``backoff_s``. Other addresses are unaffected. IPv6
addresses are grouped by their /64 (``ipv6_prefix``) because one host usually owns a whole /64
and could otherwise rotate addresses to escape the limit.

Memory is bounded by ``max_addresses``: entries live in LRU order; when room is needed, stale
ones (window over, not blocked) go first, blocked ones are kept as long as others can go.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping

from edge.envparse import parse_float, parse_int
from edge.errors import RateLimitedError

DEFAULT_MAX_FAILURES = 10
DEFAULT_WINDOW_S = 60.0
DEFAULT_BACKOFF_S = 60.0
DEFAULT_MAX_ADDRESSES = 10_000  # ~100 bytes each: about a megabyte at worst
_EVICTION_PROBES = 32  # entries examined per insert when making room
RATE_LIMITED_TEXT = "Too many failed authentication attempts; retry in {seconds} s"


def rate_limited(wait_s: float) -> RateLimitedError:
    """The lockout answer: says how long to wait, in the text and as ``Retry-After`` (whole seconds)."""
    seconds = max(1, math.ceil(wait_s))
    return RateLimitedError(RATE_LIMITED_TEXT.format(seconds=seconds), retry_after_s=seconds)


@dataclass(slots=True)
class _State:
    window_start: float
    failures: int = 0
    blocked_until: float = float("-inf")


class AuthThrottle:
    def __init__(
        self,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_s: float = DEFAULT_WINDOW_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        ipv6_prefix: int = 64,
    ):
        if max_failures < 1 or max_addresses < 1:
            raise ValueError("max_failures and max_addresses must be positive")
        self.max_failures = max_failures
        self.window_s = window_s
        self.backoff_s = backoff_s
        self.max_addresses = max_addresses
        self.ipv6_prefix = ipv6_prefix
        self._states: OrderedDict[str, _State] = OrderedDict()

    def _keys(self, address: str | None, name: str | None) -> list[str]:
        keys = [self._key(address)]
        if name:
            keys.append("token:" + name)  # never an address: addresses have no ':' prefix like this
        return keys

    def _key(self, address: str | None) -> str:
        if not address:
            return ""  # unknown client: one shared bucket, so it cannot dodge the limit
        try:
            addr = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return address
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is not None:
                return str(addr.ipv4_mapped)
            return str(ipaddress.ip_network(f"{addr}/{self.ipv6_prefix}", strict=False))
        return str(addr)

    def _stale(self, s: _State, now: float) -> bool:
        return now >= s.blocked_until and now - s.window_start >= self.window_s

    def blocked_for(self, address: str | None, now: float, name: str | None = None) -> float:
        """Seconds left of the longest backoff that applies (0.0: not blocked)."""
        left = 0.0
        for key in self._keys(address, name):
            s = self._states.get(key)
            if s is not None and now < s.blocked_until:
                left = max(left, s.blocked_until - now)
        return left

    def is_blocked(self, address: str | None, now: float, name: str | None = None) -> bool:
        return self.blocked_for(address, now, name) > 0

    def check(self, address: str | None, now: float, name: str | None = None) -> None:
        """Raise ``RateLimitedError`` (with ``retry_after_s``) while ``address`` or ``name`` is
        in its backoff period."""
        left = self.blocked_for(address, now, name)
        if left > 0:
            raise rate_limited(left)

    def record_failure(self, address: str | None, now: float, name: str | None = None) -> None:
        for key in self._keys(address, name):
            self._record(key, now)

    def _record(self, key: str, now: float) -> None:
        s = self._states.get(key)
        if s is None:
            self._make_room(now)
            s = self._states[key] = _State(window_start=now)
        else:
            self._states.move_to_end(key)
        if now - s.window_start >= self.window_s:
            s.window_start, s.failures = now, 0
        s.failures += 1
        if s.failures >= self.max_failures:
            s.blocked_until = now + self.backoff_s
            # A fresh window after the backoff: the next burst is judged on its own.
            s.window_start, s.failures = s.blocked_until, 0

    def _make_room(self, now: float) -> None:
        # Look at a bounded number of the least recently touched entries (O(1) per insert):
        # stale ones go; blocked ones are rotated to the back, because evicting them would let an
        # attacker with many addresses unblock itself; live unblocked ones go only if still full.
        for _ in range(min(_EVICTION_PROBES, len(self._states))):
            key, s = next(iter(self._states.items()))
            if self._stale(s, now):
                del self._states[key]
            elif now < s.blocked_until:
                self._states.move_to_end(key)
            elif len(self._states) >= self.max_addresses:
                del self._states[key]
            else:
                break
        while len(self._states) >= self.max_addresses:
            self._states.popitem(last=False)  # everything probed was blocked: memory wins

    def statistics(self) -> dict[str, int]:
        return {"tracked_addresses": len(self._states)}


@dataclass(frozen=True)
class ThrottleSettings:
    """The auth room's throttle settings: ``EDGE_AUTH_MAX_FAILURES`` bad tokens within
    ``EDGE_AUTH_WINDOW`` seconds block the address for ``EDGE_AUTH_BACKOFF`` seconds."""

    max_failures: int = DEFAULT_MAX_FAILURES
    window_s: float = DEFAULT_WINDOW_S
    backoff_s: float = DEFAULT_BACKOFF_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ThrottleSettings":
        values: dict[str, int | float] = {}
        if env.get("EDGE_AUTH_MAX_FAILURES", "").strip():
            values["max_failures"] = parse_int(env["EDGE_AUTH_MAX_FAILURES"], "EDGE_AUTH_MAX_FAILURES", 1)
        if env.get("EDGE_AUTH_WINDOW", "").strip():
            values["window_s"] = parse_float(env["EDGE_AUTH_WINDOW"], "EDGE_AUTH_WINDOW")
        if env.get("EDGE_AUTH_BACKOFF", "").strip():
            values["backoff_s"] = parse_float(env["EDGE_AUTH_BACKOFF"], "EDGE_AUTH_BACKOFF")
        return cls(**values)  # type: ignore[arg-type]

    def throttle(self) -> AuthThrottle:
        return AuthThrottle(max_failures=self.max_failures, window_s=self.window_s, backoff_s=self.backoff_s)
