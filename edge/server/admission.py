"""Connection admission for the HTTP front: whom to shed when the connection slots are full, and
who may hold the memory of a large request head.

Owns: the shedding policy (``admit``, ``IdleQueue``) and the large-head reservations (``LargeHeads``).
Must not: do I/O, import trio, or know HTTP: pure bookkeeping, so the policies can be tested on
their own (``front.py`` applies them). Connection slots: past ``max_connections`` the server keeps accepting, and for every newcomer it
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


class LargeHeads(Generic[T]):
    """Memory for request heads past ``SMALL_HEAD`` bytes, shared by all connections.

    A head of up to ``SMALL_HEAD`` needs nothing; a connection whose incomplete head grows past
    it must hold one of ``slots`` reservations (each worth a whole ``max_header_bytes`` head)
    before it receives more, and gives it back once its buffer is small again. One address may
    hold at most ``per_address`` of them unless it is a trusted proxy, so a few hosts cannot
    take them all. A connection that cannot reserve waits without reading (its head deadline
    runs), so a flood of 500 KB heads costs ``slots`` heads of memory, not one per connection.
    Like nginx's ``large_client_header_buffers``, but shared instead of per connection.
    """

    __slots__ = ("slots", "per_address", "_held", "_by_address")

    def __init__(self, slots: int, per_address: int) -> None:
        self.slots = max(1, slots)
        self.per_address = max(1, per_address)
        self._held: dict[T, str] = {}
        self._by_address: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, item: T) -> bool:
        return item in self._held

    def reserve(self, item: T, address: str, trusted: bool) -> bool:
        """Take a reservation for ``item`` (idempotent); False if none is free for it now."""
        if item in self._held:
            return True
        if len(self._held) >= self.slots:
            return False
        mine = self._by_address.get(address, 0)
        if not trusted and mine >= self.per_address:
            return False
        self._held[item] = address
        self._by_address[address] = mine + 1
        return True

    def release(self, item: T) -> None:
        address = self._held.pop(item, None)
        if address is None:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]


SMALL_HEAD = 64 * 1024  # a head up to this size needs no reservation (almost every request)
