"""The secure-by-default first start: a device-unique full-access token when no auth choice is made.

Owns: the generated token's name and secret file (``<data>/.edge/device-token``, mode 0600), and
the order of creating it: the secret file is durable first, then the hash goes into the token
store, so a crash in between only means a new token next start, never a token nobody can read.
Must not: log, print or return the secret (only the file holds it); run unless the server was
started without ``RS_API_TOKEN``, ``RS_INIT_API_TOKEN`` and ``RS_DISABLE_AUTH`` (AuthMode.GENERATED).

Why (ETSI EN 303 645 provision 5.1, the EU Cyber Resilience Act): no universal default
credentials and nothing open unless configured open. Each device gets its own 128-bit secret;
whoever can read the service user's files (root, the service user) can read it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from edge import durable
from edge.auth.repository import TokenRepository
from edge.auth.tokens import generate_secret

DEVICE_TOKEN_NAME = "device-token"


def secret_path(data_path: Path) -> Path:
    return Path(data_path) / ".edge" / DEVICE_TOKEN_NAME


def ensure(repo: TokenRepository, data_path: Path, now: datetime) -> Path | None:
    """Create the device token unless a full-access token exists; the secret file's path if created."""
    if repo.has_full_access_token():
        return None
    path = secret_path(data_path)
    if repo.damage is not None and path.exists():
        # tokens.json is damaged: the secret in this file is the configured one and keeps working
        # (in memory only); a new one would lock the operator out
        repo.add_full_access(DEVICE_TOKEN_NAME, path.read_text().strip(), now)
        return None
    secret = generate_secret(DEVICE_TOKEN_NAME)
    durable.atomic_write(path, (secret + "\n").encode("ascii"), failure="Cannot write the device token file",
                         mode=0o600)
    repo.add_full_access(DEVICE_TOKEN_NAME, secret, now)
    return path
