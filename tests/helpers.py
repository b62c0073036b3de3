"""Test helpers: run a real `edge serve` process on an ephemeral loopback port with a temp data folder.

Every server started here listens on 127.0.0.1 only, binds port 0 (``RS_PORT=0``: the kernel
picks a port no other process holds) and reports the port it got through ``EDGE_PORT_FILE``;
no port is ever guessed, so tests can run in parallel (pytest-xdist). A restart re-binds the
port the server had (links handed out before it stay valid). Each server is waited for under a
deadline and is always stopped (SIGTERM, then SIGKILL) by its fixture.

Each server states its authentication choice (``auth=``, no default), as an operator must:
``NO_AUTH`` (RS_DISABLE_AUTH=true), ``token_auth(secret)`` (RS_API_TOKEN) or ``GENERATED`` (no
variable: the server creates its device token; ``EdgeProcess.token`` reads it back).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import requests

ROOT = Path(__file__).resolve().parent.parent


class ClosedPort:
    """A loopback port that refuses connections for as long as this object lives: the socket is
    bound (so no other process can take the port) but never listens, so a connect gets RST."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "ClosedPort":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_serial = itertools.count()

AUTH_VARIABLES = ("RS_API_TOKEN", "RS_INIT_API_TOKEN", "RS_DISABLE_AUTH")


@dataclass(frozen=True)
class Auth:
    """An authentication choice: the variables that make it, and the secret when the test knows it."""

    env: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None


NO_AUTH = Auth({"RS_DISABLE_AUTH": "true"})
GENERATED = Auth({})


def token_auth(secret: str) -> Auth:
    return Auth({"RS_API_TOKEN": secret}, secret)


class EdgeProcess:
    """One `python -m edge serve` subprocess."""

    def __init__(self, data_path: Path, env: dict[str, str] | None = None, port: int | None = None, *, auth: Auth):
        self.data_path = Path(data_path)
        self.extra_env = dict(env or {})
        stated = [v for v in AUTH_VARIABLES if v in self.extra_env]
        if stated:
            raise ValueError(f"state the auth choice with auth=..., not {stated} in env")
        self.auth = auth
        self.extra_env.update(auth.env)
        self.port = port or 0           # 0 until started: the port the server reports
        self.proc: subprocess.Popen | None = None
        stem = f"edge-{self.data_path.name}-{os.getpid()}-{next(_serial)}"
        self.log_path = self.data_path.parent / f"{stem}.log"

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the server has no port before start()")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        base = self.extra_env.get("RS_API_BASE_PATH", "/").strip("/")
        return f"{self.url}/{base + '/' if base else ''}api/v1"

    @property
    def token(self) -> str | None:
        """The full-access secret: the one given, or the generated one read from its file."""
        if self.auth.secret is not None:
            return self.auth.secret
        if self.auth is GENERATED:
            return (self.data_path / ".edge" / "device-token").read_text().strip()
        return None

    def start(self, timeout_s: float = 20.0) -> "EdgeProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        self.port_file = self.log_path.with_suffix(".port")   # beside the log (a caller may move both)
        self.port_file.unlink(missing_ok=True)
        env.update({"RS_DATA_PATH": str(self.data_path), "RS_HOST": "127.0.0.1", "RS_PORT": str(self.port),
                    "EDGE_PORT_FILE": str(self.port_file), "RS_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)})
        env.update(self.extra_env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "serve"], env=env, cwd=str(ROOT),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited with {self.proc.returncode}:\n{self.log()}")
            if not self.port_file.exists():     # written (atomically) once the server listens
                time.sleep(0.02)
                continue
            self.port = int(self.port_file.read_text())
            try:
                if requests.get(f"{self.api}/alive", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"edge did not answer /alive within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after the timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise RuntimeError("edge did not stop on SIGTERM")
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if hasattr(self, "_log"):
            self._log.close()

    def restart(self) -> "EdgeProcess":
        self.stop()
        return self.start()
