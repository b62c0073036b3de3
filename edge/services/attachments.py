"""Entry attachments: the write rules of ``$meta`` entries (spec §12).

Owns: what a record written to a ``$meta`` entry must carry (label ``key``, never
``remove=true``), the upsert-by-key rule (writing key K first deletes the entry's existing
records with key K) and ``before_write``, the one function that applies both. Every record write
goes through it, with the entry lock held, right before ``Entry.begin_write``: the single-record
write (``StorageService.write_record``: plain writes, tus uploads, attachment uploads) and the
batch writer (``services/batch.py``, v1 and v2), which also replaces an earlier record of its own
batch with the same key. Which entries are ``$meta`` entries: ``formats.metadata.is_meta_entry``.
Must not: know HTTP, filter queries (tombstones, i.e. records labelled ``remove=true``, are
excluded by ``query/cursor.py``), refuse direct deletes (the delete handlers do that with their own
texts), or take locks itself (callers hold the entry lock).

Why the upsert deletes *before* the write and not after: the new record may use the timestamp of
the one it replaces; the store refuses a duplicate timestamp, but accepts it once the old record
was removed. The price: a write that later fails (short body) has already removed the old
attachment. Upstream behaves the same (it runs a remove query, then writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..errors import InvalidInputError
from ..formats.metadata import is_meta_entry

if TYPE_CHECKING:
    from ..store import Entry

KEY_LABEL = "key"
REMOVE_LABEL = "remove"


def is_tombstone(labels: Mapping[str, str]) -> bool:
    """``remove`` equal to boolean true: upstream casts the label, so ``True``/``TRUE`` count too."""
    value = labels.get(REMOVE_LABEL)
    return value is not None and value.strip().lower() == "true"


def check_write(entry_name: str, labels: Mapping[str, str]) -> str | None:
    """The key of a record about to be written to ``entry_name``; None for ordinary entries.

    Raises the spec's 422s for a ``$meta`` record without ``key`` or with ``remove=true``.
    """
    if not is_meta_entry(entry_name):
        return None
    key = labels.get(KEY_LABEL)
    if key is None:
        raise InvalidInputError(f"System entry '{entry_name}' records must contain label 'key'")
    if is_tombstone(labels):
        raise InvalidInputError(
            f"System entry '{entry_name}' does not support writing records with label 'remove=true'; "
            "use record update")
    return key


def remove_by_key(entry: "Entry", key: str) -> int:
    """Remove every published record of ``entry`` whose ``key`` label equals ``key`` (literally:
    keys starting with ``$`` need no escaping here). Returns the count. The removals reach the
    journal now and become durable with the caller's next ``Entry.flush()``."""
    # Collect first: removing while iter_refs walks the same block would shift its positions.
    stamps = [ref.ts_us for ref in entry.iter_refs() if ref.labels.get(KEY_LABEL) == key]
    for ts in stamps:
        entry.remove_record(ts)
    return len(stamps)


def before_write(entry: "Entry", labels: Mapping[str, str]) -> str | None:
    """Apply the rules to a record about to be written into ``entry``:
    None for an ordinary entry (a suffix test, nothing else); for a ``$meta`` entry the 422s of
    ``check_write``, then the upsert of the published records, and the record's key is returned
    (a batch replaces its own earlier record with that key, not yet published)."""
    key = check_write(entry.name, labels)
    if key is not None:
        remove_by_key(entry, key)
    return key
