"""Parsing of setting values, and collecting every bad one (the bottom of the settings rooms).

Owns: the value syntaxes every room's settings share (byte sizes, booleans, integers, numbers) and
``Problems``, which lets one start-up report every bad value together.
Must not: read ``os.environ``, do I/O, import anything from edge but ``errors``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from .errors import ConfigError

KB, MB, GB = 1000, 1000**2, 1000**3
KiB, MiB, GiB = 1024, 1024**2, 1024**3


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": KB, "mb": MB, "gb": GB, "tb": 1000 * GB, "kib": KiB, "mib": MiB, "gib": GiB, "tib": 1024 * GiB}


def parse_size(text: str, name: str) -> int:
    """Byte sizes as ReductStore accepts them: ``1000``, ``64MB``, ``1GiB``."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ConfigError(f"{name}: '{text}' is not a byte size (e.g. 1000, 64MB, 1GiB)")
    unit = (m.group(2) or "b").lower()
    return int(m.group(1)) * _SIZE_UNITS[unit]


def parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: '{text}' is not a boolean (true/false)")


def parse_int(text: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"{name}: '{text}' is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return value


def parse_float(text: str, name: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{name}: '{text}' is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}: must not be negative")
    return value


class Problems:
    """Bad values found while reading settings; ``raise_all()`` reports them in one ConfigError."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextmanager
    def each(self) -> Iterator[None]:
        """Run one setting's parsing; a ConfigError is noted and reading goes on."""
        try:
            yield
        except ConfigError as exc:
            self.messages.append(str(exc))

    def raise_all(self) -> None:
        if len(self.messages) == 1:
            raise ConfigError(self.messages[0])
        if self.messages:
            raise ConfigError(f"{len(self.messages)} bad settings: " + "; ".join(self.messages))

