"""Plain values shared by every layer: settings, infos, record metadata.

Owns: the value types (frozen dataclasses and enums) and the default bucket settings.
Must not: do I/O, import trio or any edge module other than ``errors``.

Units are in the names: ``ts_us`` is an int of microseconds since the epoch, sizes are bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Mapping

# ReductStore's defaults (storage/bucket/settings.rs): SI, not MiB.
DEFAULT_MAX_BLOCK_SIZE = 64_000_000
DEFAULT_MAX_BLOCK_RECORDS = 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"

Labels = Mapping[str, str]


class QuotaType(str, enum.Enum):
    NONE = "NONE"
    FIFO = "FIFO"
    HARD = "HARD"


@dataclass(frozen=True)
class BucketSettings:
    quota_type: QuotaType = QuotaType.NONE
    quota_size: int = 0
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE
    max_block_records: int = DEFAULT_MAX_BLOCK_RECORDS

    def merged(self, **changes: object) -> "BucketSettings":
        """A copy with the given fields replaced; ``None`` values mean "keep"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class EntryInfo:
    name: str
    size: int
    record_count: int
    block_count: int
    oldest_record: int
    latest_record: int
    status: str = "READY"


@dataclass(frozen=True)
class BucketInfo:
    name: str
    entry_count: int
    size: int
    oldest_record: int
    latest_record: int
    is_provisioned: bool = False
    status: str = "READY"


@dataclass(frozen=True)
class RecordMeta:
    """What a client sees of a record besides its payload."""

    ts_us: int
    size: int
    content_type: str = DEFAULT_CONTENT_TYPE
    labels: Mapping[str, str] = field(default_factory=dict)
