"""Durable small files: atomic replacement, directory fsync, OSError translation.

Owns: writing a file so that a crash leaves the old bytes or the new ones, never half of them
(tmp + write + fsync + rename + fsync of the directory), the directory fsync itself, creating
folders (``make_dirs``: each missing component, the parent of each one fsynced), the
translation of OSError into edge errors (ENOSPC/EDQUOT -> DiskFullError, others ->
StorageIOError), the checksummed envelope of every small state file (``seal``/``unseal``,
``write_state``/``read_state``), setting a damaged one aside (``set_aside``: renamed beside it,
never deleted), and reading back a directory of one-JSON-file-per-record registries (stale
temp files removed, damaged files set aside and reported).
Must not: import trio or anything from edge but ``edge.errors``; know what the files mean.

Why one module: every registry (tokens, share links, upload links, the mail outbox, bucket
settings, upload state, ...) must never be half-written after a power loss. The order is what
makes that true (the data is on the device before the name points at it, and the rename is on
the device before the caller is told it is done), so it is written once, here. It sits at the
bottom of the layers: every room may import it; ``edge/store/files.py`` builds on it.

State envelope: one header line, then the payload, byte for byte::

    edge-state 1 crc32:<8 hex> len:<decimal>\n<payload>

CRC-32 (zlib's polynomial, the one every block frame uses) of the payload. A file without the
header is one written by an earlier version: it is read as it is (``checked=False``) and gains
the header with its next write. SD cards rot and people edit files: a file whose header is
there but whose length or CRC does not match is *damaged*. Its room never trusts a damaged
file, renames it to ``<name>.damaged-<UTC time>`` (``set_aside``) and starts with its safe
fallback; the copy stays for a human (``edge check`` lists it) and is never deleted by us.
Why a header and not a JSON field: the check must not depend on re-serialising JSON the same
way, it covers binary files (``link.key``) too, and a flipped byte in the header itself makes
the file fail either the header check or the payload parse, never pass.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from edge.errors import DiskFullError, EdgeError, StorageIOError

DISK_FULL_MESSAGE = "Not enough free disk space"    # the store's text (507)
NO_SPACE_MESSAGE = "No space left on device"        # the registries' text (507)
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
GONE_ERRNOS = frozenset({errno.EBADF, errno.ENOENT})   # the fd or file vanished meanwhile

T = TypeVar("T")

STATE_MAGIC = b"edge-state "
STATE_VERSION = 1
_HEADER = re.compile(rb"edge-state (\d{1,3}) crc32:([0-9a-f]{8}) len:(\d{1,12})\n")
ASIDE_MARK = ".damaged-"
_ASIDE_TIME = "%Y%m%dT%H%M%SZ"


class DamagedStateError(ValueError):
    """A state file whose checksum, length or content does not hold (``reason`` says which)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Damage:
    """One damaged state file: where it was, why, and the name its bytes are kept under."""

    path: Path                  # the file's own name (it is gone from there once set aside)
    reason: str
    kept_as: Path | None        # None: could not be renamed (read-only medium); still not trusted

    def describe(self) -> str:
        kept = f"kept as {self.kept_as.name}" if self.kept_as is not None else "could not be set aside"
        return f"{self.path}: damaged ({self.reason}); {kept}"


def translate(exc: OSError, failure: str | None = None) -> EdgeError:
    """ENOSPC/EDQUOT -> DiskFullError, anything else -> StorageIOError.

    Without ``failure`` the store's texts ("Storage I/O error: <exc>"); with it the registries'
    ("<failure>: <strerror>", e.g. ``failure="Cannot write link record"``).
    """
    if exc.errno in _FULL:
        return DiskFullError(DISK_FULL_MESSAGE if failure is None else NO_SPACE_MESSAGE)
    if failure is None:
        return StorageIOError(f"Storage I/O error: {exc}")
    return StorageIOError(f"{failure}: {exc.strerror or exc}")


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a created/renamed/removed name in it survives a power loss.

    Raises OSError. A missing directory, and file systems that cannot fsync a directory
    (EINVAL), are not errors.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in GONE_ERRNOS | {errno.EINVAL}:
            raise
    finally:
        os.close(fd)


