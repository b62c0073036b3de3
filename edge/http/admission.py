"""Connection admission for the HTTP front: whom to shed when the connection slots are full.

Pure bookkeeping, no I/O and no Trio, so the policy can be tested on its own (``front.py`` applies
it). The policy: past ``max_connections`` the server keeps accepting, and for every newcomer it
closes the connection that has been idle the longest -- one parked between requests, or one that
has not sent a byte since it was accepted. A connection with a request head begun, a request in
flight or a response being sent is never chosen. Only when nothing is idle does the count grow
past ``max_connections``, up to a hard limit above which newcomers are refused at once; so idle
sockets can delay a real client by one accept, not by rounds of head timeouts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class Admission:
    """What to do with one newly accepted connection."""

    shed: int  # how many of the longest-idle connections to close first
    keep: bool  # False: refuse the newcomer (the hard limit is reached and nothing is idle)


def admit(open_conns: int, idle_conns: int, max_connections: int, hard_limit: int) -> Admission:
    """Decide for one newcomer, given the connections open (not yet shed) and how many are idle.

    Idle ones are shed until the newcomer fits under ``max_connections``; if none is idle it is
    still admitted while fewer than ``hard_limit`` are open, and refused beyond.
    """
    excess = open_conns + 1 - max_connections
    shed = min(max(excess, 0), idle_conns)
    return Admission(shed, open_conns - shed < hard_limit)


class IdleQueue(Generic[T]):
    """Connections that are safe to close, the longest-idle first.

    ``park`` when a connection starts waiting with nothing received, ``unpark`` when that wait
    ends; parking always appends, so insertion order is idle-since order. All operations O(1).
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: OrderedDict[T, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def park(self, item: T) -> None:
        self._items[item] = None
        self._items.move_to_end(item)

    def unpark(self, item: T) -> None:
        self._items.pop(item, None)

    def pop_oldest(self) -> T | None:
        """Remove and return the longest-idle item, or None if nothing is idle."""
        if not self._items:
            return None
        return self._items.popitem(last=False)[0]
