"""Attachments of the LiquidFiles FileLink API as a Trio service: pieces in, one record out.

Owns: ``AttachmentUploads`` (receive a piece, assemble a finished upload into ONE record of the
attachments bucket, look an attachment up, finish what a crash interrupted, expire abandoned
uploads), the attachment id (= the record's timestamp, reserved when the first piece arrives) and
the labels an attachment record carries (``filename``, ``checksum`` = SHA-256 hex, ``uploaded_by``).
Must not: import ``edge.http`` or build responses, touch staging files other than through
``edge.attachments.staging``, or hold a whole upload in memory (pieces stream to disk and from
disk into the store, 1 MiB at a time).

Why the id is a timestamp: an attachment is a record, and a record is named by its timestamp, so
the id works unchanged as the Mediapocket ``media_id`` and (as text) ``asset_id``, and an integer
id is what the vendor's documented shell script can paste into JSON (``jq .attachment.id``).

Pieces belong together by (token, file name, piece count) (``staging.session_key``). Retries:
a piece that arrives again replaces the earlier copy. A piece equal to the same piece of an
upload of this key that finished within ``FINISHED_KEEP_S`` gets that upload's answer (the client
lost the last response and retries); it is also kept, marked an *echo*, in case it starts a new
upload of identical pieces. When a session fills up it is either identical to a finished one
(the same attachment is answered, nothing new is stored) or, if it still holds echoes other than
the piece just received, those are dropped (they may be stale retries) and the client's own copy
awaited; otherwise it is assembled.

Crash windows: a piece is acknowledged after fdatasync + rename + directory fsync. The record is
written before ``complete.json``; after a crash in between, ``finish_pending`` finds a full
session whose record already exists at its reserved timestamp and recognises it (same size and
checksum) instead of writing it twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import trio

from edge.attachments.sniff import SNIFF_BYTES, sniff
from edge.attachments.staging import AttachmentStaging, Completed, Session, session_key
from edge.config import Config
from edge.links.tar import ext_for
from edge import durable
from edge.errors import ConfigError, ConflictError, CorruptRecordError, InvalidInputError, NotFoundError
from edge.store import Engine, files
from edge.store.bucket import check_bucket_name
from edge.uploads.staging import Limits

from .storage import ByteSource, StorageService
from .. import blocking

if TYPE_CHECKING:
    from edge.durable import Damage

log = logging.getLogger("edge.attachments")

ENTRY = "files"                    # every attachment is a record of this entry of the bucket
FILENAME_LABEL, CHECKSUM_LABEL, UPLOADER_LABEL = "filename", "checksum", "uploaded_by"
FINISHED_KEEP_S = 3600.0           # how long a finished upload answers retried pieces
REAP_EVERY_S = 60.0
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Attachment:
    id: int                        # the record timestamp (µs)
    filename: str
    size: int
    content_type: str
    checksum: str
    bucket: str
    entry: str


@dataclass(frozen=True)
class Pending:
    """An upload in pieces that is not complete yet."""

    filename: str
    chunk: int
    chunks: int
    received: int


class PiecesSource:
    """The pieces of a session, in order, as a request-like body for ``write_record``."""

    length = None   # RecordBody: not summed up front; after the record, the next read gives b""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.index = 0
        self.fd: int | None = None
        self.pos = 0

    async def receive_some(self, max_bytes: int = CHUNK_BYTES) -> bytes:
        while self.index < len(self.paths):
            if self.fd is None:
                with files.translate_errors():
                    self.fd = os.open(self.paths[self.index], os.O_RDONLY | os.O_CLOEXEC)
                self.pos = 0
            data = await blocking.run_disk(files.pread, self.fd, self.pos, min(max_bytes, CHUNK_BYTES))
            if data:
                self.pos += len(data)
                return data
            self.close()
            self.index += 1
        return b""

    def close(self) -> None:
        if self.fd is not None:
            files.close(self.fd)
            self.fd = None


def _digest_and_head(paths: list[Path], digests: tuple[str, ...]) -> tuple[str, bytes, list[int]]:
    """SHA-256 of the pieces in order, the first bytes, and the pieces whose bytes no longer match
    the digest taken while they arrived (rot on the medium since) (blocking: a worker thread)."""
    hasher, head, bad = hashlib.sha256(), b"", []
    for index, path in enumerate(paths):
        piece = hashlib.sha256()
        with files.translate_errors():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pos = 0
            while data := files.pread(fd, pos, CHUNK_BYTES):
                hasher.update(data)
                piece.update(data)
                if len(head) < SNIFF_BYTES:
                    head += data[:SNIFF_BYTES - len(head)]
                pos += len(data)
        finally:
            files.close(fd)
        if piece.hexdigest() != digests[index]:
            bad.append(index)
    return hasher.hexdigest(), head, bad


class AttachmentUploads:
    def __init__(self, staging: AttachmentStaging, storage: StorageService, engine: Engine, config: Config,
                 *, wall: Callable[[], float] = time.time, damaged: list[Damage] | None = None):
        self.staging = staging
        self.damaged = damaged if damaged is not None else []   # the app's list (/metrics, /info)
        self.storage = storage
        self.engine = engine
        self.bucket = config.attachments_bucket
        self.defaults = config.default_bucket
        self.wall = wall
        self._locks: dict[str, trio.Lock] = {}
        self._reserving: set[int] = set()
        self.completed = 0

    @property
    def limits(self) -> Limits:
        return self.staging.limits

    # --- lookups -------------------------------------------------------------------------------

    def get(self, attachment_id: int) -> Attachment:
        """The attachment with this id; ``NotFoundError`` naming it otherwise."""
        missing = NotFoundError(f"Attachment '{attachment_id}' not found")
        try:
            ref = self.engine.get_bucket(self.bucket).get_entry(ENTRY).get(attachment_id)
        except NotFoundError:
            raise missing from None
        labels = ref.labels
        if CHECKSUM_LABEL not in labels:
            raise missing                    # some other record of that entry, not an upload
        return Attachment(ref.ts_us, labels.get(FILENAME_LABEL, "attachment"), ref.size,
                          ref.content_type, labels[CHECKSUM_LABEL], self.bucket, ENTRY)

    # --- receiving -----------------------------------------------------------------------------

    def _lock(self, key: str) -> trio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = trio.Lock()
        return lock

    def _busy(self, key: str) -> bool:
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    def _reserve_id(self) -> int:
        """A timestamp no record of the attachment entry has, and no other upload holds."""
        latest = -1
        try:
            entry = self.engine.get_bucket(self.bucket).get_entry(ENTRY)
            if entry.record_count:
                latest = entry.latest_ts
        except NotFoundError:
            pass
        taken = self.staging.reserved_ids() | self._reserving
        ts = max(int(self.wall() * 1_000_000), latest + 1, max(taken, default=-1) + 1)
        self._reserving.add(ts)
        return ts

    async def upload(self, *, token: str, filename: str, chunks: int | None, chunk: int | None,
                     content_type: str | None, body: ByteSource) -> Attachment | Pending:
        """Stage one piece (or the whole file); returns the attachment once every piece is in."""
        single = chunks is None
        if single:
            chunks, chunk = 1, 0
        assert chunks is not None and chunk is not None
        if not 0 <= chunk < chunks:
            raise InvalidInputError(f"'chunk' must be between 0 and {chunks - 1}")
        key = secrets.token_hex(32) if single else session_key(token, filename, chunks)
        async with self._lock(key):
            try:
                session = self.staging.active(key)
                if session is None:
                    session = await self._create(key, token, filename, chunks, content_type)
                elif content_type is not None and session.content_type is None:
                    session.content_type = content_type
                    await blocking.run_disk(self.staging.save, session)
                piece = await self._receive(session, chunk, body)
                finished = [] if single else self.staging.finished(key)
                echoed = next((d.completed for d in finished if d.completed is not None
                               and d.completed.digests[chunk] == piece), None)
                if echoed is not None:
                    session.echoes.add(chunk)
                else:
                    session.echoes.discard(chunk)
                if session.full:
                    return await self._on_full(session, chunk, finished, single)
                if echoed is not None:
                    return self._from_completed(echoed)      # a retry after the upload finished
                return Pending(filename, chunk, chunks, len(session.pieces))
            finally:
                lock = self._locks.get(key)
                if lock is not None and not lock.statistics().tasks_waiting:
                    self._locks.pop(key, None)      # keep the table as small as the uploads in flight

    def _bucket_exists(self) -> bool:
        return self.bucket in self.engine.bucket_names()

    async def _create(self, key: str, token: str, filename: str, chunks: int, content_type: str | None) -> Session:
        ts = self._reserve_id()
        try:
            return await blocking.run_disk(lambda: self.staging.create(
                key=key, token=token, filename=filename, chunks=chunks, ts_us=ts, content_type=content_type,
                now_s=self.wall()))
        finally:
            self._reserving.discard(ts)

    async def _receive(self, session: Session, index: int, body: ByteSource) -> str:
        writer = self.staging.open_piece(session, index)
        try:
            while data := await body.receive_some(CHUNK_BYTES):
                writer.write(data)
        except BaseException:
            writer.abort()
            raise

        def commit() -> str:
            piece = writer.commit()
            session.touched_s = self.wall()
            self.staging.save(session)
            return piece.digest

        digest = ""
        with trio.CancelScope(shield=True):     # the bytes are on disk: record that they are
            digest = await blocking.run_disk(commit)
        return digest

    async def _on_full(self, session: Session, chunk: int, finished: list[Session], single: bool) -> Attachment | Pending:
        digests = session.digests()
        for done in finished:
            if done.completed is not None and done.completed.digests == digests:
                await blocking.run_disk(self.staging.delete, session)   # identical: same attachment
                return self._from_completed(done.completed)
        stale = session.echoes - {chunk}
        if stale:
            def drop() -> None:
                for index in stale:
                    piece = session.pieces.pop(index)
                    files.unlink(self.staging.folder(session.id) / f"{index}.{piece.seq}.{piece.digest}.part")
            await blocking.run_disk(drop)
            session.echoes -= stale
            return Pending(session.filename, chunk, session.chunks, len(session.pieces))
        attachment = await self._assemble(session)
        if single:
            await blocking.run_disk(self.staging.delete, session)
        return attachment

    def _from_completed(self, c: Completed) -> Attachment:
        return Attachment(c.attachment_id, c.filename, c.size, c.content_type, c.checksum, self.bucket, ENTRY)

    # --- assembling ----------------------------------------------------------------------------

    def _ensure_bucket(self) -> None:
        if not self._bucket_exists():
            try:
                self.engine.create_bucket(self.bucket, self.defaults)
                log.info("created the attachments bucket '%s'", self.bucket)
            except ConflictError:
                pass

    async def _assemble(self, session: Session) -> Attachment:
        """Stream the pieces into one record at the reserved timestamp, then mark the session done."""
        paths = self.staging.piece_paths(session)
        checksum, head, bad = await blocking.run_disk(_digest_and_head, paths, session.digests())
        if bad:
            # An acknowledged piece rotted on the medium: never stored as the client's file. The
            # session is set aside whole (kept for repair, reported); the client sends it again.
            reason = f"piece {bad[0]} no longer matches its digest"
            aside = await blocking.run_disk(self.staging.set_aside, session, reason)
            self.damaged.append(aside)
            log.error("attachment upload %s: %s", session.id, aside.describe())
            raise CorruptRecordError("A piece of this upload was found damaged on disk; the upload was "
                                     "set aside, send the file again")
        ctype = session.content_type or sniff(head, session.filename)
        name = session.filename or f"attachment.{ext_for(ctype)}"
        size = session.size
        labels = {FILENAME_LABEL: name, CHECKSUM_LABEL: checksum, UPLOADER_LABEL: session.token}
        self._ensure_bucket()
        for _attempt in range(3):
            source = PiecesSource(paths)
            try:
                await self.storage.write_record(self.bucket, ENTRY, session.ts_us, size, ctype, labels, source)
                break
            except ConflictError:
                if self._is_ours(session, size, checksum):
                    log.info("attachment %d was already written", session.ts_us)
                    break
                # Somebody wrote a record at our timestamp (a direct write to the entry): move on.
                session.ts_us = self._reserve_id()
                self._reserving.discard(session.ts_us)
                await blocking.run_disk(self.staging.save, session)
            finally:
                source.close()
        else:
            raise ConflictError("Could not find a free timestamp for the attachment; retry")
        completed = Completed(session.ts_us, name, size, checksum, ctype, session.digests(), self.wall())
        with trio.CancelScope(shield=True):
            await blocking.run_disk(self.staging.mark_complete, session, completed)
        self.completed += 1
        log.info("attachment %d complete: %d bytes in %d piece(s)", session.ts_us, size, session.chunks)
        return self._from_completed(completed)

    def _is_ours(self, session: Session, size: int, checksum: str) -> bool:
        try:
            ref = self.engine.get_bucket(self.bucket).get_entry(ENTRY).get(session.ts_us)
        except NotFoundError:
            return False
        return ref.size == size and ref.labels.get(CHECKSUM_LABEL) == checksum

    async def finish_pending(self) -> None:
        """After a restart: full sessions whose record may or may not have been written."""
        for session in list(self.staging.sessions.values()):
            if session.completed is None and session.full:
                try:
                    async with self._lock(session.key):
                        await self._assemble(session)
                except Exception as exc:  # the client learns it from its next piece; keep serving
                    log.warning("attachment upload %s could not be finished after restart: %s", session.id, exc)

    # --- expiry --------------------------------------------------------------------------------

    async def reap_expired(self) -> int:
        now = self.wall()
        def idle_limit(s: Session) -> float:
            if s.completed is not None or (s.pieces and set(s.pieces) <= s.echoes):
                return FINISHED_KEEP_S       # done, or only retries of a finished upload
            return self.limits.expire_s

        doomed = [s for s in self.staging.sessions.values() if not self._busy(s.key)
                  and (s.completed.completed_s if s.completed is not None else s.touched_s) + idle_limit(s) < now]
        for session in doomed:
            await blocking.run_disk(self.staging.delete, session)
            if session.completed is None:
                log.info("attachment upload %s expired with %d of %d piece(s)", session.id,
                         len(session.pieces), session.chunks)
        return len(doomed)

    async def reap_forever(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.reap_expired()
            await trio.sleep(min(REAP_EVERY_S, max(1.0, self.limits.expire_s)) if self.limits.expire_s < math.inf
                             else REAP_EVERY_S)


async def start(nursery: trio.Nursery, config: Config, engine: Engine, storage: StorageService,
                damaged: list[Damage]) -> AttachmentUploads:
    """Room starter (``edge.main.start_rooms``): staging area, the service, its reaper."""
    try:
        check_bucket_name(config.attachments_bucket)
    except InvalidInputError as exc:
        raise ConfigError(f"EDGE_ATTACHMENTS_BUCKET: {exc.message}") from None
    limits = config.uploads
    root = config.data_path / ".edge" / "attachments"
    staging, report = await blocking.run_disk(AttachmentStaging.open, root, limits)
    for line in report:
        log.warning("attachments: %s", line)
    damaged.extend(staging.damaged)
    service = AttachmentUploads(staging, storage, engine, config, damaged=damaged)
    await nursery.start(service.reap_forever)
    nursery.start_soon(service.finish_pending)
    return service