def make_dirs(path: Path, *, mode: int = 0o777) -> list[Path]:
    """mkdir -p that survives a power loss: returns the folders it created (outermost first).

    Raises OSError. Each missing component is created (``mode``, less the umask), then the
    parent of each one created is fsynced: a new folder's name lives in its parent's listing,
    and without that fsync the folder, and everything later written and synced inside it, can
    vanish in a power cut (a fresh data folder, ``.edge``, a registry's folder). Nothing is
    synced when the folder already existed, so calling it before every write costs one stat.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created: list[Path] = []
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue   # made meanwhile by someone else, who syncs its parent
        created.append(d)
    for d in created:
        fsync_dir(d.parent)
    return created


def write_new(path: Path, data: bytes, *, mode: int = 0o600, truncate: bool = False, sync: bool = True) -> None:
    """Create ``path`` (``mode``), write all of ``data``, fsync it (unless ``sync`` is False).

    Raises OSError; on failure the file is removed again. Without ``truncate`` the file must not
    exist yet (O_EXCL); with it an existing file (a stale temp file of a single writer) is reused.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else os.O_EXCL)
    fd = os.open(path, flags, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    os.close(fd)


def replace_file(path: Path, data: bytes, *, mode: int = 0o600, tmp: Path | None = None, sync: bool = True) -> None:
    """tmp + write + fsync + rename + fsync(dir): readers and crashes see the old or the new file.

    Raises OSError. ``tmp=None`` uses a fresh hidden ``.<name>.<random>.tmp`` (safe with several
    writers); a given ``tmp`` is truncated and reused (one writer, a crash leaves one stale file).
    ``sync=False`` drops both fsyncs (caches that are validated when read).
    """
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        write_new(tmp, data, mode=mode, sync=sync)
    else:
        write_new(tmp, data, mode=mode, truncate=True, sync=sync)
    try:
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, failure: str, mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """``replace_file`` for a registry file, creating its folder (``dir_mode``) if needed.

    OS errors become DiskFullError / StorageIOError(``"<failure>: <strerror>"``) here, where they
    enter (anchors §7.10).
    """
    try:
        make_dirs(path.parent, mode=dir_mode)
        replace_file(path, data, mode=mode)
    except OSError as exc:
        raise translate(exc, failure) from exc


# --- checksummed state files --------------------------------------------------------------


def seal(payload: bytes) -> bytes:
    """The envelope of a state file: header line + ``payload``."""
    header = b"edge-state %d crc32:%08x len:%d\n" % (STATE_VERSION, zlib.crc32(payload), len(payload))
    return header + payload


def unseal(raw: bytes) -> tuple[bytes, bool]:
    """(payload, checked). A file of an earlier version (no header) is returned as it is with
    ``checked=False``; a header that does not hold raises DamagedStateError."""
    if not raw.startswith(STATE_MAGIC):
        return raw, False
    m = _HEADER.match(raw)
    if m is None:
        raise DamagedStateError("bad checksum header")
    if int(m.group(1)) != STATE_VERSION:
        raise DamagedStateError(f"unknown state file version {int(m.group(1))}")
    payload = raw[m.end():]
    if len(payload) != int(m.group(3)):
        raise DamagedStateError(f"length {len(payload)} instead of {int(m.group(3))}")
    if zlib.crc32(payload) != int(m.group(2), 16):
        raise DamagedStateError("checksum mismatch")
    return payload, True


def write_state(path: Path, payload: bytes, *, mode: int = 0o600, dir_mode: int = 0o700,
                tmp: Path | None = None) -> None:
    """Seal ``payload`` and replace ``path`` with it durably (folders created durably too).
    Raises OSError (the caller translates it where it enters its room)."""
    make_dirs(path.parent, mode=dir_mode)
    replace_file(path, seal(payload), mode=mode, tmp=tmp)


def write_state_file(path: Path, payload: bytes, *, failure: str, mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """``write_state`` with the registries' error translation (see ``atomic_write``)."""
    try:
        write_state(path, payload, mode=mode, dir_mode=dir_mode)
    except OSError as exc:
        raise translate(exc, failure) from exc


def read_state(path: Path) -> tuple[bytes, bool] | None:
    """(payload, checked) of a state file, None when it does not exist.

    Raises DamagedStateError (header, length or CRC wrong) and OSError (cannot read).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return unseal(raw)


def set_aside(path: Path, reason: str) -> Damage:
    """Rename a damaged file to ``<name>.damaged-<UTC time>`` beside it (durably) and say so.

    Never deletes: the bytes stay for whoever repairs the file. If the rename fails (a
    read-only medium) the file stays where it is and ``kept_as`` is None: the caller still
    must not trust it.
    """
    stamp = time.strftime(_ASIDE_TIME, time.gmtime())
    target = path.with_name(f"{path.name}{ASIDE_MARK}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{ASIDE_MARK}{stamp}-{n}")
    try:
        os.rename(path, target)
        fsync_dir(path.parent)
    except OSError:
        return Damage(path, reason, None)
    return Damage(path, reason, target)


def aside_copies(path: Path) -> list[Path]:
    """The damaged copies of ``path`` set aside earlier, oldest first."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    prefix = path.name + ASIDE_MARK
    return [path.parent / n for n in sorted(names) if n.startswith(prefix)]


def aside_time(copy: Path) -> float | None:
    """When ``copy`` (a ``set_aside`` name) was set aside, as a UNIX time."""
    import calendar

    _, mark, stamp = copy.name.rpartition(ASIDE_MARK)
    try:
        return float(calendar.timegm(time.strptime(stamp.split("-")[0], _ASIDE_TIME))) if mark else None
    except ValueError:
        return None


def is_aside(name: str) -> bool:
    return ASIDE_MARK in name


def load_state(path: Path, parse: Callable[[bytes], T], *, aside: bool = True
               ) -> tuple[T | None, Damage | None, bool]:
    """Read, check and ``parse`` one state file: (value, damage, checked).

    Missing: (None, None, False). Damaged (envelope, or ``parse`` raising ValueError, KeyError,
    TypeError or AttributeError, or unreadable): the file is set aside and (None, damage,
    False) comes back. ``checked`` False with a value: a file of an earlier version (no
    checksum yet; its next write adds one). ``aside=False``: a damaged file stays where it is
    (``kept_as`` None) for a caller that sets aside more than the file (a whole folder).
    """
    try:
        got = read_state(path)
        if got is None:
            return None, None, False
        payload, checked = got
        return parse(payload), None, checked
    except DamagedStateError as exc:
        reason = exc.reason
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = f"unreadable: {type(exc).__name__}: {exc}"[:200]
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
    return None, set_aside(path, reason) if aside else Damage(path, reason, None), False


def salvage_names(raw: bytes, list_key: str) -> list[tuple[str, Any]]:
    """What can still be told of a damaged registry file: (name, its JSON object or None).

    For a file whose checksum failed but whose JSON still parses, every object of
    ``doc[list_key]`` with a string ``name``; otherwise the names that still look like
    ``"name": "..."``. The caller lists them as damaged and never acts on them.
    """
    try:
        doc = json.loads(unseal_lenient(raw))
        items = doc[list_key]
        out = [(it["name"], it) for it in items if isinstance(it, dict) and isinstance(it.get("name"), str)]
        return out
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    names = re.findall(rb'"name"\s*:\s*"([A-Za-z0-9_\-. ]{1,256})"', raw)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n.decode(), None)
    return [(n, None) for n in seen]


@dataclass
class ListRegistry:
    """A one-file registry (``{"<list_key>": [{"name": ..., ...}, ...]}``) as loaded.

    ``docs``: the items to trust. ``suspect``: (name, reason, item or None) for every item that
    came from a damaged file, or that an earlier start wrote back marked damaged (see
    ``suspect_record``); the room lists them as paused/damaged and never acts on them until a
    human sets them again. ``damage``: the file itself was found damaged now (and set aside).
    """

    docs: list[dict]
    suspect: list[tuple[str, str, dict | None]]
    damage: Damage | None
    checked: bool


def load_list_registry(path: Path, list_key: str) -> ListRegistry:
    def parse(raw: bytes) -> list[dict]:
        items = json.loads(raw)[list_key]
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str)
                                                  for i in items):
            raise ValueError(f"'{list_key}' is not a list of named objects")
        return items

    items, damage, checked = load_state(path, parse)
    if damage is not None:
        try:
            raw = (damage.kept_as or path).read_bytes()
        except OSError:
            raw = b""
        found = [(name, damage.reason, doc) for name, doc in salvage_names(raw, list_key)]
        return ListRegistry([], found, damage, False)
    docs, suspect = [], []
    for item in items or []:
        if "damaged" in item:
            doc = item.get("doc")
            suspect.append((item["name"], str(item["damaged"]), doc if isinstance(doc, dict) else None))
        else:
            docs.append(item)
    return ListRegistry(docs, suspect, None, checked)


