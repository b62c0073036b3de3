"""The server-side record of every share link, persisted in ``<data>/.edge/links/``.

Owns: link records (one small JSON file per link, ``<id>.json``, written atomically: tmp +
fsync + rename + fsync dir), the digest index used to find a link from its token, download
counters, sessions and receipts, and the order of checks when a link is used.
Must not: store a token or a password in clear (only ``SHA-256(ct)``, an scrypt hash, and
optionally a copy of the URL parameters sealed under the server key), decide HTTP details
(``rules.py``), import trio, edge.store or edge.http. Synchronous; a lock makes each method
atomic, so handlers may call it from worker threads.

Resolution: ``find`` (by the digest of a native ``ct``) and ``get`` (by id) are dict lookups; the
order of checks and the one-scrypt rule for offered passwords (``password_matches``) belong to
``edge/http/link_access.py``, which all link URLs share.
Counting rule: see ``rules.py`` (sessions; HEAD/416 are never recorded by the handler).
One file per link keeps each write small and a torn write loses at most one link's latest
update; receipts live in the same file, bounded to ``MAX_RECEIPTS``.

One registry for three APIs: a link made through our own API (``origin`` ``native``), the
Mediapocket shareable-link API or the LiquidFiles FileLink API is the same kind of record. Its
random ``id`` is the LiquidFiles FileLink id and the Mediapocket key (so every link URL finds it);
``serial`` is the small integer Mediapocket scripts call the link ``id`` (assigned once, in
creation order, never reused). Only native links have a sealed ``ct`` (``token_hash``); the others
are found by id.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
import enum
from typing import Any, Literal, TypedDict

from .. import durable
from ..errors import InvalidInputError, LinkInvalidError, NotFoundError
from . import rules
from .seal import seal, token_digest, unseal

MAX_RECEIPTS = 1000
MAX_SESSIONS = 256
SCHEMA = 1
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
Origin = Literal["native", "mediapocket", "liquidfiles"]
ORIGINS: tuple[Origin, ...] = ("native", "mediapocket", "liquidfiles")


class _Unset(enum.Enum):
    """The default of ``update``'s arguments: "leave unchanged" (None is a value: no limit)."""
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class _LinkChange(TypedDict, total=False):
    """What ``LinkRegistry.update`` may change of a ``LinkRecord``."""
    require_authentication: bool
    send_receipts: bool
    receipt_to: str | None
    expire_at: int
    max_downloads: int | None
    password_hash: dict | None


