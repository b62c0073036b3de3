"""Rate limits per client address: ``RS_RATE_LIMIT_API``, ``RS_RATE_LIMIT_INGRESS``, ``RS_RATE_LIMIT_EGRESS``.

Owns: the bookkeeping and the decision (requests, body bytes in, body bytes out per address and
window) and the 429 it raises. Must not: read clocks (callers pass ``now``), do I/O, import trio.

Rule: a fixed window per address and limit, starting with the address's first request in it
and lasting the configured period (ReductStore's ``<n>/<period>``, default one hour). Within a
window:

* API: the request that would be number ``n + 1`` is refused;
* ingress: a request whose declared body (``Content-Length``) would take the window over the
  limit is refused before a byte of it is read; chunked bodies are counted as they arrive and
  the next request is refused once the window is used up;
* egress: a request is refused while the window's bytes are used up; the response that crosses
  the limit is still sent whole (it was under the limit when it started).

So traffic under the limit is never refused, and everything recovers when the window ends. A
refusal is ``RateLimitedError`` (429, ``x-reduct-error``, ``Retry-After`` = seconds to the end of
the window). Memory is bounded: at most ``max_addresses`` windows per limit, least recently
used dropped first (an evicted address starts a fresh window, which only errs towards letting
traffic through).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..config import RateLimit
from ..errors import RateLimitedError

DEFAULT_MAX_ADDRESSES = 10_000


def _period_text(period_s: float) -> str:
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if period_s % seconds == 0:
            count = int(period_s // seconds)
            return unit if count == 1 else f"{count}{unit}"
    return f"{period_s:g}s"


@dataclass(slots=True)
class _Window:
    start: float
    used: int = 0


class _Limit:
    def __init__(self, limit: RateLimit, what: str, max_addresses: int):
        self.limit = limit
        self.what = what
        self.max_addresses = max_addresses
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def window(self, address: str, now: float) -> _Window:
        w = self._windows.get(address)
        if w is None or now - w.start >= self.limit.period_s:
            w = _Window(now)
            self._windows[address] = w
            if len(self._windows) > self.max_addresses:
                self._windows.popitem(last=False)
        self._windows.move_to_end(address)
        return w

    def refuse(self, w: _Window, now: float) -> RateLimitedError:
        lim = self.limit
        return RateLimitedError(
            f"Rate limit exceeded: {lim.amount} {self.what} per {_period_text(lim.period_s)}",
            retry_after_s=max(0.0, w.start + lim.period_s - now))

    def __len__(self) -> int:
        return len(self._windows)


class RateLimits:
    """The three limits of one server; any of them may be off (None)."""

    def __init__(self, api: RateLimit | None = None, ingress: RateLimit | None = None,
                 egress: RateLimit | None = None, max_addresses: int = DEFAULT_MAX_ADDRESSES):
        self.api = _Limit(api, "requests", max_addresses) if api else None
        self.ingress = _Limit(ingress, "bytes received", max_addresses) if ingress else None
        self.egress = _Limit(egress, "bytes sent", max_addresses) if egress else None

    def __bool__(self) -> bool:
        return self.api is not None or self.ingress is not None or self.egress is not None

    def admit(self, address: str, declared_body: int | None, now: float) -> None:
        """Before routing: raise ``RateLimitedError`` if this request is over a limit; count it."""
        if self.egress is not None:
            w = self.egress.window(address, now)
            if w.used >= self.egress.limit.amount:
                raise self.egress.refuse(w, now)
        if self.ingress is not None:
            w = self.ingress.window(address, now)
            if w.used >= self.ingress.limit.amount or (
                    declared_body and w.used + declared_body > self.ingress.limit.amount):
                raise self.ingress.refuse(w, now)
        if self.api is not None:
            w = self.api.window(address, now)
            if w.used >= self.api.limit.amount:
                raise self.api.refuse(w, now)
            w.used += 1

    def account(self, address: str, received: int, sent: int, now: float) -> None:
        """After the response: the body bytes that went in and out."""
        if self.ingress is not None and received:
            self.ingress.window(address, now).used += received
        if self.egress is not None and sent:
            self.egress.window(address, now).used += sent

    def statistics(self) -> dict[str, int]:
        return {name: len(lim) for name, lim in
                (("api", self.api), ("ingress", self.ingress), ("egress", self.egress)) if lim is not None}
