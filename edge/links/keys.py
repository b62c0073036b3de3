"""The server link key: 32 random bytes in ``<data>/.edge/link.key``, created on first start.

Owns: creating (atomically, mode 0600, never clobbering a concurrent creator) and loading that file
(checksummed; a damaged one is set aside and replaced), and the ``ServerKey`` value whose repr
never shows the secret.
Must not: log or print the key material (only ``fingerprint``), derive per-link keys (``seal.py``),
import trio, edge.store or edge.http.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .. import durable
from ..errors import ConfigError

KEY_BYTES = 32
KEY_FILE = "link.key"


@dataclass(frozen=True)
class ServerKey:
    """The secret behind every link. ``repr``/``str`` are redacted so it cannot leak into logs."""

    material: bytes = field(repr=False)
    path: Path | None = None
    damage: durable.Damage | None = None   # found damaged at this start (and set aside)
    replaced_at: float | None = None       # newest time an earlier key was set aside as damaged

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible id of the key, safe to log ("which key is this?")."""
        return hashlib.sha256(b"edge-link-key-id" + self.material).hexdigest()[:12]

    def __str__(self) -> str:
        return f"ServerKey(fingerprint={self.fingerprint})"


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / ".edge" / KEY_FILE


def load_or_create(data_dir: Path) -> ServerKey:
    """Return the key in ``<data>/.edge/link.key``, creating it (0600, atomically) when missing.

    The file is a checksummed state file (``edge.durable.seal``); a bare 32-byte file of an
    earlier version is accepted and sealed in place (same key). A damaged file never stops
    start-up: it is set aside (``link.key.damaged-<time>``, never deleted) and a new key is made,
    so new links work; ``ServerKey.replaced`` then says when, so that links issued before stop
    verifying *and say so* instead of looking forged. A file readable by group/others is
    tightened to 0600, as the key must stay private to the server's user.
    """
    path = key_path(data_dir)
    durable.make_dirs(path.parent, mode=0o700)

    def parse(raw: bytes) -> bytes:
        if len(raw) != KEY_BYTES:
            raise ValueError(f"expected {KEY_BYTES} bytes of key, found {len(raw)}")
        return raw

    try:
        if path.exists() and path.stat().st_mode & 0o077:
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        material, damage, checked = durable.load_state(path, parse)
        if material is not None and not checked:
            durable.write_state(path, material, mode=0o600)     # upgrade: same key, now sealed
        if material is None:
            _create(path)
            material, _, _ = durable.load_state(path, parse)
    except OSError as exc:
        raise ConfigError(f"Cannot read the link key {path}: {exc.strerror}") from None
    if material is None:   # the key we just made is already unreadable: nothing sane to do
        raise ConfigError(f"The link key {path} cannot be created readably")
    replaced = [t for t in (durable.aside_time(p) for p in durable.aside_copies(path)) if t is not None]
    return ServerKey(material, path, damage=damage, replaced_at=max(replaced, default=None))


def _create(path: Path) -> None:
    """Write a fresh key to a temp file, fsync, then hard-link it into place.

    ``os.link`` fails if the name exists, so two processes starting at once cannot overwrite
    each other's key (``rename`` would, leaving links sealed under a key that is gone).
    """
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}.tmp")
    durable.write_new(tmp, durable.seal(secrets.token_bytes(KEY_BYTES)), mode=0o600)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
        except OSError:
            # File systems without hard links (some FAT/exFAT cards): best effort no-clobber.
            if not path.exists():
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    durable.fsync_dir(path.parent)
