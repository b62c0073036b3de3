"""The server link key: 32 random bytes in ``<data>/.edge/link.key``, created on first start.

Owns: creating (atomically, mode 0600, never clobbering a concurrent creator) and loading that file,
and the ``ServerKey`` value whose repr never shows the secret.
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

    A file of the wrong size is a ConfigError naming the path (never a silent new key: that
    would invalidate every link without anybody noticing). A file readable by group/others is
    tightened to 0600, as the key must stay private to the server's user.
    """
    path = key_path(data_dir)
    durable.make_dirs(path.parent, mode=0o700)
    if not path.exists():
        _create(path)
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        material = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read the link key {path}: {exc.strerror}") from None
    if len(material) != KEY_BYTES:
        raise ConfigError(f"The link key {path} is damaged (expected {KEY_BYTES} bytes); "
                          "restore it from a backup or remove it to invalidate all links")
    return ServerKey(material, path)


def _create(path: Path) -> None:
    """Write a fresh key to a temp file, fsync, then hard-link it into place.

    ``os.link`` fails if the name exists, so two processes starting at once cannot overwrite
    each other's key (``rename`` would, leaving links sealed under a key that is gone).
    """
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}.tmp")
    durable.write_new(tmp, secrets.token_bytes(KEY_BYTES), mode=0o600)
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
