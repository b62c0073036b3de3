"""A ``$system`` event and its record: entry path, JSON body, labels.

Owns: ``SystemEvent``; the entry path ``<kind>/<instance>/<name>`` with every segment made a
valid entry-name segment (a host name ``cam.local`` or a token name with spaces must not stop
an event from being written); the flat JSON body ``{"timestamp", "instance", "status",
"message", "type", ...payload}``; the labels (``status`` as text, ``level`` for log events).
Must not: do I/O, know trio, HTTP or the store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping, Union

SYSTEM_BUCKET = "$system"
CONTENT_TYPE = "application/json"
MAX_SEGMENT = 120                # a name longer than this is cut (and stays unique by its hash)

AUDIT, USAGE, LIFECYCLE, REPLICATIONS, LOGS = "audit", "usage", "lifecycle", "replications", "logs"
KINDS = (AUDIT, USAGE, LIFECYCLE, REPLICATIONS, LOGS)

JsonValue = Union[str, int, float, bool, None]

_BAD = re.compile(r"[^A-Za-z0-9_-]")


def segment(name: str) -> str:
    """``name`` as one entry-path segment: letters, digits, ``-`` and ``_`` only (others -> ``_``)."""
    clean = _BAD.sub("_", name.strip()) or "unknown"
    if len(clean) > MAX_SEGMENT:
        import hashlib

        clean = clean[: MAX_SEGMENT - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return clean


@dataclass(frozen=True, slots=True)
class SystemEvent:
    kind: str                     # one of KINDS: the first path segment
    name: str                     # the last path segment (token, bucket, policy, replication, "messages")
    event_type: str               # "api_call", "usage_stats", "lifecycle_run", "replication", "log"
    status: int                   # HTTP-like code
    message: str
    ts_us: int
    payload: Mapping[str, JsonValue] = field(default_factory=dict)
    level: str | None = None      # log events only

    def entry(self, instance: str) -> str:
        return f"{self.kind}/{segment(instance)}/{segment(self.name)}"

    def body(self, instance: str) -> bytes:
        doc: dict[str, JsonValue] = {"timestamp": self.ts_us, "instance": instance, "status": self.status,
                                     "message": self.message, "type": self.event_type}
        for key, value in self.payload.items():
            doc.setdefault(key, value)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def labels(self) -> dict[str, str]:
        labels = {"status": str(self.status)}
        if self.level is not None:
            labels["level"] = self.level
        return labels
