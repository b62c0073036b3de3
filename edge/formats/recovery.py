"""Recovery planning for block files: which prefix of a ``.blk`` is good.

Owns: the pure decision "keep bytes [0, good_end), these frames; the rest is torn".
Must not: open, truncate or rename files (store/entry.py carries the plan out and keeps the
torn bytes in ``<block>.torn-<n>`` first), know about indexes or quotas.

Rule: walk frames from offset 0 and stop at the first doubt about *where frames are* -- a short
frame (a write cut by a crash), a bad magic or a bad header crc. Everything before is kept,
everything from there on is torn. Stopping there is deliberate: frames after a bad header cannot
be located reliably, and the torn file preserves them for a human.

A whole frame whose header checks out but whose payload crc does not (rot inside one record) is
different: its length is trusted, so the next frame is located exactly. Such a frame is
``damaged`` -- left in place, never indexed -- and scanning goes on, so the intact records after
it are still served. Only when no good frame follows it is it the tail of a write that was never
acknowledged, and then it is torn like any other tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import CorruptRecordError
from edge.formats.frame import NEED_MORE, Frame, decode_frame, payload_ok


@dataclass(frozen=True)
class RecoveryPlan:
    good_end: int  # truncate the block to this size
    frames: list[Frame] = field(default_factory=list)  # whole, verified frames in file order
    torn_bytes: int = 0  # len(data) - good_end
    reason: str = ""  # why scanning stopped early ("" when the whole block is good)
    damaged: list[Frame] = field(default_factory=list)  # whole frames with a bad payload, skipped

    @property
    def clean(self) -> bool:
        return self.torn_bytes == 0


def scan(data: bytes | memoryview, verify_payload: bool = True) -> RecoveryPlan:
    frames: list[Frame] = []
    damaged: list[Frame] = []
    suspects: list[Frame] = []  # bad payloads after the last good frame: damaged only if one follows
    pos = good_end = 0
    reason = ""
    n = len(data)
    while pos < n:
        try:
            frame = decode_frame(data, pos, verify_payload=False)
        except CorruptRecordError as exc:
            reason = exc.message
            break
        if frame is NEED_MORE:
            reason = f"incomplete frame at offset {pos}"
            break
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
    return RecoveryPlan(good_end, frames, n - good_end, reason, damaged)