def new_link_id() -> str:
    """128 random bits, URL-safe (22 chars). Random, never derived from time or counters."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Receipt:
    time: float             # unix seconds
    client: str             # client address
    bytes: int              # body bytes served (the planned Content-Length)
    range: str | None       # the Range header honoured, None for a full body
    counted: bool           # did it use one of max_downloads


@dataclass(frozen=True)
class LinkRecord:
    id: str
    token_hash: str | None   # SHA-256 of the sealed ``ct`` (native links only)
    file_name: str
    bucket: str
    entry: str
    record_entry: str
    record_ts: int
    created_at: int
    expire_at: int
    creator: str
    downloads: int = 0
    max_downloads: int | None = None
    password_hash: dict | None = None
    revoked: bool = False
    revoked_at: int | None = None
    receipt_to: str | None = None
    updated_at: int = 0
    receipts: tuple[Receipt, ...] = ()
    sessions: Mapping[str, float] = field(default_factory=dict)   # client -> last request (s)
    sealed_params: dict | None = None                             # URL params sealed under the server key
    serial: int = 0                          # the Mediapocket integer id; 0 only before load assigns one
    require_authentication: bool = False     # downloads need a token with read access to the bucket
    send_receipts: bool = True               # the receipt switch (a receipt also needs an address)
    origin: Origin = "native"                # the API that created it (informational)
    created_ms: int = 0                      # creation / last change in ms (vendor APIs show ms)
    updated_ms: int = 0

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def state(self, now: float) -> str:
        """``revoked`` / ``expired`` / ``used_up`` / ``active`` for listings (owners see the reason)."""
        if self.revoked:
            return "revoked"
        if rules.is_expired(self.expire_at, now):
            return "expired"
        if rules.is_used_up(self.downloads, self.max_downloads):
            return "used_up"
        return "active"


@dataclass(frozen=True)
class DownloadResult:
    record: LinkRecord
    counted: bool


class LinkRegistry:
    """All link records of one data folder, in memory, each mirrored to its own file."""

    def __init__(self, data_dir: Path, *, key: bytes | None = None,
                 password_params: rules.PasswordParams = rules.PasswordParams(),
                 clock: Callable[[], float] = time.time):
        self.dir = Path(data_dir) / ".edge" / "links"
        self._key = key
        self._params = password_params
        self._clock = clock
        self._lock = threading.RLock()
        self._links: dict[str, LinkRecord] = {}
        self._by_digest: dict[str, str] = {}
        self._by_serial: dict[int, str] = {}
        self._next_serial = 1
        self._decoy: dict | None = None      # a password hash nobody knows (see password_matches)
        self.load_report: list[str] = []     # human lines: files skipped at load
        self.damaged: list[durable.Damage] = []   # state files found damaged (set aside) at load
        self._load()

    @classmethod
    def open(cls, data_dir: Path, *, key: bytes | None = None,
             password_params: rules.PasswordParams = rules.PasswordParams(),
             clock: Callable[[], float] = time.time) -> "LinkRegistry":
        """Load every record of ``<data>/.edge/links`` (same as the constructor; reads like Engine.open)."""
        return cls(data_dir, key=key, password_params=password_params, clock=clock)

    # --- managing ---------------------------------------------------------------------------

    def create(self, *, token: str | None, file_name: str, bucket: str, entry: str, record_entry: str,
               record_ts: int, expire_at: int, creator: str, link_id: str | None = None,
               max_downloads: int | None = None, password: str | None = None,
               receipt_to: str | None = None, url_params: Mapping[str, str] | None = None,
               require_authentication: bool = False, send_receipts: bool = True,
               origin: Origin = "native", now: float | None = None) -> LinkRecord:
        """Record a new link. ``token`` is the ``ct`` string (only its digest is kept); links of
        the vendor APIs have none (they are found by id).

        ``url_params`` (e.g. ct/s/n/i/base_url) are kept only sealed under the server key, so a
        short link can redirect to the full URL; a dump of this folder without the key reveals
        no live link. Ignored when the registry has no key.
        """
        now = self._now(now)
        link_id = link_id or new_link_id()
        if not _ID.fullmatch(link_id):
            raise ValueError("link ids are 16..64 URL-safe characters")
        _check_max_downloads(max_downloads)
        _check_expire_at(expire_at)
        pw = rules.hash_password(password, self._params) if password is not None else None
        sealed = None
        if url_params is not None and self._key is not None:
            box = seal(dict(url_params), self._key, associated=link_id.encode())
            sealed = {"ct": box.ct, "s": box.s, "n": box.n}
        if origin not in ORIGINS:
            raise ValueError(f"unknown link origin {origin!r}")
        ms = int(now * 1000)
        rec = LinkRecord(id=link_id, token_hash=None if token is None else token_digest(token),
                         file_name=file_name, bucket=bucket,
                         entry=entry, record_entry=record_entry, record_ts=int(record_ts),
                         created_at=int(now), expire_at=int(expire_at), creator=creator,
                         max_downloads=max_downloads, password_hash=pw, receipt_to=receipt_to,
                         updated_at=int(now), sealed_params=sealed,
                         require_authentication=bool(require_authentication),
                         send_receipts=bool(send_receipts), origin=origin, created_ms=ms, updated_ms=ms)
        with self._lock:
            if link_id in self._links or (rec.token_hash is not None and rec.token_hash in self._by_digest):
                raise ValueError("link id or token already registered")
            rec = dataclasses.replace(rec, serial=self._next_serial)
            self._store(rec)
        return rec

    def get(self, link_id: str) -> LinkRecord:
        with self._lock:
            rec = self._links.get(link_id) if _ID.fullmatch(link_id or "") else None
        if rec is None:
            raise NotFoundError(f"Link '{link_id}' is not found" if _ID.fullmatch(link_id or "")
                                else "Link is not found")
        return rec

    def by_serial(self, serial: int) -> LinkRecord | None:
        """The link whose Mediapocket integer id is ``serial``, or None."""
        with self._lock:
            link_id = self._by_serial.get(serial)
            return self._links.get(link_id) if link_id else None

    def list(self, *, bucket: str | None = None, creator: str | None = None) -> list[LinkRecord]:
        with self._lock:
            recs = list(self._links.values())
        return sorted((r for r in recs if (bucket is None or r.bucket == bucket)
                       and (creator is None or r.creator == creator)),
                      key=lambda r: (r.created_at, r.id))

    def update(self, link_id: str, *, expire_at: object = _UNSET, max_downloads: object = _UNSET,
               password: str | None | _Unset = _UNSET, require_authentication: bool | _Unset = _UNSET,
               send_receipts: bool | _Unset = _UNSET, receipt_to: str | None | _Unset = _UNSET,
               now: float | None = None) -> LinkRecord:
        """Change expiry, download limit, password, the authentication or receipt switch, or the
        receipt address (``None`` clears the limit / password / address)."""
        self.get(link_id)                   # unknown id: answer before any hashing
        changes: _LinkChange = {}
        if not isinstance(require_authentication, _Unset):
            changes["require_authentication"] = _flag("require_authentication", require_authentication)
        if not isinstance(send_receipts, _Unset):
            changes["send_receipts"] = _flag("send_receipts", send_receipts)
        if not isinstance(receipt_to, _Unset):
            changes["receipt_to"] = receipt_to
        if not isinstance(expire_at, _Unset):
            changes["expire_at"] = _check_expire_at(expire_at)
        if not isinstance(max_downloads, _Unset):
            changes["max_downloads"] = _check_max_downloads(max_downloads)
        if not isinstance(password, _Unset):
            # Hash outside the lock: scrypt takes tens of ms and must not stall other links.
            changes["password_hash"] = None if password is None else rules.hash_password(password, self._params)
        with self._lock:
            t = self._now(now)
            rec = dataclasses.replace(self.get(link_id), updated_at=int(t), updated_ms=int(t * 1000), **changes)
            self._store(rec)
        return rec

    def revoke(self, link_id: str, now: float | None = None) -> LinkRecord:
        """Mark revoked (idempotent). The record stays for listing and audit."""
        with self._lock:
            rec = self.get(link_id)
            if not rec.revoked:
                t = self._now(now)
                rec = dataclasses.replace(rec, revoked=True, revoked_at=int(t), updated_at=int(t),
                                          updated_ms=int(t * 1000))
                self._store(rec)
        return rec

    def password_matches(self, rec: LinkRecord | None, password: str) -> bool:
        """One scrypt whatever the link: True only when ``rec`` has a password and ``password`` is it.

        A missing link, or one without a password, still pays one hash against a decoy, so "wrong
        password" and "no such link" cost the same time (the uniform answer's timing class).
        """
        if rec is not None and rec.password_hash is not None:
            return rules.verify_password(password, rec.password_hash)
        with self._lock:
            if self._decoy is None:
                self._decoy = rules.hash_password(secrets.token_urlsafe(16), self._params)
            decoy = self._decoy
        rules.verify_password(password, decoy)
        return False

    def reveal(self, link_id: str) -> dict | None:
        """The sealed URL parameters of a link, or None (no key, or none were given)."""
        rec = self.get(link_id)
        if rec.sealed_params is None or self._key is None:
            return None
        p = rec.sealed_params
        try:
            return unseal(p["ct"], p["s"], p["n"], self._key, associated=link_id.encode())
        except LinkInvalidError:
            return None     # sealed under another server key (key file replaced)

    # --- using ------------------------------------------------------------------------------

    def find(self, token: str) -> LinkRecord | None:
        """The link whose ``ct`` is ``token`` (SHA-256 lookup: cheap, no secret comparison)."""
        with self._lock:
            link_id = self._by_digest.get(token_digest(token))
            return self._links.get(link_id) if link_id else None

    def record_download(self, link_id: str, client: str, nbytes: int, range_text: str | None, *,
                        partial: bool, now: float | None = None) -> DownloadResult:
        """Count (per the rules) and log one served answer, atomically; call before sending the body.

        Raises the uniform 404 if this answer would start a new download of a used-up link, or
        the link was revoked / expired since ``authorize``.
        """
        with self._lock:
            now = self._now(now)
            rec = self.get(link_id)
            rules.check_state(revoked=rec.revoked, expire_at_s=rec.expire_at, now_s=now)
            counted = rules.download_counts(partial, rec.sessions.get(client), now)
            if counted and rules.is_used_up(rec.downloads, rec.max_downloads):
                raise rules.link_not_found()
            sessions = {c: t for c, t in rec.sessions.items() if rules.session_live(t, now)}
            sessions.pop(client, None)
            sessions[client] = now          # most recent last: eviction drops the oldest
            if len(sessions) > MAX_SESSIONS:
                sessions = dict(list(sessions.items())[-MAX_SESSIONS:])
            receipt = Receipt(now, client, int(nbytes), range_text, counted)
            rec = dataclasses.replace(rec, downloads=rec.downloads + counted, sessions=sessions,
                                      receipts=(rec.receipts + (receipt,))[-MAX_RECEIPTS:])
            self._store(rec)
        return DownloadResult(rec, counted)

    # --- persistence ------------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _store(self, rec: LinkRecord) -> None:
        """Write first, then publish in memory: a failed write leaves the old state everywhere."""
        durable.write_state_file(self.dir / f"{rec.id}.json", json.dumps(_to_json(rec), separators=(",", ":")).encode(),
                                 failure="Cannot write link record")
        self._publish(rec)

    def _publish(self, rec: LinkRecord) -> None:
        self._links[rec.id] = rec
        if rec.token_hash is not None:
            self._by_digest[rec.token_hash] = rec.id
        if rec.serial:
            self._by_serial[rec.serial] = rec.id
            self._next_serial = max(self._next_serial, rec.serial + 1)

    def _load(self) -> None:
        def parse(stem: str, doc: Any) -> LinkRecord:
            rec = _from_json(doc)
            if rec.id != stem:
                raise ValueError("id does not match the file name")
            return rec

        def skipped(path: Path, exc: Exception) -> None:
            self.load_report.append(f"skipped link file {path.name}: {exc}")

        for rec in durable.load_json_dir(self.dir, parse, skipped, damaged=self.damaged):
            self._publish(rec)
        # Links written before serials existed get the next ones, in creation order, once.
        for rec in sorted((r for r in self._links.values() if not r.serial), key=lambda r: (r.created_at, r.id)):
            ms = rec.created_at * 1000
            self._store(dataclasses.replace(rec, serial=self._next_serial, created_ms=rec.created_ms or ms,
                                            updated_ms=rec.updated_ms or rec.updated_at * 1000))


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"'{name}' must be true or false")
    return value


def _check_max_downloads(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("'max_downloads' must be a positive integer")
    return value


def _check_expire_at(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
    return value


def _to_json(rec: LinkRecord) -> dict:
    d = dataclasses.asdict(rec)
    d["receipts"] = [dataclasses.asdict(r) for r in rec.receipts]
    d["sessions"] = dict(rec.sessions)
    d["v"] = SCHEMA
    return d


def _from_json(d: dict) -> LinkRecord:
    if d.pop("v", None) != SCHEMA:
        raise ValueError("unknown schema version")
    d["receipts"] = tuple(Receipt(**r) for r in d.get("receipts", ()))
    return LinkRecord(**d)
