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
# A default ``quota_size`` the store replaces when it creates a bucket: a share of the disk
# (see edge/store/engine.py). Never stored, never on the wire.
AUTO_QUOTA_SIZE = -1
# The big-record threshold, one policy for every path. A record (or a batch body) up to this size
# is small: the store buffers it and writes it in one go, and a reader reads and crc-verifies it
# whole before the status goes out (a bad crc becomes a clean 500; replication reads it once and
# keeps it until sent). A bigger one is written through as it arrives and streamed to readers,
# verified as it goes.
BIG_RECORD_BYTES = 1 << 20

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

    def merged(self, *, quota_type: QuotaType | None = None, quota_size: int | None = None,
               max_block_size: int | None = None, max_block_records: int | None = None) -> "BucketSettings":
        """A copy with the given fields replaced; ``None`` values mean "keep"."""
        return replace(
            self,
            quota_type=self.quota_type if quota_type is None else quota_type,
            quota_size=self.quota_size if quota_size is None else quota_size,
            max_block_size=self.max_block_size if max_block_size is None else max_block_size,
            max_block_records=self.max_block_records if max_block_records is None else max_block_records)


@dataclass(frozen=True)
class EngineLimits:
    """What the storage engine enforces beyond bucket quotas (their variables: edge/config.py)."""

    max_storage_size: int = 0  # RS_ENGINE_MAX_STORAGE_SIZE: bytes of every bucket's files; 0 = no cap
    free_reserve: int = 0  # EDGE_FREE_SPACE_RESERVE given in bytes: the file system keeps this free
    free_reserve_percent: float | None = None  # ... or given as a share of the file system's size
    index_cache_size: int = 32 * 1024**2  # EDGE_INDEX_CACHE_SIZE: loaded block indexes, estimated bytes
    auto_quota_percent: float = 80.0  # AUTO_QUOTA_SIZE: this share of (free space - reserve + edge's data)
    torn_keep_size: int = 16 * 1024**2  # EDGE_TORN_KEEP_SIZE: torn tails kept by recovery, all buckets


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
    disk_usage: int = 0  # bytes of the bucket's files (not a ReductStore field)


@dataclass(frozen=True)
class RecordMeta:
    """What a client sees of a record besides its payload."""

    ts_us: int
    size: int
    content_type: str = DEFAULT_CONTENT_TYPE
    labels: Mapping[str, str] = field(default_factory=dict)
