"""Resumable uploads as a Trio service: per-upload locks, expiry on the Trio clock, the hand-over.

Owns: ``UploadService`` (create / append a PATCH / terminate / the reaper), the checks that must
happen before a byte is staged (bucket exists, entry name, timestamp free, HARD quota) and the
moment an upload turns into ONE ordinary record: the staged file is streamed through
``StorageService.write_record`` (1 MiB at a time, read in a worker thread) so readers, queries,
links and replication see the record complete or not at all, exactly like a normal write.
Must not: import ``edge.http`` or build responses, touch upload files other than through
``edge.uploads.staging``, or hold a whole upload in memory.

Clocks: ``Upload.expires_s`` is wall time (it is persisted and sent as ``Upload-Expires``); the
reaper sleeps on ``trio.current_time()`` deadlines derived from it, so tests drive expiry with
an autojump clock and a suspended laptop never expires uploads early.

Rot: the staged bytes are checked against the CRC saved with their offset while they stream
into the store (``staging.StagedSource``); a mismatch aborts the record before its last byte,
sets the upload aside whole (kept for repair, in the app's damaged list: log, ``/metrics``,
``/info``) and answers 500 with the reason. No damaged byte is ever stored as the client's file.

Crash windows: the record is written before the staging folder becomes a tombstone. A crash in
between leaves a full upload whose record already exists; ``start`` finishes such uploads and
recognises its own record (same size, content type and labels) instead of reporting a conflict.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Callable

import trio

from edge.errors import (
    BadRequestError, ChecksumMismatchError, ConflictError, CorruptRecordError, InvalidInputError, NotFoundError,
)
from edge.store.bucket import check_entry_name
from edge.uploads.protocol import Checksum, Destination, Event, State
from edge.uploads.staging import (
    Limits, StagedDataDamaged, StagedSource, Staging, Upload, new_upload_id, not_found, wall_now,
)
from .. import blocking
from . import attachments

if TYPE_CHECKING:
    from edge.config import Config
    from edge.durable import Damage
    from edge.store import Bucket, Engine
    from .storage import ByteSource, StorageService

log = logging.getLogger("edge.uploads")

CHUNK_BYTES = 1 << 20
LOCK_WAIT_S = 10.0   # DELETE waits this long for a PATCH that is still draining a dead client


class FileSource:
    """A staged data file as a request-like body (``receive_some``) for ``write_record``; its CRC
    is checked on the way (``StagedSource``: raises ``StagedDataDamaged`` before the last bytes)."""

    def __init__(self, path: os.PathLike[str] | str, length: int, crc: int | None = None):
        self.staged = StagedSource(path, length, crc, CHUNK_BYTES)
        self.length = length   # exactly the record (RecordBody)

    async def receive_some(self, max_bytes: int = CHUNK_BYTES) -> bytes:
        if self.staged.pos >= self.staged.length:
            return b""
        # A cold file may need the disk: read in a worker so other requests keep being served.
        return await blocking.run_disk(self.staged.read, max_bytes)

    def close(self) -> None:
        self.staged.close()


class UploadService:
    def __init__(self, staging: Staging, storage: "StorageService", engine: "Engine", *,
                 wall: Callable[[], float] = wall_now, damaged: list[Damage] | None = None):
        self.staging = staging
        self.damaged = damaged if damaged is not None else []   # the app's list (/metrics, /info)
        self.storage = storage
        self.engine = engine
        self.wall = wall
        self._deadlines: dict[str, float] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._changed = trio.Event()
        # Creations one at a time: the limits (count, staging bytes) are checked and the upload
        # registered in one worker-thread call, and two such calls must not interleave.
        self._create_lock = trio.Lock()
        self.expired = 0
        for up in staging.uploads.values():
            self._set_deadline(up)

    @property
    def limits(self) -> Limits:
        return self.staging.limits

    # --- expiry ------------------------------------------------------------------------------

    def _set_deadline(self, up: Upload) -> None:
        self._deadlines[up.id] = trio.current_time() + max(0.0, up.expires_s - self.wall())
        self._changed.set()

    def _lock(self, upload_id: str) -> trio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = trio.Lock()
        return lock

    def _forget(self, upload_id: str) -> None:
        self._deadlines.pop(upload_id, None)
        self._locks.pop(upload_id, None)

    async def reap_expired(self) -> int:
        now = trio.current_time()
        count = 0
        for upload_id, deadline in list(self._deadlines.items()):
            if deadline > now or self._lock(upload_id).locked():
                continue   # a PATCH in flight extends the deadline when it ends
            up = self.staging.uploads.get(upload_id)
            self._forget(upload_id)
            if up is not None:
                # Detached before the await: a PATCH arriving meanwhile gets 404, not a vanishing folder.
                self.staging.detach(up, Event.EXPIRE)
                await blocking.run_disk(self.staging.delete, up.id)
                log.info("upload %s expired at offset %d of %d", up.id, up.offset, up.length)
                self.expired += 1
                count += 1
        return count

    async def reap_forever(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Delete expired uploads at their deadline; sleeps until the earliest one (or a change)."""
        task_status.started()
        while True:
            await self.reap_expired()
            deadline = min(self._deadlines.values(), default=math.inf)
            self._changed = trio.Event()
            with trio.move_on_at(deadline):
                await self._changed.wait()

    # --- lookup ------------------------------------------------------------------------------

    def get(self, upload_id: str) -> Upload:
        """404 for unknown, terminated and expired uploads (even before the reaper ran)."""
        up = self.staging.get(upload_id)
        if self._deadlines.get(upload_id, math.inf) <= trio.current_time() and not self._lock(upload_id).locked():
            raise not_found(upload_id)
        return up

    # --- creation ----------------------------------------------------------------------------

    def check_destination(self, dest: Destination, length: int) -> None:
        """Everything that would make the final write fail and can be known now (no byte staged)."""
        bucket = self.engine.get_bucket(dest.bucket)   # 404 "Bucket '<b>' is not found"
        try:
            check_entry_name(dest.entry)
        except InvalidInputError as exc:
            raise BadRequestError(f"Upload-Metadata 'entry': {exc.message}") from None
        attachments.check_write(dest.entry, dest.labels)   # a $meta entry: label key, no remove=true
        try:
            bucket.get_entry(dest.entry).get(dest.ts_us)
        except NotFoundError:
            pass
        else:
            raise ConflictError(f"A record with timestamp {dest.ts_us} already exists")
        self.check_quota(bucket, dest, length)

    @staticmethod
    def check_quota(bucket: "Bucket", dest: Destination, length: int) -> None:
        bucket.check_quota(length, dest.content_type, dest.labels)

    async def create(self, dest: Destination, length: int, metadata: str) -> Upload:
        self.check_destination(dest, length)
        async with self._create_lock:
            up = await blocking.run_disk(self.staging.create, new_upload_id(), length, dest, metadata,
                                               self.wall())
        self._set_deadline(up)
        if length == 0:
            async with self._lock(up.id):
                await self._finish(up)
        return up

    # --- PATCH -------------------------------------------------------------------------------

    async def append(self, upload_id: str, offset: int, body: "ByteSource", checksum: Checksum | None) -> Upload:
        """Stage one PATCH; returns once its bytes (and, on the last byte, the record) are durable."""
        up = self.get(upload_id)
        lock = self._lock(upload_id)
        if lock.locked():
            raise ConflictError(f"Upload '{upload_id}' is busy: another PATCH is in progress")
        async with lock:
            up = self.get(upload_id)   # it may have been terminated while we waited for nothing
            if offset != up.offset:
                raise ConflictError(f"Upload-Offset {offset} does not match the upload's offset {up.offset}")
            if up.state == State.COMPLETE:
                if await body.receive_some(1):
                    raise BadRequestError(f"Upload-Length of {up.length} bytes exceeded")
                return up
            if not up.full:
                await self._receive(up, body, checksum)
            if up.full:
                await self._finish(up)
            return up

    async def _receive(self, up: Upload, body: "ByteSource", checksum: Checksum | None) -> None:
        # "As soon as it would exceed it": the bucket may have filled up since creation.
        self.check_quota(self.engine.get_bucket(up.dest.bucket), up.dest, up.length)
        writer = self.staging.open_chunk(up, checksum)
        try:
            while chunk := await body.receive_some(CHUNK_BYTES):
                writer.write(chunk)
        except BaseException:
            # tus: keep as much as was received, unless a checksum can no longer vouch for it.
            with trio.CancelScope(shield=True):
                if checksum is None and not writer.overflow:
                    await blocking.run_disk(writer.commit, self.wall())
                    self._set_deadline(up)
                else:
                    writer.rollback()
            raise
        if not writer.checksum_ok():
            writer.rollback()
            raise ChecksumMismatchError(f"Upload-Checksum ({checksum.algorithm}) does not match the chunk")  # type: ignore[union-attr]
        with trio.CancelScope(shield=True):   # the bytes are on disk: record that they are durable
            await blocking.run_disk(writer.commit, self.wall())
        self._set_deadline(up)

    async def _finish(self, up: Upload) -> None:
        """Turn the staged file into one record, then leave a tombstone."""
        d = up.dest
        source = FileSource(self.staging.data_path(up.id), up.length, up.crc)
        try:
            await self.storage.write_record(d.bucket, d.entry, d.ts_us, up.length, d.content_type,
                                            dict(d.labels), source)
        except ConflictError:
            if not self._is_ours(up):
                raise
            log.info("upload %s: record %s/%s@%d was already written", up.id, d.bucket, d.entry, d.ts_us)
        except StagedDataDamaged as exc:
            with trio.CancelScope(shield=True):
                await self._set_aside(up, str(exc))
            raise CorruptRecordError(f"Upload '{up.id}': its staged bytes were found damaged on disk ({exc}); "
                                     "nothing was stored and the upload was set aside: upload the file again") from None
        finally:
            source.close()
        with trio.CancelScope(shield=True):
            await blocking.run_disk(self.staging.mark_complete, up, self.wall())
        self._set_deadline(up)
        log.info("upload %s complete: %d bytes -> %s/%s@%d", up.id, up.length, d.bucket, d.entry, d.ts_us)

    async def _set_aside(self, up: Upload, reason: str) -> None:
        aside = await blocking.run_disk(self.staging.set_aside, up, f"staged upload {reason}")
        self.damaged.append(aside)
        self._forget(up.id)
        log.error("upload %s: %s", up.id, aside.describe())

    def _is_ours(self, up: Upload) -> bool:
        d = up.dest
        try:
            ref = self.engine.get_bucket(d.bucket).get_entry(d.entry).get(d.ts_us)
        except NotFoundError:
            return False
        return ref.size == up.length and ref.content_type == d.content_type and dict(ref.labels) == d.labels

    async def finish_pending(self) -> None:
        """After a restart: full uploads whose record may or may not have been written."""
        for up in list(self.staging.uploads.values()):
            if up.state != State.COMPLETE and up.full:
                try:
                    async with self._lock(up.id):
                        await self._finish(up)
                except Exception as exc:  # the client learns it from the next PATCH; keep serving
                    log.warning("upload %s could not be finished after restart: %s", up.id, exc)

    # --- termination -------------------------------------------------------------------------

    async def terminate(self, upload_id: str) -> None:
        self.get(upload_id)
        lock = self._lock(upload_id)
        with trio.move_on_after(LOCK_WAIT_S) as scope:
            await lock.acquire()
        if scope.cancelled_caught:
            raise ConflictError(f"Upload '{upload_id}' is busy: another PATCH is in progress")
        try:
            up = self.staging.uploads.get(upload_id)
            if up is None:
                raise not_found(upload_id)
            self.staging.detach(up, Event.TERMINATE)
            await blocking.run_disk(self.staging.delete, up.id)
        finally:
            lock.release()
            self._forget(upload_id)


async def start(nursery: trio.Nursery, config: Config, engine: Engine, storage: StorageService,
                damaged: list[Damage]) -> UploadService:
    """Room starter (``edge.main.start_rooms``): staging area, the tus service, its reaper."""
    limits = config.uploads
    root = config.data_path / ".edge" / "uploads"
    staging, report = await blocking.run_disk(Staging.open, root, limits)
    for line in report:
        log.warning("uploads: %s", line)
    damaged.extend(staging.damaged)
    service = UploadService(staging, storage, engine, damaged=damaged)
    await nursery.start(service.reap_forever)
    nursery.start_soon(service.finish_pending)
    return service
