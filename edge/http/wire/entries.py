"""The entry resource's JSON: one entry's info (an item of a bucket's ``entries``, spec §5.1).

Owns: ``entry_info_to_wire``.
Must not: do I/O or authorise. Handlers never build these dictionaries by hand.
"""

from __future__ import annotations

from ...model import EntryInfo


def entry_info_to_wire(info: EntryInfo) -> dict[str, object]:
    return {"name": info.name, "size": info.size, "record_count": info.record_count,
            "block_count": info.block_count, "oldest_record": info.oldest_record,
            "latest_record": info.latest_record, "status": info.status}
