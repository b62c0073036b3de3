"""Entry attachments: the write rules of ``$meta`` entries (spec §12).

Owns: what a record written to a ``$meta`` entry must carry (label ``key``, never
``remove=true``), the upsert-by-key rule (writing key K first deletes the entry's existing
records with key K) and ``meta_write_check``, the hook that applies both. The single-record
write (``http/records.py``) and the batch writers (``services/batch.py``) call the hook with the
entry lock held, right before ``Entry.begin_write``.
Must not: know HTTP, filter queries (tombstones, i.e. records labelled ``remove=true``, are
excluded by ``query/cursor.py``), refuse direct deletes (the delete handlers do that with their own
texts), or take locks itself (callers hold the entry lock).

Why the upsert deletes *before* the write and not after: the new record may use the timestamp of
the one it replaces; the store refuses a duplicate timestamp, but accepts it once the old record
was removed. The price: a write that later fails (short body) has already removed the old
attachment. Upstream behaves the same (it runs a remove query, then writes).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidInputError

KEY_LABEL = "key"
REMOVE_LABEL = "remove"


def is_meta(entry_name: str) -> bool:
    return entry_name == "$meta" or entry_name.endswith("/$meta")


def is_tombstone(labels: Mapping[str, str]) -> bool:
    """``remove`` equal to boolean true: upstream casts the label, so ``True``/``TRUE`` count too."""
    value = labels.get(REMOVE_LABEL)
    return value is not None and value.strip().lower() == "true"


def check_write(entry_name: str, labels: Mapping[str, str]) -> str | None:
    """The key of a record about to be written to ``entry_name``; None for ordinary entries.

    Raises the spec's 422s for a ``$meta`` record without ``key`` or with ``remove=true``.
    """
    if not is_meta(entry_name):
        return None
    key = labels.get(KEY_LABEL)
    if key is None:
        raise InvalidInputError(f"System entry '{entry_name}' records must contain label 'key'")
    if is_tombstone(labels):
        raise InvalidInputError(
            f"System entry '{entry_name}' does not support writing records with label 'remove=true'; "
            "use record update")
    return key


def remove_by_key(entry: Any, key: str) -> int:
    """Remove every published record of ``entry`` whose ``key`` label equals ``key`` (literally:
    keys starting with ``$`` need no escaping here). Returns the count. The removals reach the
    journal now and become durable with the caller's next ``Entry.flush()``."""
    # Collect first: removing while iter_refs walks the same block would shift its positions.
    stamps = [ref.ts_us for ref in entry.iter_refs() if ref.labels.get(KEY_LABEL) == key]
    for ts in stamps:
        entry.remove_record(ts)
    return len(stamps)


def meta_write_check(bucket: str, entry_name: str, entry: Any, labels: Mapping[str, str]) -> None:
    """The hook: validate a write and apply the upsert. Cheap for ordinary entries (a suffix test)."""
    key = check_write(entry_name, labels)
    if key is not None:
        remove_by_key(entry, key)

