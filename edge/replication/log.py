"""The transaction log of one replication: what is still to be sent, durable and bounded.

Owns: the folder ``<data>/.edge/replications/<name>/`` with
  ``<first seq, 20 digits>.seg``  append-only segments of CRC-framed events, and
  ``cursor``                      the sequence number of the first event not yet delivered.
Must not: import trio, know HTTP or the store's records (an event is only (entry, ts[, update])),
or fsync on its own in ``append`` (it hands back a ``Durability`` that joins group commit).

Frame: ``u32 length | u32 crc32(payload) | payload``, payload = ``u64 seq | u8 kind | u64 ts |
u16 len(entry) | entry utf-8 | update JSON (kind U only)``. Every event has a sequence number,
one more than the previous; a segment holds at most ``segment_events`` events.

Durability. ``append`` writes the frame with one ``writev`` (it is in the page cache at once, so
a SIGKILL cannot lose it) and returns a Durability holding the segment fd (and the folder when a
segment was created). The write hook merges it into the write's own Durability, so the record
and its log event are fsynced by the same group commit before the client gets 200.

The cursor is written without fsync (two CRC'd slots, alternately): losing its last advance
after a power cut only re-sends events, and the destination answers 409 for records it already
has, which counts as delivered. A cursor older than the oldest segment means "from the oldest".

Bounded: when more than ``limit`` events are pending, the oldest are dropped (the cursor jumps)
and counted in ``dropped``; segments wholly behind the cursor are deleted (compaction).
Recovery: a torn tail of the last segment (short frame or bad CRC) is truncated at open. An
older segment is complete by construction (it holds exactly the events up to the next segment's
first seq), so damage in it shows as the reader reaching its end early: the events it can no
longer read are counted in ``damaged_events``, reported in ``report`` (the service logs it and
sets an error in the replication's diagnostics) and skipped, and reading goes on in the next
segment. Scanning every older segment at open instead would read every pending event (up to
``limit``) at each start; ``verify`` (``edge check``) reads them all offline.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..store import files

WRITE = 0x57   # "W"
UPDATE = 0x55  # "U"
_HEAD = struct.Struct(">II")
_FIXED = struct.Struct(">QBQH")
_SLOT = struct.Struct(">QQQI")   # seq, dropped, generation, crc
SLOT_SIZE = 32
READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: int
    entry: str
    ts_us: int
    update: Mapping[str, str] | None = None


def encode(seq: int, kind: int, entry: str, ts_us: int, update: Mapping[str, str] | None = None) -> bytes:
    name = entry.encode()
    payload = _FIXED.pack(seq, kind, ts_us, len(name)) + name
    if kind == UPDATE:
        payload += json.dumps(dict(update or {}), separators=(",", ":")).encode()
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def decode_frames(data: bytes | memoryview, limit: int | None = None, min_seq: int = 0) -> tuple[list[Event], int]:
    """Whole valid frames from the start of ``data``; returns (events, bytes consumed).

    At most ``limit`` events are returned (the reader takes a few hundred from a 1 MiB chunk of
    tens of thousands: decoding them all at every read made catch-up quadratic); frames with a
    seq below ``min_seq`` are checked and consumed but not returned (nor decoded past their seq).
    """
    events: list[Event] = []
    pos, view = 0, memoryview(data)
    size = len(view)
    while pos + _HEAD.size <= size and (limit is None or len(events) < limit):
        length, crc = _HEAD.unpack_from(view, pos)
        end = pos + _HEAD.size + length
        if length < _FIXED.size or end > size:
            break
        payload = view[pos + _HEAD.size:end]
        if zlib.crc32(payload) != crc:
            break
        seq, kind, ts, n = _FIXED.unpack_from(payload, 0)
        pos = end
        if seq < min_seq:
            continue
        entry = bytes(payload[_FIXED.size:_FIXED.size + n]).decode()
        update = json.loads(bytes(payload[_FIXED.size + n:])) if kind == UPDATE else None
        events.append(Event(seq, kind, entry, ts, update))
    return events, pos


def verify(path: Path) -> list[str]:
    """What is damaged in the log folder ``path``, without changing anything (``edge check``):
    segments whose frames stop before their end, and cursor slots that do not check."""
    found = []
    for e in sorted(files.list_dir(path), key=lambda e: e.name):
        if e.name.endswith(".seg"):
            data = files.read_file(Path(e.path)) or b""
            _, used = decode_frames(data)
            if used < len(data):
                found.append(f"{e.name}: frames end at byte {used} of {len(data)} (torn or damaged)")
        elif e.name == "cursor":
            raw = files.read_file(Path(e.path)) or b""
            for i in range(2):
                slot = raw[i * SLOT_SIZE:(i + 1) * SLOT_SIZE]
                if any(slot) and (len(slot) < _SLOT.size or zlib.crc32(slot[:24]) != _SLOT.unpack_from(slot)[3]
                                  or any(slot[_SLOT.size:])):
                    found.append(f"cursor: slot {i} damaged")
    return found


def _seg_name(first: int) -> str:
    return f"{first:020d}.seg"


class ReplicationLog:
    def __init__(self, path: Path, limit: int = 1_000_000, segment_events: int = 65_536):
        self.path = Path(path)
        self.limit = max(1, limit)
        self.segment_events = segment_events
        self.dropped = 0              # events dropped because the log was full (total, persisted)
        self.recovered_bytes = 0      # torn tail cut at open
        self.damaged_events = 0       # events of older segments found unreadable while reading
        self.report: list[str] = []   # what opening found damaged or cut (the service logs it)
        self._segments: list[int] = []   # first seq of every segment, ascending
        self._head = 0                # seq of the next event to append
        self.cursor = 0               # seq of the first undelivered event
        self._fd: int | None = None   # active (last) segment, O_APPEND
        self._active_count = 0
        self._gen = 0
        self._cursor_fd: int | None = None
        # reader: where the next read() continues (may be ahead of the cursor: events in flight)
        self._r_seq = 0
        self._r_seg: int | None = None
        self._r_off = 0
        self._r_fd: int | None = None

    # --- opening and recovery --------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, limit: int = 1_000_000, segment_events: int = 65_536) -> "ReplicationLog":
        log = cls(path, limit, segment_events)
        log._load()
        return log

    def _load(self) -> None:
        files.make_dirs(self.path)
        self._segments = sorted(int(e.name[:-4]) for e in files.list_dir(self.path)
                                if e.name.endswith(".seg") and e.name[:-4].isdigit())
        self.cursor, self.dropped, self._gen = self._read_cursor()
        if not self._segments:
            self._head = self.cursor
            self._new_segment(self._head)
        else:
            last = self._segments[-1]
            with files.translate_errors():
                fd = os.open(self.path / _seg_name(last), os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            count, end = self._scan_tail(fd)
            size = files.fd_size(fd)
            if end < size:  # torn tail: a frame that never completed (or bit rot at the end)
                self.recovered_bytes = size - end
                self.report.append(f"{self.path / _seg_name(last)}: {size - end} bytes after event {last + count - 1} cut "
                                   "(a torn write or a damaged frame); events in them are lost")
                files.truncate(fd, end)
                files.datasync(fd)
            self._fd, self._active_count, self._head = fd, count, last + count
        self.cursor = min(max(self.cursor, self._segments[0]), self._head)
        self._r_seq = self.cursor

    def _scan_tail(self, fd: int) -> tuple[int, int]:
        count = end = 0
        while True:
            data = files.pread(fd, end, READ_CHUNK)
            if not data:
                return count, end
            events, used = decode_frames(data)
            if not events:
                # One frame bigger than the chunk? Read exactly that frame, else it is torn.
                if len(data) >= _HEAD.size:
                    length, _ = _HEAD.unpack_from(data, 0)
                    big = files.pread(fd, end, _HEAD.size + length)
                    events, used = decode_frames(big)
                if not events:
                    return count, end
            count += len(events)
            end += used

    def _read_cursor(self) -> tuple[int, int, int]:
        with files.translate_errors():
            self._cursor_fd = os.open(self.path / "cursor", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        raw = files.pread(self._cursor_fd, 0, 2 * SLOT_SIZE)
        best = (0, 0, 0)
        for i in range(2):
            slot = raw[i * SLOT_SIZE:i * SLOT_SIZE + _SLOT.size]
            if len(slot) < _SLOT.size:
                continue
            seq, dropped, gen, crc = _SLOT.unpack(slot)
            if zlib.crc32(slot[:24]) != crc:
                if any(slot):
                    self.report.append(f"cursor: slot {i} damaged; the other slot is used (events after it "
                                       "may be sent again)")
                continue
            if any(raw[i * SLOT_SIZE + _SLOT.size:(i + 1) * SLOT_SIZE]):
                self.report.append(f"cursor: padding of slot {i} damaged (the slot itself checks)")
            if gen >= best[2]:
                best = (seq, dropped, gen)
        return best

    def _write_cursor(self) -> None:
        self._gen += 1
        body = struct.pack(">QQQ", self.cursor, self.dropped, self._gen)
        slot = body + struct.pack(">I", zlib.crc32(body))
        assert self._cursor_fd is not None  # opened by the start-up read, until close()
        with files.translate_errors():
            os.pwrite(self._cursor_fd, slot, (self._gen % 2) * SLOT_SIZE)

    def _new_segment(self, first: int) -> None:
        if self._fd is not None:
            files.close(self._fd)
        with files.translate_errors():
            self._fd = os.open(self.path / _seg_name(first), os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o644)
        self._segments.append(first)
        self._active_count = 0

    # --- writing ---------------------------------------------------------------------------

    @property
    def head(self) -> int:
        return self._head

    @property
    def pending(self) -> int:
        return self._head - self.cursor

    def append(self, kind: int, entry: str, ts_us: int, update: Mapping[str, str] | None = None) -> files.Durability:
        """Log one event; the returned Durability must be synced before the write is acknowledged."""
        durability = files.Durability()
        if self._active_count >= self.segment_events:
            self._new_segment(self._head)
            durability.add_dir(self.path)
        fd = self._fd
        assert fd is not None  # the active segment is open from the start until close()
        files.append(fd, [encode(self._head, kind, entry, ts_us, update)])
        durability.add_fd(f"replog:{self.path}:{self._segments[-1]}", fd)
        self._head += 1
        self._active_count += 1
        if self.pending > self.limit:
            lost = self.pending - self.limit
            self.dropped += lost
            self.cursor += lost
            self._write_cursor()
            self._compact()
        return durability

    # --- reading and delivering ------------------------------------------------------------

    def read(self, max_events: int) -> list[Event]:
        """Up to ``max_events`` events after the last read (from the cursor after ``rewind``)."""
        if self._r_seq < self.cursor:
            self._r_seq, self._r_seg = self.cursor, None   # the log dropped what we were at
        out: list[Event] = []
        while len(out) < max_events and self._r_seq < self._head:
            if self._r_seg is None:
                self._position(self._r_seq)
            r_fd, r_seg = self._r_fd, self._r_seg
            assert r_fd is not None and r_seg is not None  # _position opened a segment
            buf = files.pread(r_fd, self._r_off, READ_CHUNK)
            # Frames before the cursor are consumed, not returned.
            events, used = decode_frames(buf, max_events - len(out), self._r_seq)
            if not used and len(buf) >= _HEAD.size:   # one frame larger than READ_CHUNK
                length, _ = _HEAD.unpack_from(buf, 0)
                buf = files.pread(r_fd, self._r_off, _HEAD.size + length)
                events, used = decode_frames(buf, max_events - len(out), self._r_seq)
            if not used:
                # End of this segment: continue in the next one, if there is one yet.
                nxt = [s for s in self._segments if s > r_seg]
                if not nxt:
                    break
                if self._r_seq < nxt[0]:   # a complete segment that ends early: damaged frames
                    lost = nxt[0] - self._r_seq
                    self.damaged_events += lost
                    self.report.append(f"{self.path / _seg_name(r_seg)}: events {self._r_seq}..{nxt[0] - 1} cannot be "
                                       f"read (a damaged frame at byte {self._r_off}); {lost} event(s) skipped")
                    self._r_seq = nxt[0]
                self._open_reader(nxt[0])
                continue
            if events:
                out.extend(events)
                self._r_seq = events[-1].seq + 1
            self._r_off += used
        return out

    def _position(self, seq: int) -> None:
        first = max((s for s in self._segments if s <= seq), default=self._segments[0])
        self._open_reader(first)

    def _open_reader(self, first: int) -> None:
        if self._r_fd is not None:
            files.close(self._r_fd)
        with files.translate_errors():
            self._r_fd = os.open(self.path / _seg_name(first), os.O_RDONLY | os.O_CLOEXEC)
        self._r_seg, self._r_off = first, 0

    def rewind(self) -> None:
        """Forget events read but not committed: the next read starts at the cursor again."""
        self._r_seq, self._r_seg = self.cursor, None

    def commit(self, next_seq: int) -> None:
        """Everything before ``next_seq`` is delivered: advance (never move back) and compact."""
        if next_seq <= self.cursor:
            return
        self.cursor = min(next_seq, self._head)
        self._write_cursor()
        self._compact()

    def _compact(self) -> None:
        # A segment is garbage when the next one starts at or before the cursor.
        while len(self._segments) > 1 and self._segments[1] <= self.cursor:
            first = self._segments.pop(0)
            if self._r_seg == first and self._r_fd is not None:
                files.close(self._r_fd)
                self._r_fd, self._r_seg = None, None
            files.unlink(self.path / _seg_name(first))

    def segment_count(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        for fd in (self._fd, self._r_fd, self._cursor_fd):
            if fd is not None:
                files.close(fd)
        self._fd = self._r_fd = self._cursor_fd = None

    def destroy(self) -> None:
        """Close and delete the whole folder (replication removed), durably: the folder is first
        renamed to a hidden ``.<name>.removed`` name and that rename fsynced, so a power cut can
        never bring back stale events under the name (a new replication of the same name would
        send them); ``sweep`` removes what a cut left of the hidden folder."""
        self.close()
        doomed = self.path.with_name(f".{self.path.name}.removed")
        try:
            shutil.rmtree(doomed, ignore_errors=True)
            files.rename(self.path, doomed)
        except Exception:   # noqa: BLE001 - gone already, or the rename failed: delete in place
            doomed = self.path
        shutil.rmtree(doomed, ignore_errors=True)
        files.fsync_dir(self.path.parent)


def sweep(logs_dir: Path, keep: set[str]) -> list[str]:
    """Remove log folders that belong to no replication (``keep``: their folder names) and the
    leftovers of an interrupted ``destroy``; returns what was removed."""
    removed = []
    for e in files.list_dir(logs_dir):
        if e.is_dir(follow_symlinks=False) and e.name not in keep:
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(e.name)
    if removed:
        files.fsync_dir(logs_dir)
    return removed

