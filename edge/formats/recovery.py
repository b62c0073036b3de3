"""Recovery planning for block files: which prefix of a ``.blk`` is good.

Owns: the pure decision "keep bytes [0, good_end), these frames; the rest is torn".
Must not: open, truncate or rename files (store/entry.py carries the plan out and keeps the
torn bytes in ``<block>.torn-<n>`` first), know about indexes or quotas.

Rule: walk frames from offset 0. A short frame (a write cut by a crash), a bad magic or a bad
header crc is a doubt about *where frames are*. Scanning resyncs past it only on proof that the
frames after it are real: a frame offset named by the block's own index (checksummed, so
intact: ``hints``), else the first offset after the doubt where a frame header with a valid crc
starts a chain of whole frames (valid headers) ending exactly at the end of the file, its last
payload good. The bytes between are ``skipped``: left in place, never indexed (the record
whose header rotted is lost, and never served), and the intact records after them are kept.
Without such proof everything from the doubt on is torn, as a write cut by a crash is: the tail
of the file, with no whole frame after it. A frame hidden inside a record's payload (a stored
block file) cannot pass for a resync point: its chain ends where that payload ends, at the
record's trailer, not at the end of the file. The search is bounded (``MAX_RESYNC_TRIES``
candidate offsets per doubt).

A whole frame whose header checks out but whose payload crc does not (rot inside one record) is
different: its length is trusted, so the next frame is located exactly. Such a frame is
``damaged`` -- left in place, never indexed -- and scanning goes on, so the intact records after
it are still served. Only when no good frame follows it is it the tail of a write that was never
acknowledged, and then it is torn like any other tail.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import Sequence

from edge.errors import CorruptRecordError
from edge.formats.frame import MAGIC, NEED_MORE, Frame, decode_frame, payload_ok

MAGIC_BYTES = struct.pack(">I", MAGIC)
MAX_RESYNC_TRIES = 4096   # candidate offsets (a magic) tried after one doubt before calling it torn


@dataclass(frozen=True)
class RecoveryPlan:
    good_end: int  # truncate the block to this size
    frames: list[Frame] = field(default_factory=list)  # whole, verified frames in file order
    torn_bytes: int = 0  # len(data) - good_end
    reason: str = ""  # why scanning stopped early ("" when the whole block is good)
    damaged: list[Frame] = field(default_factory=list)  # whole frames with a bad payload, skipped
    skipped: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, why): unreadable
                                                                       # bytes with good frames after

    @property
    def clean(self) -> bool:
        return self.torn_bytes == 0


def scan(data: bytes | memoryview, verify_payload: bool = True, hints: Sequence[int] = ()) -> RecoveryPlan:
    """The plan for one block file's bytes; ``hints``: frame offsets from its intact index."""
    frames: list[Frame] = []
    damaged: list[Frame] = []
    skipped: list[tuple[int, int, str]] = []
    suspects: list[Frame] = []  # bad payloads after the last good frame: damaged only if one follows
    pos = good_end = 0
    reason = ""
    n = len(data)
    marks = sorted(hints)
    while pos < n:
        try:
            frame = decode_frame(data, pos, verify_payload=False)
            doubt = "" if frame is not NEED_MORE else f"incomplete frame at offset {pos}"
        except CorruptRecordError as exc:
            frame, doubt = NEED_MORE, exc.message
        if doubt:
            nxt = _resync(data, pos, marks, verify_payload)
            if nxt is None:
                reason = doubt
                break
            skipped.append((pos, nxt, doubt))
            damaged += suspects
            suspects.clear()
            pos = nxt
            continue
        assert isinstance(frame, Frame)
        if verify_payload and not payload_ok(data, frame):
            suspects.append(frame)
            pos = frame.end
            continue
        damaged += suspects
        suspects.clear()
        frames.append(frame)
        pos = good_end = frame.end
    if suspects and not reason:
        first = suspects[0]
        reason = f"Bad payload crc of record {first.head.ts_us} at offset {first.offset}"
    return RecoveryPlan(good_end, frames, n - good_end, reason, damaged, skipped)


def _resync(data: bytes | memoryview, pos: int, marks: list[int], verify_payload: bool) -> int | None:
    """Where frames surely start again after a doubt at ``pos``, or None (see the module rule)."""
    for at in marks[bisect.bisect_right(marks, pos):]:
        if isinstance(_whole(data, at), Frame):
            return at               # the index placed a frame here and its header checks out
    raw = data if isinstance(data, bytes) else bytes(data)
    at = pos
    for _ in range(MAX_RESYNC_TRIES):
        at = raw.find(MAGIC_BYTES, at + 1)
        if at < 0:
            return None
        if _chains_to_end(data, at, verify_payload):
            return at
    return None


def _whole(data: bytes | memoryview, at: int) -> Frame | None:
    try:
        frame = decode_frame(data, at, verify_payload=False)
    except CorruptRecordError:
        return None
    return frame if isinstance(frame, Frame) else None


def _chains_to_end(data: bytes | memoryview, at: int, verify_payload: bool) -> bool:
    """Whole frames with valid headers from ``at`` to exactly the end, the last payload good."""
    last = None
    while at < len(data):
        last = _whole(data, at)
        if last is None:
            return False
        at = last.end
    return last is not None and (not verify_payload or payload_ok(data, last))
