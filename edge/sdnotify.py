"""systemd readiness/status notifications (``sd_notify``) without any dependency.

Owns: sending one notification datagram to ``$NOTIFY_SOCKET`` (``READY=1``, ``STOPPING=1``,
``STATUS=...``, ``WATCHDOG=1``) and reading the watchdog interval from ``$WATCHDOG_USEC``.
Must not: import anything from edge, raise on a failed send, block.

The protocol is one AF_UNIX datagram per message; a ``NOTIFY_SOCKET`` starting with ``@``
names a Linux abstract socket. Without ``NOTIFY_SOCKET`` (not started by systemd with
``Type=notify``) every call is a no-op returning False.

In the one-file executable the Python process is a child of PyInstaller's bootloader, which
is systemd's main PID; the unit therefore says ``NotifyAccess=all``. ``WATCHDOG_PID`` names
that main PID, not us, so it is not checked against our own pid.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping


def _address(env: Mapping[str, str]) -> str | bytes | None:
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    if not path.startswith("/"):
        return None  # systemd only ever hands out absolute or abstract names
    return path


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1"`` or ``"STOPPING=1\\nSTATUS=draining"``).

    Returns True if the datagram was sent, False if there is no socket or the send failed.
    """
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(message.encode(), addr)
        return True
    except OSError:
        return False


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``$WATCHDOG_USEC`` in seconds, or None when
    the unit has no ``WatchdogSec=`` (or the value is unusable)."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000
