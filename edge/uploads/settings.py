"""The uploads room's settings (tus uploads and attachment staging): ``Limits``, from ``EDGE_UPLOAD*``.

Owns: these variables, their defaults and parsing. Must not: do I/O; ``edge/config.py`` composes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from edge.envparse import GiB, parse_float, parse_int, parse_size


@dataclass(frozen=True)
class Limits:
    """Settings with safe defaults; a bad value stops start-up naming the variable (ConfigError)."""

    max_bytes: int = 16 * GiB          # EDGE_UPLOAD_MAX_BYTES: the largest single upload (Tus-Max-Size)
    max_active: int = 64               # EDGE_UPLOADS_MAX_ACTIVE: uploads in progress at once
    staging_bytes: int = 64 * GiB      # EDGE_UPLOAD_STAGING_BYTES: sum of Upload-Length in progress
    expire_s: float = 24 * 3600.0      # EDGE_UPLOAD_EXPIRE_S: idle time before the reaper deletes one

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Limits":
        values: dict[str, object] = {}
        if env.get("EDGE_UPLOAD_MAX_BYTES"):
            values["max_bytes"] = parse_size(env["EDGE_UPLOAD_MAX_BYTES"], "EDGE_UPLOAD_MAX_BYTES")
        if env.get("EDGE_UPLOADS_MAX_ACTIVE"):
            values["max_active"] = parse_int(env["EDGE_UPLOADS_MAX_ACTIVE"], "EDGE_UPLOADS_MAX_ACTIVE", 1)
        if env.get("EDGE_UPLOAD_STAGING_BYTES"):
            values["staging_bytes"] = parse_size(env["EDGE_UPLOAD_STAGING_BYTES"], "EDGE_UPLOAD_STAGING_BYTES")
        if env.get("EDGE_UPLOAD_EXPIRE_S"):
            values["expire_s"] = parse_float(env["EDGE_UPLOAD_EXPIRE_S"], "EDGE_UPLOAD_EXPIRE_S")
        return cls(**values)  # type: ignore[arg-type]
