"""Entry selection for multi-entry (io) queries: the ``entries`` patterns of spec §9.3.

Owns: matching a list of patterns against the entry names of a bucket.
Must not: touch storage (the caller passes the names, ``$meta`` entries included), import trio.

Rules (1.21):
* ``None`` or a ``*`` element: every entry except ``$meta`` entries.
* an element equal to an entry name selects it (the only way to select a ``$meta`` entry);
* an element without ``/`` ending in ``*``: prefix match (1.20 semantics, spans segments);
* other elements with ``*``: path globs, ``*`` within one segment, ``**`` across segments;
* an element starting with ``!`` removes what it matches; only exclusions = "all but these";
* a leading ``/`` in a pattern is ignored. Globs and prefixes never match ``$meta`` entries.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Sequence

from edge.formats.metadata import is_meta_entry


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole segments
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _matches(pattern: str, name: str) -> bool:
    if pattern == name:
        return True  # exact names select $meta entries too
    if "*" not in pattern or is_meta_entry(name):
        return False
    if "/" not in pattern and pattern.endswith("*") and "*" not in pattern[:-1]:
        return name.startswith(pattern[:-1])
    return _glob(pattern).match(name) is not None


def select_entries(patterns: Sequence[str] | None, names: Iterable[str]) -> list[str]:
    """The entries of ``names`` that ``patterns`` select, sorted by name."""
    names = sorted(set(names))
    if patterns is None:
        return [n for n in names if not is_meta_entry(n)]
    include: list[str] = []
    exclude: list[str] = []
    select_all = False
    for raw in patterns:
        negative = raw.startswith("!")
        pattern = raw[1:] if negative else raw
        pattern = pattern.lstrip("/") or pattern
        if negative:
            exclude.append(pattern)
        elif pattern in ("*", "**"):
            select_all = True
        else:
            include.append(pattern)
    if not include and exclude:
        select_all = True  # ["!tmp/*"] reads as "everything except tmp/*"
    chosen = []
    for name in names:
        if select_all and not is_meta_entry(name):
            picked = True
        else:
            picked = any(_matches(p, name) for p in include)
        if picked and not any(_matches(p, name) for p in exclude):
            chosen.append(name)
    return chosen
