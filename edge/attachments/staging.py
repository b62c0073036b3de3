"""The staging area of attachment uploads in pieces: ``<data>/.edge/attachments/<session>/``.

Owns: the folder layout, creating and loading sessions, writing one piece durably, the
"complete" marker, deleting, and repairing what a crash left. A session gathers the pieces
(``chunk`` 0..``chunks``-1) of one upload; a piece is acknowledged only once its bytes are on
disk, so after ``kill -9`` every acknowledged piece is still there and the upload completes when
the missing ones arrive after the restart.
Must not: import trio, HTTP or services, write records (the service streams the pieces into the
store), or decide when a session expires (the service's reaper does).

Layout of one session folder (published by renaming it from ``.<id>.tmp``):
- ``session.json``: who uploads what (token, file name, piece count, the reserved attachment id,
  the content type if one was given), replaced atomically (tmp + fsync + rename + fsync dir);
- ``<chunk>.<seq>.<sha256>.part``: one piece. Written as ``.<chunk>.<seq>.tmp``, fdatasync'ed,
  then renamed into place and the folder fsync'ed. A retried piece gets a higher ``seq``; the
  highest one wins and older copies are deleted (also at load, if a crash came in between). The
  digest in the name lets a retry be recognised without reading the piece again;
- ``complete.json``: written once the record exists; its presence makes the session a finished
  one (its pieces are deleted), kept for a while so a retried piece gets the same answer.

Both JSON files are checksummed state files (``edge.durable.seal``; files of an earlier version,
without the header, still load). A session whose state is damaged is never guessed at and its
pieces are never deleted: the whole folder is set aside (``<id>.damaged-<time>``, reported in the
log, ``/metrics`` and ``edge check``) and the upload is unknown from then on, as for tus uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from edge import durable
from edge.errors import BadRequestError, NotFoundError, PayloadTooLargeError, RateLimitedError
from edge.store import files
from edge.uploads.staging import Limits, staged_folders

SESSION_FILE = "session.json"
COMPLETE_FILE = "complete.json"
FORMAT_VERSION = 1
MAX_CHUNKS = 10_000
_ID = re.compile(r"[0-9a-f]{32}")
_PIECE = re.compile(r"([0-9]{1,5})\.([0-9]{1,12})\.([0-9a-f]{64})\.part")


def session_key(token: str, filename: str, chunks: int) -> str:
    """Pieces belong together when the same token uploads the same file name in as many pieces."""
    return hashlib.sha256(f"{token}\0{filename}\0{chunks}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Piece:
    index: int
    seq: int
    digest: str
    size: int


@dataclass(frozen=True)
class Completed:
    attachment_id: int
    filename: str                    # as stored (a default name when the upload gave none)
    size: int
    checksum: str
    content_type: str
    digests: tuple[str, ...]
    completed_s: float


@dataclass
class Session:
    id: str
    key: str
    token: str
    filename: str
    chunks: int
    ts_us: int                       # the attachment id, reserved when the first piece arrives
    content_type: str | None
    created_s: float
    touched_s: float
    pieces: dict[int, Piece] = field(default_factory=dict)
    completed: Completed | None = None
    # Pieces equal to the same piece of a recently finished upload of this key: maybe a retry of
    # that upload rather than part of a new one (memory only; see services.attachment_uploads).
    echoes: set[int] = field(default_factory=set)

    @property
    def full(self) -> bool:
        return len(self.pieces) == self.chunks

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces.values())

    def digests(self) -> tuple[str, ...]:
        return tuple(self.pieces[i].digest for i in range(self.chunks))

    def to_json(self) -> bytes:
        return json.dumps({"v": FORMAT_VERSION, "id": self.id, "key": self.key, "token": self.token,
                           "filename": self.filename, "chunks": self.chunks, "ts_us": self.ts_us,
                           "content_type": self.content_type, "created_s": self.created_s,
                           "touched_s": self.touched_s}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Session":
        o = json.loads(raw)
        if o.get("v") != FORMAT_VERSION:
            raise ValueError(f"unknown session version {o.get('v')!r}")
        ctype = o["content_type"]
        return cls(str(o["id"]), str(o["key"]), str(o["token"]), str(o["filename"]), int(o["chunks"]),
                   int(o["ts_us"]), None if ctype is None else str(ctype), float(o["created_s"]),
                   float(o["touched_s"]))


def _completed_to_json(c: Completed) -> bytes:
    return json.dumps({"v": FORMAT_VERSION, "attachment_id": c.attachment_id, "filename": c.filename, "size": c.size,
                       "checksum": c.checksum, "content_type": c.content_type, "digests": list(c.digests),
                       "completed_s": c.completed_s}, separators=(",", ":")).encode()


def _completed_from_json(raw: bytes) -> Completed:
    o = json.loads(raw)
    if o.get("v") != FORMAT_VERSION:
        raise ValueError(f"unknown marker version {o.get('v')!r}")
    return Completed(int(o["attachment_id"]), str(o["filename"]), int(o["size"]), str(o["checksum"]), str(o["content_type"]),
                     tuple(str(d) for d in o["digests"]), float(o["completed_s"]))


class PieceWriter:
    """The bytes of one piece: streamed into a temp file, kept by ``commit`` or dropped by ``abort``."""

    def __init__(self, staging: "AttachmentStaging", session: Session, index: int, max_bytes: int):
        self.staging = staging
        self.session = session
        self.index = index
        self.seq = staging.next_seq(session)
        self.max_bytes = max_bytes
        self.size = 0
        self.hasher = hashlib.sha256()
        self.head = b""                       # the first bytes, for content-type detection
        self.tmp = staging.folder(session.id) / f".{index}.{self.seq}.tmp"
        with files.translate_errors():
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.max_bytes:
            raise PayloadTooLargeError(f"Attachment is larger than {self.max_bytes} bytes")
        files.append(self.fd, [chunk])
        self.hasher.update(chunk)
        if len(self.head) < 4096:
            self.head += chunk[:4096 - len(self.head)]
        self.size += len(chunk)

    def commit(self) -> Piece:
        """Blocking (fdatasync, rename, fsync dir): run it in a worker thread."""
        try:
            files.datasync(self.fd)
        finally:
            files.close(self.fd)
        piece = Piece(self.index, self.seq, self.hasher.hexdigest(), self.size)
        folder = self.staging.folder(self.session.id)
        files.rename(self.tmp, folder / _piece_name(piece))
        files.fsync_dir(folder)
        old = self.session.pieces.get(self.index)
        self.session.pieces[self.index] = piece
        if old is not None and old.seq != piece.seq:
            files.unlink(folder / _piece_name(old))
        return piece

    def abort(self) -> None:
        files.close(self.fd)
        files.unlink(self.tmp)


def _piece_name(p: Piece) -> str:
    return f"{p.index}.{p.seq}.{p.digest}.part"


class AttachmentStaging:
    def __init__(self, root: Path, limits: Limits):
        self.root = Path(root)
        self.limits = limits
        self.sessions: dict[str, Session] = {}
        self.damaged: list[durable.Damage] = []   # sessions set aside at load (now or earlier)

    @classmethod
    def open(cls, root: Path, limits: Limits) -> tuple["AttachmentStaging", list[str]]:
        """Load every session, repair what a crash left; returns the staging area and a report."""
        staging = cls(root, limits)
        report: list[str] = []
        for path in staged_folders(staging.root, lambda name: bool(_ID.fullmatch(name)), "attachment", report,
                                   damaged=staging.damaged):
            session, damage, _ = files.load_state(path / SESSION_FILE, Session.from_json, aside=False)
            if session is not None and session.id != path.name:
                session, damage = None, durable.Damage(path / SESSION_FILE, "id does not match the folder", None)
            marker = None
            if session is not None:
                marker, damage, _ = files.load_state(path / COMPLETE_FILE, _completed_from_json, aside=False)
            if session is None or damage is not None:
                # Damaged (or missing) state: the client's pieces are never deleted on a guess.
                reason = damage.reason if damage is not None else "state file missing"
                aside = durable.set_aside(path, reason)
                staging.damaged.append(aside)
                report.append(f"attachment upload {path.name}: {aside.describe()}")
                continue
            session.completed = marker
            staging._load_pieces(session, path)
            staging.sessions[session.id] = session
        return staging, report

    def _load_pieces(self, session: Session, path: Path) -> None:
        for item in files.list_dir(path):
            if item.name in (SESSION_FILE, COMPLETE_FILE):
                continue
            m = _PIECE.fullmatch(item.name)
            if m is None or session.completed is not None:
                files.unlink(Path(item.path))       # temp files, and pieces of a finished upload
                continue
            piece = Piece(int(m[1]), int(m[2]), m[3], files.file_size(Path(item.path)) or 0)
            if piece.index >= session.chunks:
                files.unlink(Path(item.path))
                continue
            old = session.pieces.get(piece.index)
            if old is None or old.seq < piece.seq:
                session.pieces[piece.index] = piece
                if old is not None:
                    files.unlink(path / _piece_name(old))
            else:
                files.unlink(Path(item.path))

    # --- lookups -------------------------------------------------------------------------------

    def folder(self, session_id: str) -> Path:
        return self.root / session_id

    def piece_paths(self, session: Session) -> list[Path]:
        return [self.folder(session.id) / _piece_name(session.pieces[i]) for i in range(session.chunks)]

    def active(self, key: str) -> Session | None:
        for s in self.sessions.values():
            if s.key == key and s.completed is None:
                return s
        return None

    def finished(self, key: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.key == key and s.completed is not None]

    def reserved_ids(self) -> set[int]:
        return {s.ts_us for s in self.sessions.values() if s.completed is None}

    def staged_bytes(self) -> int:
        return sum(s.size for s in self.sessions.values() if s.completed is None)

    @staticmethod
    def next_seq(session: Session) -> int:
        return max((p.seq for p in session.pieces.values()), default=0) + 1

    # --- changes (blocking: worker threads) ----------------------------------------------------

    def create(self, *, key: str, token: str, filename: str, chunks: int, ts_us: int,
               content_type: str | None, now_s: float) -> Session:
        if not 1 <= chunks <= MAX_CHUNKS:
            raise BadRequestError(f"'chunks' must be between 1 and {MAX_CHUNKS}")
        active = [s for s in self.sessions.values() if s.completed is None]
        if len(active) >= self.limits.max_active:
            raise RateLimitedError(f"Too many uploads in progress (at most {self.limits.max_active})")
        session = Session(secrets.token_hex(16), key, token, filename, chunks, ts_us, content_type, now_s, now_s)
        tmp = self.root / f".{session.id}.tmp"
        files.make_dirs(tmp)
        files.write_state(tmp / SESSION_FILE, session.to_json())
        files.rename(tmp, self.folder(session.id))
        files.fsync_dir(self.root)
        self.sessions[session.id] = session
        return session

    def save(self, session: Session) -> None:
        files.write_state(self.folder(session.id) / SESSION_FILE, session.to_json())

    def open_piece(self, session: Session, index: int) -> PieceWriter:
        if session.completed is not None or session.id not in self.sessions:
            raise NotFoundError("Upload is not in progress")
        if not 0 <= index < session.chunks:
            raise BadRequestError(f"'chunk' must be between 0 and {session.chunks - 1}")
        old = session.pieces.get(index)
        others = session.size - (old.size if old is not None else 0)
        room = self.limits.staging_bytes - self.staged_bytes()
        return PieceWriter(self, session, index, max(0, min(self.limits.max_bytes - others, room)))

    def mark_complete(self, session: Session, completed: Completed) -> None:
        folder = self.folder(session.id)
        files.write_state(folder / COMPLETE_FILE, _completed_to_json(completed))
        session.completed = completed
        for p in list(session.pieces.values()):
            files.unlink(folder / _piece_name(p))
        session.pieces.clear()

    def set_aside(self, session: Session, reason: str) -> durable.Damage:
        """A session found damaged in use: its folder is set aside whole (never deleted, reported
        at each start until repaired) and the upload is unknown from then on."""
        self.sessions.pop(session.id, None)
        return durable.set_aside(self.folder(session.id), reason)

    def delete(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        files.remove_tree(self.folder(session.id))


def damaged_pieces(folder: Path) -> list[Path]:
    """The pieces in a session folder whose bytes no longer hash to the digest in their name
    (blocking; reads every piece: for ``edge check``, which may take its time)."""
    bad = []
    for item in files.list_dir(folder):
        m = _PIECE.fullmatch(item.name)
        if m is None:
            continue
        hasher = hashlib.sha256()
        with open(item.path, "rb") as f:
            while data := f.read(1 << 20):
                hasher.update(data)
        if hasher.hexdigest() != m[3]:
            bad.append(Path(item.path))
    return bad
