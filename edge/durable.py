"""Durable small files: atomic replacement, directory fsync, OSError translation.

Owns: writing a file so that a crash leaves the old bytes or the new ones, never half of them
(tmp + write + fsync + rename + fsync of the directory), the directory fsync itself, creating
folders (``make_dirs``: each missing component, the parent of each one fsynced), the
translation of OSError into edge errors (ENOSPC/EDQUOT -> DiskFullError, others ->
StorageIOError), and reading back a directory of one-JSON-file-per-record registries (stale
temp files removed, damaged files skipped and reported).
Must not: import trio or anything from edge but ``edge.errors``; know what the files mean.

Why one module: every registry (tokens, share links, upload links, the mail outbox, bucket
settings, upload state, ...) must never be half-written after a power loss. The order is what
makes that true (the data is on the device before the name points at it, and the rename is on
the device before the caller is told it is done), so it is written once, here. It sits at the
bottom of the layers: every room may import it; ``edge/store/files.py`` builds on it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from edge.errors import DiskFullError, EdgeError, StorageIOError

DISK_FULL_MESSAGE = "Not enough free disk space"    # the store's text (507)
NO_SPACE_MESSAGE = "No space left on device"        # the registries' text (507)
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
GONE_ERRNOS = frozenset({errno.EBADF, errno.ENOENT})   # the fd or file vanished meanwhile

T = TypeVar("T")


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


def load_json_dir(directory: Path, parse: Callable[[str, Any], T], skipped: Callable[[Path, Exception], None],
                  *, names: re.Pattern[str] | None = None) -> Iterator[T]:
    """The records of a one-file-per-record registry (``<directory>/<stem>.json``), in name order.

    Temp files (``*.tmp``: writes interrupted before their rename) are removed; other suffixes,
    and stems that do not fullmatch ``names``, are ignored. ``parse(stem, json)`` makes the
    record; a file it cannot read or parse (OSError, ValueError, KeyError, TypeError) is handed
    to ``skipped`` and left alone.
    """
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
            continue
        if path.suffix != ".json" or (names is not None and not names.fullmatch(path.stem)):
            continue
        try:
            rec = parse(path.stem, json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped(path, exc)
            continue
        yield rec
