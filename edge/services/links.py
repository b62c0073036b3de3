"""The share-link room: the server link key, the link registry and the resolved-record cache.

Owns: loading (or creating, on first start) ``<data>/.edge/link.key`` and opening the
``LinkRegistry`` at start-up into a ``LinkRoom`` (``AppContext.link_room``; its registry is
``AppContext.links``), and the small cache of "this record is in that link's
query result" answers.
Must not: log the key material (only its fingerprint), import ``edge.http``, decide link rules
(``edge.links.rules``) or serve anything.

Why a cache: resolving a link runs its stored query over the bucket until the record is found.
A viewer seeking through a file sends many Range requests for the same link and record; without
the cache each would rescan (upstream keeps 8 entries for 600 s for the same reason). Only the
fact "(link, entry, ts) is in the result" is cached, never payloads or refs: the record is looked
up again on every request, so a removed record is a 404 at once.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING


from edge.errors import NotFoundError
from edge.links import LinkRecord, LinkRegistry, ServerKey, load_or_create
from .. import blocking

if TYPE_CHECKING:
    from edge.config import Config
    from edge.durable import Damage

log = logging.getLogger("edge.links")

CACHE_ENTRIES = 64
CACHE_TTL_S = 600.0


@dataclass
class LinkRoom:
    """What the link handlers need besides the registry: the key and the resolution cache."""

    key: ServerKey
    registry: LinkRegistry
    _resolved: OrderedDict[tuple[str, str, int], float] = field(default_factory=OrderedDict)   # -> monotonic time

    def is_resolved(self, link_id: str, entry: str, ts_us: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        k = (link_id, entry, ts_us)
        at = self._resolved.get(k)
        if at is None:
            return False
        if now - at > CACHE_TTL_S:
            del self._resolved[k]
            return False
        self._resolved.move_to_end(k)
        return True

    def lost_key_error(self, rec: LinkRecord) -> NotFoundError | None:
        """Why ``rec`` no longer verifies if it was issued under a key later found damaged.

        The key was replaced (``keys.load_or_create``); links sealed under the old one cannot
        be checked any more. Their holders get this text instead of the uniform "not found",
        which would read as a forged or revoked link.
        """
        replaced = self.key.replaced_at
        if replaced is None or rec.created_at > replaced:
            return None
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(replaced))
        return NotFoundError(f"This link was issued under a server link key found damaged and replaced on "
                             f"{when}; it no longer verifies: ask for a new link")

    def remember(self, link_id: str, entry: str, ts_us: int, now: float | None = None) -> None:
        self._resolved[(link_id, entry, ts_us)] = time.monotonic() if now is None else now
        self._resolved.move_to_end((link_id, entry, ts_us))
        while len(self._resolved) > CACHE_ENTRIES:
            self._resolved.popitem(last=False)


def _open(data_path: Path) -> LinkRoom:
    key = load_or_create(data_path)
    registry = LinkRegistry.open(data_path, key=key.material)
    return LinkRoom(key, registry)


async def start(config: Config, damaged: list[Damage]) -> LinkRoom:
    """Room starter (``edge.main.start_rooms``): key + registry; no background task.

    A damaged key file is set aside and replaced (``keys.load_or_create``): new links work,
    older ones answer ``LinkRoom.lost_key_error``; the damage is logged and reported with the
    other damaged state files (``damaged``), never silent.
    """
    room = await blocking.run_disk(partial(_open, config.data_path))
    for line in room.registry.load_report:
        log.warning("%s", line)
    damaged.extend(room.registry.damaged)
    if room.key.damage is not None:
        damaged.append(room.key.damage)
        log.error("%s; a new link key was made: links issued before no longer verify", room.key.damage.describe())
    # The fingerprint says which key is in use (after a restore, say) without revealing it.
    log.info("%d share link(s) loaded, key fingerprint %s",
             len(room.registry.list()), room.key.fingerprint)
    return room
