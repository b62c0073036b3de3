"""The upload staging area: one folder per upload under ``<data>/.edge/uploads/<id>/``.

Owns: the folder layout (``data`` = the bytes received so far, ``state.json`` = the upload's
row), creating and loading uploads, appending a PATCH's bytes and making them durable, rolling a
refused chunk back, the running checksum of the staged bytes and checking it (``verify_data``),
setting a damaged upload aside, the limits (largest upload, uploads in progress, staging space)
and the settings that set them.
Must not: import trio, HTTP or services, decide when an upload expires (the service's reaper
does, on the Trio clock) or write records (the service hands the file to the store).

Durability rule: ``state.json`` is the truth. Its ``offset`` is raised only after the data file
was fdatasync'ed up to it, and the state is replaced atomically (tmp + fsync + rename + fsync
dir). Bytes past ``offset`` were never acknowledged, so loading (and every new chunk) truncates
them away: after ``kill -9`` the client resumes exactly at the offset it was last told.
A folder is published by renaming it from ``.<id>.tmp`` so a crash during creation leaves
nothing that looks like an upload.

Integrity rule: ``state.json`` also holds ``data_crc32``, the CRC-32 of ``data[0:offset]``,
carried forward chunk by chunk (no re-read) and saved with the offset it covers. ``data`` is
the one staged file without a checksum of its own, and it can sit on an SD card for a day;
``StagedSource`` (the hand-over to the store) checks the CRC as it streams the bytes and fails
before the record's last byte reaches the store, so a byte that rotted since it was acknowledged
is never stored as the client's file (the upload is set aside whole instead). ``edge check``
reads the same CRC (``verify_data``). A state written before this field (``None``) is not checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from edge.formats.checksum import crc32
from edge.errors import BadRequestError, DiskFullError, NotFoundError, PayloadTooLargeError, RateLimitedError
from edge import durable
from edge.store import files
from edge.uploads.settings import Limits  # noqa: F401 - the room's settings, used here
from edge.uploads.protocol import Checksum, Destination, Event, State, advance

STATE_FILE = "state.json"
DATA_FILE = "data"
FORMAT_VERSION = 1
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Upload:
    """One upload's row; everything but ``fd`` is persisted in ``state.json``."""

    id: str
    length: int
    dest: Destination
    metadata: str                      # the raw Upload-Metadata, echoed by HEAD
    created_s: float                   # wall clock (epoch seconds)
    expires_s: float                   # wall clock; Upload-Expires; extended by every PATCH
    offset: int = 0                    # durable bytes
    state: State = State.CREATED
    crc: int | None = 0                # CRC-32 of data[0:offset]; None: a state from before the field

    @property
    def full(self) -> bool:
        return self.offset == self.length

    def to_json(self) -> bytes:
        d = self.dest
        return json.dumps({
            "version": FORMAT_VERSION, "id": self.id, "length": self.length, "offset": self.offset,
            "state": self.state.value, "metadata": self.metadata, "created_s": self.created_s,
            "expires_s": self.expires_s, "bucket": d.bucket, "entry": d.entry, "ts_us": d.ts_us,
            "content_type": d.content_type, "labels": d.labels,
            **({} if self.crc is None else {"data_crc32": self.crc}),
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Upload":
        o = json.loads(raw)
        if o.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown state version {o.get('version')!r}")
        dest = Destination(o["bucket"], o["entry"], int(o["ts_us"]), o["content_type"], dict(o["labels"]))
        crc = o.get("data_crc32")
        return cls(o["id"], int(o["length"]), dest, o["metadata"], float(o["created_s"]),
                   float(o["expires_s"]), int(o["offset"]), State(o["state"]),
                   None if crc is None else int(crc))


def staged_folders(root: Path, name_ok: Callable[[str], bool], what: str, report: list[str],
                   damaged: list[durable.Damage] | None = None) -> Iterator[Path]:
    """The folders of a staging area (created if missing) whose names are ids. Anything else, such
    as a ``.<id>.tmp`` whose creation a crash cut short, is removed and reported; a folder set
    aside as damaged earlier (``edge.durable.set_aside``) is kept, reported and listed in ``damaged``."""
    files.make_dirs(root)
    for item in files.list_dir(root):
        path = Path(item.path)
        if durable.is_aside(item.name):
            report.append(f"{what} folder {item.name} was set aside as damaged earlier; kept for repair")
            if damaged is not None:
                damaged.append(durable.Damage(path, "damaged at an earlier start, kept for repair", path))
            continue
        if not item.is_dir() or not name_ok(item.name):
            report.append(f"removed unfinished {what} folder {item.name}")
            files.remove_tree(path) if item.is_dir() else files.unlink(path)
            continue
        yield path


def not_found(upload_id: str) -> NotFoundError:
    return NotFoundError(f"Upload '{upload_id}' is not found")


class ChunkWriter:
    """The bytes of one PATCH: appended as they arrive, kept by ``commit`` or dropped by ``rollback``.

    Why truncate to ``offset`` first: an earlier PATCH that broke off (client gone, server killed)
    may have left unacknowledged bytes; the client resumes at ``offset`` and resends them.
    """

    def __init__(self, staging: "Staging", upload: Upload, checksum: Checksum | None):
        self.staging = staging
        self.upload = upload
        self.checksum = checksum
        self.hasher = hashlib.new(checksum.algorithm) if checksum else None
        self.received = 0
        self.crc = upload.crc   # of data[0:offset + received]
        self.overflow = False   # the client sent more than Upload-Length: keep nothing of this PATCH
        with files.translate_errors():
            self.fd = os.open(staging.data_path(upload.id), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            files.truncate(self.fd, upload.offset)
        except BaseException:
            files.close(self.fd)
            raise

    def write(self, chunk: bytes) -> None:
        if self.upload.offset + self.received + len(chunk) > self.upload.length:
            self.overflow = True
            raise BadRequestError(f"Upload-Length of {self.upload.length} bytes exceeded")
        files.append(self.fd, [chunk])
        if self.hasher is not None:
            self.hasher.update(chunk)
        if self.crc is not None:
            self.crc = crc32(chunk, self.crc)
        self.received += len(chunk)

    def checksum_ok(self) -> bool:
        return self.hasher is None or self.hasher.digest() == self.checksum.digest  # type: ignore[union-attr]

    def commit(self, now_s: float) -> Upload:
        """Blocking (fdatasync + atomic state write): run it in a worker thread."""
        try:
            if self.received:
                files.datasync(self.fd)
        finally:
            files.close(self.fd)
        up = self.upload
        if self.received:
            up.offset += self.received
            up.crc = self.crc
            up.state = advance(up.state, Event.CHUNK)
        up.expires_s = now_s + self.staging.limits.expire_s
        self.staging.save(up)
        return up

    def rollback(self) -> None:
        """Nothing of this chunk is kept (checksum mismatch)."""
        try:
            files.truncate(self.fd, self.upload.offset)
        finally:
            files.close(self.fd)


class Staging:
    def __init__(self, root: Path, limits: Limits, free_bytes: Callable[[Path], int] = files.free_bytes):
        self.root = Path(root)
        self.limits = limits
        self.free_bytes = free_bytes
        self.uploads: dict[str, Upload] = {}
        self.damaged: list[durable.Damage] = []   # uploads whose state was damaged (set aside) at open

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, limits: Limits, free_bytes: Callable[[Path], int] = files.free_bytes
             ) -> tuple["Staging", list[str]]:
        """Load every upload, repair what a crash left; returns the staging area and a report."""
        staging = cls(root, limits, free_bytes)
        report: list[str] = []
        for path in staged_folders(staging.root, lambda name: bool(_ID_RE.match(name)), "upload", report,
                                   damaged=staging.damaged):
            up, damage, _ = files.load_state(path / STATE_FILE, Upload.from_json, aside=False)
            if up is None:
                # Damaged (or missing) state: the client's bytes are never deleted on a guess.
                # The whole folder is set aside; the upload is unknown (404) from now on.
                reason = damage.reason if damage is not None else "state file missing"
                aside = durable.set_aside(path, reason)
                staging.damaged.append(aside)
                report.append(f"upload {path.name}: {aside.describe()}")
                continue
            if up.state != State.COMPLETE:
                staging._repair(up, report)
            staging.uploads[up.id] = up
        return staging, report

    def _repair(self, up: Upload, report: list[str]) -> None:
        size = files.file_size(self.data_path(up.id))
        if size is None:
            files.touch(self.data_path(up.id))
            size = 0
        if size < up.offset:   # should not happen (data is synced before state); trust the data
            report.append(f"upload {up.id}: data shorter than its state, offset {up.offset} -> {size}")
            up.offset = size
            up.crc = None if up.crc is None else file_crc(self.data_path(up.id), size)
            self.save(up)
        elif size > up.offset:
            with files.translate_errors():
                os.truncate(self.data_path(up.id), up.offset)

    # --- paths and bookkeeping -------------------------------------------------------------

    def folder(self, upload_id: str) -> Path:
        return self.root / upload_id

    def data_path(self, upload_id: str) -> Path:
        return self.root / upload_id / DATA_FILE

    def save(self, up: Upload) -> None:
        files.write_state(self.folder(up.id) / STATE_FILE, up.to_json())

    def get(self, upload_id: str) -> Upload:
        up = self.uploads.get(upload_id) if _ID_RE.match(upload_id or "") else None
        if up is None:
            raise not_found(upload_id)
        return up

    def in_progress(self) -> list[Upload]:
        return [u for u in self.uploads.values() if u.state in (State.CREATED, State.RECEIVING)]

    def reserved_bytes(self) -> int:
        return sum(u.length for u in self.in_progress())

    # --- creating and removing -------------------------------------------------------------

    def check_limits(self, length: int) -> None:
        lim = self.limits
        if length > lim.max_bytes:
            raise PayloadTooLargeError(f"Upload-Length {length} exceeds the largest upload of {lim.max_bytes} bytes")
        if len(self.in_progress()) >= lim.max_active:
            raise RateLimitedError(f"Too many uploads in progress ({lim.max_active}); finish or terminate one first")
        reserved = self.reserved_bytes()
        if reserved + length > lim.staging_bytes:
            raise DiskFullError(f"Not enough upload staging space: {length} bytes requested, "
                                f"{lim.staging_bytes - reserved} of {lim.staging_bytes} left")
        if self.free_bytes(self.root) < length:
            raise DiskFullError(files.DISK_FULL_MESSAGE)

    def create(self, upload_id: str, length: int, dest: Destination, metadata: str, now_s: float) -> Upload:
        """Blocking: checks the limits, then publishes the folder atomically."""
        if not _ID_RE.match(upload_id):
            raise ValueError(f"bad upload id {upload_id!r}")
        self.check_limits(length)
        up = Upload(upload_id, length, dest, metadata, now_s, now_s + self.limits.expire_s)
        tmp = self.root / f".{upload_id}.tmp"
        files.make_dirs(tmp)
        files.touch(tmp / DATA_FILE)
        files.write_state(tmp / STATE_FILE, up.to_json())
        files.rename(tmp, self.folder(upload_id))
        self.uploads[upload_id] = up
        return up

    def open_chunk(self, up: Upload, checksum: Checksum | None) -> ChunkWriter:
        return ChunkWriter(self, up, checksum)

    def mark_complete(self, up: Upload, now_s: float) -> None:
        """The record is durable: keep only a tombstone (HEAD answers the full offset until expiry)."""
        up.state = advance(up.state, Event.COMMIT)
        up.expires_s = now_s + self.limits.expire_s
        self.save(up)
        if files.unlink(self.data_path(up.id)):
            files.fsync_dir(self.folder(up.id))   # the staged copy must not come back after a power cut

    def set_aside(self, up: Upload, reason: str) -> durable.Damage:
        """Blocking. The upload's staged bytes were found damaged: its folder is set aside whole
        (never deleted: kept for repair, reported at every start until a human removes it) and
        the upload is unknown (404) from now on."""
        self.uploads.pop(up.id, None)
        return durable.set_aside(self.folder(up.id), reason)

    def detach(self, up: Upload, event: Event) -> None:
        """Terminate or expire in memory: from now on the upload is unknown (404), before any I/O."""
        up.state = advance(up.state, event)
        self.uploads.pop(up.id, None)

    def delete(self, upload_id: str) -> None:
        """Blocking: the folder goes, and with it every byte of the upload."""
        folder = self.folder(upload_id)
        # Rename first so a crash half-way through rmtree never leaves a loadable half-upload.
        doomed = self.root / f".{upload_id}.del"
        try:
            files.rename(folder, doomed)
        except Exception:
            doomed = folder
        files.remove_tree(doomed)

    def remove(self, up: Upload, event: Event) -> None:
        self.detach(up, event)
        self.delete(up.id)


class StagedDataDamaged(Exception):
    """The staged bytes no longer match the CRC saved with their offset (rot since they were acknowledged)."""


class StagedSource:
    """An upload's staged ``data`` as a request-like body (``receive_some``) for the store's write.

    Checks ``data_crc32`` on the way: the read that would hand over the last bytes raises
    ``StagedDataDamaged`` instead when the CRC of everything read does not match, so the store
    aborts the record (a body that fails mid-stream is never published) and no damaged byte is
    stored. The reads run in a worker thread (a cold file may need the disk).
    """

    def __init__(self, path: os.PathLike[str] | str, length: int, crc: int | None, chunk_bytes: int):
        with files.translate_errors():
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.pos = 0
        self.length = length
        self.want = crc
        self.crc = 0
        self.chunk_bytes = chunk_bytes

    def read(self, max_bytes: int) -> bytes:
        """Blocking: the next bytes, checked at the end."""
        n = min(max_bytes, self.chunk_bytes, self.length - self.pos)
        if n <= 0:
            return b""
        data = files.pread(self.fd, self.pos, n)
        if len(data) != n:
            raise StagedDataDamaged(f"data is shorter than the {self.length} bytes acknowledged")
        self.pos += n
        if self.want is not None:
            self.crc = crc32(data, self.crc)
            if self.pos == self.length and self.crc != self.want:
                raise StagedDataDamaged(f"data no longer matches its checksum (crc32 {self.crc:08x}, "
                                        f"{self.want:08x} when acknowledged)")
        return data

    def close(self) -> None:
        files.close(self.fd)


def file_crc(path: Path, length: int) -> int:
    """Blocking: CRC-32 of the first ``length`` bytes of ``path``."""
    crc, pos = 0, 0
    with open(path, "rb") as f:
        while pos < length and (data := f.read(min(1 << 20, length - pos))):
            crc = crc32(data, crc)
            pos += len(data)
    return crc


def verify_data(folder: Path) -> str | None:
    """Blocking, for ``edge check``: why an upload's staged ``data`` is damaged, None when it is
    not (or cannot be judged: no readable state, a finished upload, a state without the CRC)."""
    try:
        got = durable.read_state(folder / STATE_FILE)
        up = Upload.from_json(got[0]) if got is not None else None
    except (durable.DamagedStateError, ValueError, KeyError, TypeError, OSError):
        return None           # the state file's own damage is reported as such
    if up is None or up.state == State.COMPLETE or up.crc is None:
        return None
    size = files.file_size(folder / DATA_FILE)
    if size is None or size < up.offset:
        return f"staged upload data shorter than the {up.offset} bytes acknowledged"
    if file_crc(folder / DATA_FILE, up.offset) != up.crc:
        return "staged upload data no longer matches its checksum"
    return None


def new_upload_id() -> str:
    return os.urandom(16).hex()


def wall_now() -> float:
    return time.time()