def suspect_record(name: str, reason: str, doc: dict | None) -> dict:
    """How a suspect item is written back: still named, still marked, its old content kept."""
    return {"name": name, "damaged": reason, "doc": doc}


def unseal_lenient(raw: bytes) -> bytes:
    """The payload part of ``raw`` whether or not its header holds (for salvage only)."""
    m = _HEADER.match(raw)
    return raw[m.end():] if m else raw


def load_json_dir(directory: Path, parse: Callable[[str, Any], T], skipped: Callable[[Path, Exception], None],
                  *, names: re.Pattern[str] | None = None, damaged: list[Damage] | None = None) -> Iterator[T]:
    """The records of a one-file-per-record registry (``<directory>/<stem>.json``), in name order.

    Temp files (``*.tmp``: writes interrupted before their rename) are removed; other suffixes,
    and stems that do not fullmatch ``names``, are ignored. Each file is a state file (see
    ``unseal``: sealed, or of an earlier version); ``parse(stem, json)`` makes the record. A
    damaged file (envelope, or ``parse`` fails with ValueError, KeyError, TypeError) is set
    aside and its ``Damage`` handed to ``skipped``; copies set aside earlier are handed to
    ``skipped`` again on every load (they stay reported until a human removes them). Both
    are appended to ``damaged`` too, when given.
    """
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
            continue
        if is_aside(path.name):
            kept = Damage(path, "damaged at an earlier start, kept for repair", path)
            skipped(path, DamagedStateError(kept.describe()))
            if damaged is not None:
                damaged.append(kept)
            continue
        if path.suffix != ".json" or (names is not None and not names.fullmatch(path.stem)):
            continue
        stem = path.stem   # load_state calls the parser before returning
        rec, damage, _ = load_state(path, lambda raw: parse(stem, json.loads(raw)))
        if damage is not None:
            skipped(path, DamagedStateError(damage.describe()))
            if damaged is not None:
                damaged.append(damage)
            continue
        if rec is not None:
            yield rec
