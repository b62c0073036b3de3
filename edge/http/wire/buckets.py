"""The bucket resource's JSON: settings, bucket info, the full bucket answer, the bucket list.

Owns: ``settings_to_wire`` and ``settings_changes_from_wire`` (spec §5.2, also the bucket defaults
of ``GET /info``), ``bucket_info_to_wire`` (spec §5.1, one item of ``GET /list``),
``bucket_list_to_wire`` and ``full_bucket_info_to_wire`` (``GET /b/{bucket}``: info, settings
and the entries, whose shape is ``entries.py``'s; ``full_bucket_info_json`` is it encoded, with
each entry's bytes reused while it is unchanged).
Must not: do I/O or authorise. Handlers never build these dictionaries by hand.
"""

from __future__ import annotations

from typing import TypedDict

from ...errors import InvalidInputError
from ...model import BucketInfo, BucketSettings, EntryInfo, QuotaType
from .entries import encode_json, entries_json, entry_info_to_wire


class SettingsChanges(TypedDict, total=False):
    """The fields of a settings body that were given (``BucketSettings.merged``'s arguments)."""
    quota_type: QuotaType
    quota_size: int
    max_block_size: int
    max_block_records: int


def _u64(doc: dict[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"Invalid JSON: invalid value for '{key}': expected u64")
    return value


def settings_to_wire(s: BucketSettings) -> dict[str, object]:
    return {"quota_type": s.quota_type.value, "quota_size": s.quota_size,
            "max_block_size": s.max_block_size, "max_block_records": s.max_block_records}


def settings_changes_from_wire(doc: object) -> SettingsChanges:
    """Fields present and not null; the caller merges them over defaults or current settings."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInputError("Invalid JSON: expected a settings object")
    changes: SettingsChanges = {}
    qt = doc.get("quota_type")
    if qt is not None:
        if not isinstance(qt, str) or qt.upper() not in QuotaType.__members__:
            raise InvalidInputError(
                f"Invalid JSON: unknown variant `{qt}`, expected one of `NONE`, `FIFO`, `HARD`")
        changes["quota_type"] = QuotaType(qt.upper())
    if (quota_size := _u64(doc, "quota_size")) is not None:
        changes["quota_size"] = quota_size
    if (max_block_size := _u64(doc, "max_block_size")) is not None:
        changes["max_block_size"] = max_block_size
    if (max_block_records := _u64(doc, "max_block_records")) is not None:
        changes["max_block_records"] = max_block_records
    if changes.get("max_block_records") == 0:
        raise InvalidInputError("Invalid JSON: 'max_block_records' must be greater than 0")
    if changes.get("max_block_size") == 0:
        raise InvalidInputError("Invalid JSON: 'max_block_size' must be greater than 0")
    return changes


def bucket_info_to_wire(info: BucketInfo) -> dict[str, object]:
    return {"name": info.name, "entry_count": info.entry_count, "size": info.size,
            "oldest_record": info.oldest_record, "latest_record": info.latest_record,
            "is_provisioned": info.is_provisioned, "status": info.status,
            "disk_usage": info.disk_usage}  # not a ReductStore field: bytes of the bucket's files


def full_bucket_info_to_wire(info: BucketInfo, settings: BucketSettings, entries: list[EntryInfo]) -> dict[str, object]:
    return {"info": bucket_info_to_wire(info), "settings": settings_to_wire(settings),
            "entries": [entry_info_to_wire(e) for e in entries]}


def full_bucket_info_json(info: BucketInfo, settings: BucketSettings, entries: list[EntryInfo]) -> bytes:
    """``full_bucket_info_to_wire`` encoded (``encode_json``), the entries through ``entries_json``."""
    return (b'{"info":' + encode_json(bucket_info_to_wire(info)) + b',"settings":'
            + encode_json(settings_to_wire(settings)) + b',"entries":' + entries_json(entries) + b"}")


def bucket_list_to_wire(infos: list[BucketInfo]) -> dict[str, object]:
    """``GET /list``: the buckets the token may read."""
    return {"buckets": [bucket_info_to_wire(i) for i in infos]}
