"""The durable outbox: every mail is a file before anyone is told it was queued.

Owns: ``<data>/.edge/outbox/<mail id>.json`` (one file per mail, written atomically: tmp +
fsync + rename + fsync dir), the states ``queued -> sending -> sent`` / ``failed`` with
``attempts``, ``next_attempt_at`` and ``last_error``, crash recovery at open, the per-token
history used by the hourly limit, and pruning of old finished mails.
Must not: talk SMTP or compose mails, import trio, edge.http or edge.services. Synchronous; a
lock makes each method atomic, so the sender's worker thread may mark mails while handlers queue.

Delivery guarantee: a mail is marked ``sending`` (on disk) before its SMTP transaction starts
and ``sent`` right after the server accepted it. A crash in between leaves ``sending`` on disk,
which ``open`` turns back into ``queued``: that mail goes out at most twice; every other mail
exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypedDict, Unpack

from .. import durable

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
STATES = (QUEUED, SENDING, SENT, FAILED)
SCHEMA = 1
KEEP_FINISHED_S = 7 * 86400       # sent/failed mails stay listed this long
MAX_FINISHED = 1000               # ... and at most this many of them
MAX_ERROR = 500


def new_mail_id(now: float) -> str:
    """Time-ordered (microseconds, 17 digits) + random: sorting the names gives queue order."""
    return f"{int(now * 1_000_000):017d}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Mail:
    id: str
    kind: str                         # "share" | "receipt"
    token: str                        # who caused it (token name), for the hourly limit
    sender: str                       # envelope MAIL FROM
    recipients: tuple[str, ...]       # envelope RCPT TO
    subject: str
    raw: str                          # the whole message, CRLF, ASCII
    created_at: float
    link_ids: tuple[str, ...] = ()
    state: str = QUEUED
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    sent_at: float | None = None
    updated_at: float = 0.0
    covers_until: float | None = None  # receipts: time of the last download included (restart recovery)

    def describe(self) -> dict:
        """The listing shape: never the body (it holds bearer links)."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "token": self.token,
                "recipients": list(self.recipients), "subject": self.subject,
                "link_ids": list(self.link_ids), "created_at": self.created_at,
                "attempts": self.attempts, "next_attempt_at": self.next_attempt_at,
                "last_error": self.last_error, "sent_at": self.sent_at}


class _MailChange(TypedDict, total=False):
    """What ``Outbox._change`` may change of a ``Mail``."""
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    sent_at: float | None


