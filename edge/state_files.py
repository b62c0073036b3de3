"""Where a data folder keeps its small state files, and checking them without changing anything.

Owns: the list of checksummed state files (``edge.durable.seal``) a data folder may hold, and
``check(data_path)``, which reads each one (and each replication's transaction log, each
staged attachment piece against the digest in its name and each staged tus upload's ``data``
against the CRC in its state) and names
every file that is damaged now or was set aside as damaged earlier (for ``edge check``).
Must not: repair, move or write anything (the rooms do that when the server starts: each one
sets its damaged file aside and runs its fallback), import trio, know what the files mean
beyond "this one is JSON".

Why a list here and not in each room: ``edge check`` runs without the server, and the person
reading its output wants one answer for the whole folder. The rooms stay the owners of their
files and of their fallbacks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import durable

EDGE = ".edge"
# (folder relative to <data>/.edge, file name pattern, is JSON); "*" matches one path segment.
STATE_FILES: tuple[tuple[str, str, bool], ...] = (
    ("", "tokens.json", True),
    ("", "link.key", False),
    ("", "replications.json", True),
    ("", "lifecycles.json", True),
    ("links", "*.json", True),
    ("upload_links", "*.json", True),
    ("outbox", "*.json", True),
    ("uploads/*", "state.json", True),
    ("attachments/*", "session.json", True),
    ("attachments/*", "complete.json", True),
)
BUCKET_FILES: tuple[tuple[str, bool], ...] = (("settings.json", True),)
ENTRY_MARKER = ".entry"


@dataclass(frozen=True)
class Finding:
    path: Path
    text: str          # "damaged (<reason>)" or "damaged copy kept for repair"


def _state_paths(data: Path) -> Iterator[tuple[Path, bool]]:
    root = data / EDGE
    for folder, pattern, is_json in STATE_FILES:
        dirs = [root]
        for part in filter(None, folder.split("/")):
            dirs = [d / n for d in dirs for n in _names(d) if part == "*" or n == part]
        for d in dirs:
            for name in _names(d):
                if durable.is_aside(name) or name.endswith(".tmp"):
                    continue
                if (pattern == name) or (pattern.startswith("*") and name.endswith(pattern[1:])):
                    yield d / name, is_json


def _names(d: Path) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def _verify(path: Path, is_json: bool) -> str | None:
    try:
        got = durable.read_state(path)
        if got is not None and is_json:
            json.loads(got[0])
    except durable.DamagedStateError as exc:
        return exc.reason
    except ValueError as exc:
        return f"unreadable: {exc}"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None


def check(data: Path) -> list[Finding]:
    """Every damaged state file of ``data`` and every damaged copy kept in it, in path order."""
    data = Path(data)
    found: list[Finding] = []
    for path, is_json in _state_paths(data):
        reason = _verify(path, is_json)
        if reason is not None:
            found.append(Finding(path, f"damaged ({reason})"))
    from .attachments.staging import damaged_pieces
    from .replication.log import verify as verify_log
    from .uploads.staging import verify_data

    for name in _names(data / EDGE / "uploads"):
        folder = data / EDGE / "uploads" / name
        if not durable.is_aside(name) and folder.is_dir():
            reason = verify_data(folder)
            if reason is not None:
                found.append(Finding(folder / "data", f"damaged ({reason})"))

    for name in _names(data / EDGE / "attachments"):
        if not durable.is_aside(name):
            found += [Finding(p, "damaged (attachment piece no longer matches its digest)")
                      for p in damaged_pieces(data / EDGE / "attachments" / name)]

    for name in _names(data / EDGE / "replications"):
        folder = data / EDGE / "replications" / name
        if folder.is_dir():
            found += [Finding(folder, f"transaction log: {line}") for line in verify_log(folder)]
    for dirpath, dirnames, filenames in os.walk(data):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            if durable.is_aside(name):
                found.append(Finding(here / name, "damaged copy kept for repair"))
        if here.parent == data and not here.name.startswith("."):
            for name, is_json in BUCKET_FILES:
                if name in filenames:
                    reason = _verify(here / name, is_json)
                    if reason is not None:
                        found.append(Finding(here / name, f"damaged ({reason})"))
        if ENTRY_MARKER in filenames and here.parent != data:
            reason = _verify(here / ENTRY_MARKER, False)
            if reason is not None:
                found.append(Finding(here / ENTRY_MARKER, f"damaged ({reason})"))
    return sorted(found, key=lambda f: str(f.path))
