"""Recovery planning for block files: which prefix of a ``.blk`` is good.

Owns: the pure decision "keep bytes [0, good_end), these frames; the rest is torn".
Must not: open, truncate or rename files (store/entry.py carries the plan out and keeps the
torn bytes in ``<block>.torn-<n>`` first), know about indexes or quotas.

Rule: walk frames from offset 0 and stop at the first doubt -- a short frame (a write cut by a
crash), a bad magic, a bad header crc or a bad payload crc. Everything before is kept, everything
from there on is torn. Stopping at the first doubt is deliberate: frames after a bad one cannot be
located reliably, and the torn file preserves them for a human.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import CorruptRecordError
from edge.formats.frame import NEED_MORE, Frame, decode_frame


@dataclass(frozen=True)
class RecoveryPlan:
    good_end: int  # truncate the block to this size
    frames: list[Frame] = field(default_factory=list)  # whole, verified frames in file order
    torn_bytes: int = 0  # len(data) - good_end
    reason: str = ""  # why scanning stopped early ("" when the whole block is good)

    @property
    def clean(self) -> bool:
        return self.torn_bytes == 0


def scan(data: bytes | memoryview, verify_payload: bool = True) -> RecoveryPlan:
    frames: list[Frame] = []
    pos = 0
    reason = ""
    n = len(data)
    while pos < n:
        try:
            frame = decode_frame(data, pos, verify_payload)
        except CorruptRecordError as exc:
            reason = exc.message
            break
        if frame is NEED_MORE:
            reason = f"incomplete frame at offset {pos}"
            break
        assert isinstance(frame, Frame)
        frames.append(frame)
        pos = frame.end
    return RecoveryPlan(pos, frames, n - pos, reason)
