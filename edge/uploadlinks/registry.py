"""The registry of upload links, persisted in ``<data>/.edge/upload_links/``.

Owns: upload-link records (one JSON file per link, ``<id>.json``, written atomically: tmp +
fsync + rename + fsync dir), the secret-hash index, the per-link counters (files, bytes),
reservations made by the tus hook, and the small list of uploads received through each link.
Must not: store a secret in clear (only its SHA-256: the secret is 256 random bits, so a fast
hash is enough and lookups stay cheap), import trio, edge.store, edge.http or edge.services.
Synchronous; one lock makes each method atomic, so callers may use worker threads.

Uniform answer: an unknown, revoked or expired secret all raise the same
``NotFoundError(NOT_FOUND_TEXT)``, before anything else is looked at. Only a holder of a live
secret learns more (limits reached, wrong entry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
import enum
from typing import Any, Callable, TypedDict

from .. import durable
from ..errors import BadRequestError, ForbiddenError, InvalidInputError, NotFoundError, PayloadTooLargeError

NOT_FOUND_TEXT = "Upload link not found or has expired"
MAX_RECEIVED = 500          # uploads remembered per link (the listing's "received" table)
MAX_NOTE = 500
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class _Unset(enum.Enum):
    """The default of ``update``'s arguments: "leave unchanged" (None is a value: no limit)."""
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class _UploadLinkChange(TypedDict, total=False):
    """What ``UploadLinkRegistry.update`` may change of an ``UploadLink``."""
    expire_at: int
    max_files: int | None
    max_bytes: int | None
    note: str
U64_MAX = 2**64 - 1


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Received:
    time: float             # unix seconds the upload was created
    client: str
    filename: str
    bytes: int
    upload_id: str = ""