class Outbox:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time):
        self.dir = Path(data_dir) / ".edge" / "outbox"
        self._clock = clock
        self._lock = threading.RLock()
        self._mails: dict[str, Mail] = {}
        self.load_report: list[str] = []
        self.damaged: list[durable.Damage] = []   # state files found damaged (set aside) at load
        self._load()

    @classmethod
    def open(cls, data_dir: Path, *, clock: Callable[[], float] = time.time) -> "Outbox":
        """Load every mail; a mail left ``sending`` by a crash goes back to ``queued``."""
        return cls(data_dir, clock=clock)

    # --- queueing -----------------------------------------------------------------------------

    def enqueue(self, *, kind: str, token: str, sender: str, recipients: list[str] | tuple[str, ...],
                subject: str, raw: str, link_ids: tuple[str, ...] | list[str] = (),
                covers_until: float | None = None, now: float | None = None) -> Mail:
        now = self._clock() if now is None else now
        mail = Mail(id=new_mail_id(now), kind=kind, token=token, sender=sender,
                    recipients=tuple(recipients), subject=subject, raw=raw, created_at=now,
                    link_ids=tuple(link_ids), next_attempt_at=now, updated_at=now,
                    covers_until=covers_until)
        with self._lock:
            self._store(mail)
        return mail

    # --- the sender's view ---------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 50) -> list[Mail]:
        now = self._clock() if now is None else now
        with self._lock:
            ready = [m for m in self._mails.values() if m.state == QUEUED and m.next_attempt_at <= now]
        return sorted(ready, key=lambda m: m.id)[:limit]

    def next_due_at(self) -> float | None:
        with self._lock:
            times = [m.next_attempt_at for m in self._mails.values() if m.state == QUEUED]
        return min(times) if times else None

    def mark_sending(self, mail_id: str) -> Mail:
        with self._lock:
            return self._change(mail_id, state=SENDING, attempts=self._mails[mail_id].attempts + 1)

    def mark_sent(self, mail_id: str, now: float | None = None) -> Mail:
        now = self._clock() if now is None else now
        return self._change(mail_id, state=SENT, sent_at=now, last_error=None, now=now)

    def mark_retry(self, mail_id: str, error: str, next_attempt_at: float, *, count_attempt: bool = False) -> Mail:
        """Back to ``queued`` until ``next_attempt_at``; ``count_attempt`` when it was never marked sending."""
        with self._lock:
            attempts = self._mails[mail_id].attempts + (1 if count_attempt else 0)
            return self._change(mail_id, state=QUEUED, attempts=attempts, last_error=error[:MAX_ERROR],
                                next_attempt_at=next_attempt_at)

    def mark_failed(self, mail_id: str, error: str, *, count_attempt: bool = False) -> Mail:
        with self._lock:
            attempts = self._mails[mail_id].attempts + (1 if count_attempt else 0)
            return self._change(mail_id, state=FAILED, attempts=attempts, last_error=error[:MAX_ERROR])

    # --- reading ------------------------------------------------------------------------------

    def get(self, mail_id: str) -> Mail:
        with self._lock:
            return self._mails[mail_id]

    def list(self, state: str | None = None) -> list[Mail]:
        with self._lock:
            mails = list(self._mails.values())
        return sorted((m for m in mails if state is None or m.state == state), key=lambda m: m.id)

    def count_since(self, token: str, since: float, kind: str = "share") -> int:
        """Mails of ``kind`` queued by ``token`` since ``since`` (any state): the hourly limit."""
        with self._lock:
            return sum(1 for m in self._mails.values()
                       if m.token == token and m.kind == kind and m.created_at >= since)

    def receipt_marks(self) -> dict[str, float]:
        """link id -> time of the last download already put into a receipt mail."""
        marks: dict[str, float] = {}
        with self._lock:
            for m in self._mails.values():
                if m.kind == "receipt" and m.covers_until is not None:
                    for link_id in m.link_ids:
                        marks[link_id] = max(marks.get(link_id, 0.0), m.covers_until)
        return marks

    def prune(self, now: float | None = None) -> int:
        """Forget finished mails older than ``KEEP_FINISHED_S`` or beyond ``MAX_FINISHED``."""
        now = self._clock() if now is None else now
        with self._lock:
            done = sorted((m for m in self._mails.values() if m.state in (SENT, FAILED)),
                          key=lambda m: m.id, reverse=True)
            drop = [m for i, m in enumerate(done)
                    if i >= MAX_FINISHED or m.updated_at < now - KEEP_FINISHED_S]
            for m in drop:
                try:
                    (self.dir / f"{m.id}.json").unlink(missing_ok=True)
                except OSError:
                    continue        # tried again at the next prune
                del self._mails[m.id]
            if drop:
                try:
                    durable.fsync_dir(self.dir)   # pruned mails must not come back after a power cut
                except OSError:
                    pass            # the next prune removes them again
        return len(drop)

    # --- persistence --------------------------------------------------------------------------

    def _change(self, mail_id: str, now: float | None = None, **changes: Unpack[_MailChange]) -> Mail:
        with self._lock:
            mail = dataclasses.replace(self._mails[mail_id], updated_at=self._clock() if now is None else now,
                                       **changes)
            self._store(mail)
            return mail

    def _store(self, mail: Mail) -> None:
        """Write first, then publish in memory: a failed write leaves the old state everywhere."""
        data = dataclasses.asdict(mail)
        data["v"] = SCHEMA
        durable.write_state_file(self.dir / f"{mail.id}.json", json.dumps(data, separators=(",", ":")).encode(),
                                 failure="Cannot write to the mail outbox")
        self._mails[mail.id] = mail

    def _load(self) -> None:
        def parse(stem: str, d: Any) -> Mail:
            if d.pop("v", None) != SCHEMA:
                raise ValueError("unknown schema version")
            d["recipients"] = tuple(d["recipients"])
            d["link_ids"] = tuple(d.get("link_ids", ()))
            mail = Mail(**d)
            if mail.id != stem or mail.state not in STATES:
                raise ValueError("id or state does not fit")
            return mail

        def skipped(path: Path, exc: Exception) -> None:
            self.load_report.append(f"skipped outbox file {path.name}: {exc}")

        for mail in durable.load_json_dir(self.dir, parse, skipped, damaged=self.damaged):
            self._mails[mail.id] = mail
            if mail.state == SENDING:
                # Crashed mid-send: we cannot know whether the server took it. Send again
                # (at most twice) rather than lose it.
                self._store(dataclasses.replace(mail, state=QUEUED, next_attempt_at=0.0,
                                                last_error=mail.last_error or "interrupted while sending"))
                self.load_report.append(f"mail {mail.id} was being sent at a crash: queued again")
