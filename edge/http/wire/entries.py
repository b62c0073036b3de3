"""The entry resource's JSON: one entry's info (an item of a bucket's ``entries``, spec §5.1).

Owns: ``entry_info_to_wire`` and ``entries_json`` (a list of them, encoded, each entry's bytes
kept while the store hands out the same ``EntryInfo``: GET /b/<bucket> with 1000 entries encoded
1000 objects per request, ~1 ms, where only the entries that changed need encoding).
Must not: do I/O or authorise. Handlers never build these dictionaries by hand.
"""

from __future__ import annotations

import json

from ...model import EntryInfo

# id(info) -> (info, its JSON): ``info`` is held, so its id is not reused while it is here.
_encoded: dict[int, tuple[EntryInfo, bytes]] = {}
_KEEP = 1024  # beyond twice the entries of one answer plus this, the stale ones are dropped


def entry_info_to_wire(info: EntryInfo) -> dict[str, object]:
    return {"name": info.name, "size": info.size, "record_count": info.record_count,
            "block_count": info.block_count, "oldest_record": info.oldest_record,
            "latest_record": info.latest_record, "status": info.status}


def encode_json(doc: object) -> bytes:
    """The one JSON encoding of answers (``request.json_response`` uses the same)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def entries_json(infos: list[EntryInfo]) -> bytes:
    """``[entry_info_to_wire(i) for i in infos]`` as JSON, byte for byte as ``encode_json``."""
    parts = []
    for info in infos:
        hit = _encoded.get(id(info))
        if hit is None or hit[0] is not info:
            hit = _encoded[id(info)] = (info, encode_json(entry_info_to_wire(info)))
        parts.append(hit[1])
    if len(_encoded) > 2 * len(infos) + _KEEP:  # earlier versions of these entries, other buckets
        keep = {id(i) for i in infos}
        for key in [k for k in _encoded if k not in keep]:
            del _encoded[key]
    return b"[" + b",".join(parts) + b"]"