@dataclass(frozen=True)
class UploadLink:
    id: str
    secret_hash: str
    bucket: str
    entry: str
    created_at: int
    expire_at: int
    creator: str
    max_files: int | None = None
    max_bytes: int | None = None
    files: int = 0
    bytes: int = 0
    note: str = ""
    revoked: bool = False
    revoked_at: int | None = None
    updated_at: int = 0
    received: tuple[Received, ...] = ()

    def state(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        if self.expire_at <= now:
            return "expired"
        if self.max_files is not None and self.files >= self.max_files:
            return "full"
        if self.max_bytes is not None and self.bytes >= self.max_bytes:
            return "full"
        return "active"

    def live(self, now: float) -> bool:
        return not self.revoked and self.expire_at > now

    def describe(self, now: float, *, with_received: bool = False) -> dict:
        out = {"id": self.id, "bucket": self.bucket, "entry": self.entry, "created_at": self.created_at,
               "expire_at": self.expire_at, "creator": self.creator, "max_files": self.max_files,
               "max_bytes": self.max_bytes, "files": self.files, "bytes": self.bytes, "note": self.note,
               "revoked": self.revoked, "state": self.state(now)}
        if with_received:
            out["received"] = [dataclasses.asdict(r) for r in self.received]
        return out

    def public(self, now: float) -> dict:
        """What the anonymous upload page may see: where files go and what is left."""
        left_files = None if self.max_files is None else max(0, self.max_files - self.files)
        left_bytes = None if self.max_bytes is None else max(0, self.max_bytes - self.bytes)
        return {"bucket": self.bucket, "entry": self.entry, "expire_at": self.expire_at, "note": self.note,
                "max_files": self.max_files, "max_bytes": self.max_bytes, "files_left": left_files,
                "bytes_left": left_bytes, "state": self.state(now)}


@dataclass(frozen=True)
class Grant:
    """A reservation made at tus creation: released if the creation fails, bound once it exists."""

    link_id: str
    length: int
    index: int          # position in ``received``


def _check_limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= U64_MAX:
        raise InvalidInputError(f"'{name}' must be a positive integer or null")
    return value


def _check_expire_at(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
    return value


class UploadLinkRegistry:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time):
        self.dir = Path(data_dir) / ".edge" / "upload_links"
        self._clock = clock
        self._lock = threading.RLock()
        self._links: dict[str, UploadLink] = {}
        self._by_hash: dict[str, str] = {}
        self.load_report: list[str] = []
        self.damaged: list[durable.Damage] = []   # state files found damaged (set aside) at load
        self.uploads_authorized = 0
        self.uploads_refused = 0

    @classmethod
    def open(cls, data_dir: Path, *, clock: Callable[[], float] = time.time) -> "UploadLinkRegistry":
        reg = cls(data_dir, clock=clock)
        reg._load()
        return reg

    # --- managing ---------------------------------------------------------------------------

    def create(self, *, bucket: str, entry: str, expire_at: int, creator: str, max_files: int | None = None,
               max_bytes: int | None = None, note: str = "", now: float | None = None) -> tuple[UploadLink, str]:
        """A new link and its secret (returned once; only its hash is kept)."""
        _check_expire_at(expire_at)
        _check_limit("max_files", max_files)
        _check_limit("max_bytes", max_bytes)
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise InvalidInputError(f"'note' must be a string of at most {MAX_NOTE} characters")
        t = int(self._now(now))
        secret = secrets.token_urlsafe(32)
        rec = UploadLink(id=secrets.token_urlsafe(16), secret_hash=secret_digest(secret), bucket=bucket,
                         entry=entry, created_at=t, expire_at=expire_at, creator=creator, max_files=max_files,
                         max_bytes=max_bytes, note=note, updated_at=t)
        with self._lock:
            self._store(rec)
        return rec, secret

    def get(self, link_id: str) -> UploadLink:
        rec = self._links.get(link_id)
        if rec is None:
            raise NotFoundError(f"Upload link '{link_id}' is not found")
        return rec

    def list(self, *, bucket: str | None = None) -> list[UploadLink]:
        with self._lock:
            out = [r for r in self._links.values() if bucket is None or r.bucket == bucket]
        return sorted(out, key=lambda r: (r.created_at, r.id))

    def update(self, link_id: str, *, expire_at: object = _UNSET, max_files: object = _UNSET,
               max_bytes: object = _UNSET, note: object = _UNSET, now: float | None = None) -> UploadLink:
        """Change what is given (JSON values as the client sent them, checked here)."""
        changes: _UploadLinkChange = {}
        if not isinstance(expire_at, _Unset):
            changes["expire_at"] = _check_expire_at(expire_at)
        if not isinstance(max_files, _Unset):
            changes["max_files"] = _check_limit("max_files", max_files)
        if not isinstance(max_bytes, _Unset):
            changes["max_bytes"] = _check_limit("max_bytes", max_bytes)
        if not isinstance(note, _Unset):
            if not isinstance(note, str) or len(note) > MAX_NOTE:
                raise InvalidInputError(f"'note' must be a string of at most {MAX_NOTE} characters")
            changes["note"] = note
        with self._lock:
            rec = self.get(link_id)
            if rec.revoked:
                raise InvalidInputError(f"Upload link '{link_id}' is revoked")
            rec = dataclasses.replace(rec, updated_at=int(self._now(now)), **changes)
            self._store(rec)
        return rec

    def revoke(self, link_id: str, now: float | None = None) -> UploadLink:
        with self._lock:
            rec = self.get(link_id)
            if not rec.revoked:
                t = int(self._now(now))
                rec = dataclasses.replace(rec, revoked=True, revoked_at=t, updated_at=t)
                self._store(rec)
        return rec

    # --- using (anonymous) ------------------------------------------------------------------

    def resolve(self, secret: str, now: float | None = None) -> UploadLink:
        """The live link of ``secret``; unknown, revoked and expired all raise the same 404."""
        if not isinstance(secret, str) or not 16 <= len(secret) <= 128:
            raise NotFoundError(NOT_FOUND_TEXT)
        with self._lock:
            link_id = self._by_hash.get(secret_digest(secret))
            rec = self._links.get(link_id) if link_id else None
        if rec is None or not rec.live(self._now(now)):
            raise NotFoundError(NOT_FOUND_TEXT)
        return rec

    def reserve(self, secret: str, *, bucket: str, entry: str, length: int | None, filename: str, client: str,
                now: float | None = None) -> Grant:
        """Count one file of ``length`` bytes against the link, or raise why not (nothing counted)."""
        t = self._now(now)
        with self._lock:
            try:
                rec = self.resolve(secret, t)
                if bucket != rec.bucket or entry != rec.entry:
                    raise ForbiddenError("This upload link only accepts files for its own bucket and entry")
                if length is None:
                    raise BadRequestError("Uploads through an upload link must declare Upload-Length")
                if rec.max_files is not None and rec.files >= rec.max_files:
                    raise ForbiddenError(f"This upload link has received its maximum of {rec.max_files} files")
                if rec.max_bytes is not None and rec.bytes + length > rec.max_bytes:
                    left = max(0, rec.max_bytes - rec.bytes)
                    raise PayloadTooLargeError(f"This upload link accepts at most {left} more bytes")
            except Exception:
                self.uploads_refused += 1
                raise
            received = (rec.received + (Received(t, client, filename[:255], length),))[-MAX_RECEIVED:]
            rec = dataclasses.replace(rec, files=rec.files + 1, bytes=rec.bytes + length, received=received)
            self._store(rec)
            self.uploads_authorized += 1
            return Grant(rec.id, length, len(received) - 1)

    def release(self, grant: Grant) -> None:
        """Undo a reservation whose upload could not be created (quota, conflict ...)."""
        with self._lock:
            rec = self._links.get(grant.link_id)
            if rec is None:
                return
            received = list(rec.received)
            if 0 <= grant.index < len(received) and not received[grant.index].upload_id:
                del received[grant.index]
            rec = dataclasses.replace(rec, files=max(0, rec.files - 1), bytes=max(0, rec.bytes - grant.length),
                                      received=tuple(received))
            self._store(rec)

    def bind(self, grant: Grant, upload_id: str) -> None:
        """Remember which tus upload the reservation became: only it may be continued with the secret."""
        with self._lock:
            rec = self._links.get(grant.link_id)
            if rec is None or not 0 <= grant.index < len(rec.received):
                return
            received = list(rec.received)
            received[grant.index] = dataclasses.replace(received[grant.index], upload_id=upload_id)
            self._store(dataclasses.replace(rec, received=tuple(received)))

    def check_access(self, secret: str, upload_id: str, now: float | None = None) -> UploadLink:
        """HEAD/PATCH/DELETE of an upload with a link secret: only uploads created through it."""
        rec = self.resolve(secret, now)
        if not any(r.upload_id == upload_id for r in rec.received):
            raise NotFoundError(NOT_FOUND_TEXT)
        return rec

    def statistics(self) -> dict[str, int]:
        now = self._now(None)
        with self._lock:
            links = list(self._links.values())
        return {"links": len(links), "active": sum(1 for r in links if r.state(now) == "active"),
                "files": sum(r.files for r in links), "bytes": sum(r.bytes for r in links),
                "authorized": self.uploads_authorized, "refused": self.uploads_refused}

    # --- persistence ------------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _store(self, rec: UploadLink) -> None:
        """Write first, then publish in memory: a failed write leaves the old state everywhere."""
        data = json.dumps(dataclasses.asdict(rec), separators=(",", ":")).encode()
        # dir_mode 0o777 (less the umask): what this registry has always created its folder with.
        durable.write_state_file(self.dir / f"{rec.id}.json", data, failure="Cannot write upload link record",
                                 dir_mode=0o777)
        old = self._links.get(rec.id)
        if old is not None:
            self._by_hash.pop(old.secret_hash, None)
        self._links[rec.id] = rec
        self._by_hash[rec.secret_hash] = rec.id

    def _load(self) -> None:
        def parse(stem: str, doc: Any) -> UploadLink:
            doc["received"] = tuple(Received(**r) for r in doc.get("received", ()))
            return UploadLink(**doc)

        def skipped(path: Path, exc: Exception) -> None:
            self.load_report.append(f"upload link file {path.name} ignored: {exc}")

        for rec in durable.load_json_dir(self.dir, parse, skipped, names=_ID, damaged=self.damaged):
            self._links[rec.id] = rec
            self._by_hash[rec.secret_hash] = rec.id
