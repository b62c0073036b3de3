"""Quota arithmetic: who has to go so that a record fits (spec section 15.4).

Owns: the pure decisions "HARD refuses", "FIFO drops these oldest blocks", "this can never fit".
Must not: touch files or buckets -- bucket.py supplies the numbers and evicts what we name.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

K = TypeVar("K")


def fits(current: int, incoming: int, quota: int) -> bool:
    return current + incoming <= quota


def fifo_victims(
    current: int, incoming: int, quota: int, candidates: Iterable[tuple[K, int]]
) -> list[K] | None:
    """The shortest prefix of ``candidates`` (oldest first, ``(key, size)``) whose removal makes
    ``incoming`` fit; None if even removing all of them is not enough.

    ``candidates`` may be lazy: it is consumed only as far as needed, so the caller can generate
    them from a heap without listing every block of the bucket.
    """
    victims: list[K] = []
    if fits(current, incoming, quota):
        return victims
    for key, size in candidates:
        victims.append(key)
        current -= size
        if fits(current, incoming, quota):
            return victims
    return None
