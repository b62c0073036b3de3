"""Drive ``crashfs``: mount a device image, cut the power, get the device after the cut.

Owns: starting the FUSE process on an image folder, waiting for the mount, the cut (freeze +
dump of what was durable), unmounting; ``available()`` says whether FUSE works here (and why
not). Must not: know edge (``edge_run``) or judge results.

    with CrashDisk(image, mnt) as disk:   # image: a folder, the device before (all durable)
        ... run a program on mnt ...
        disk.cut(after)                   # after: the device after the power cut
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def available() -> str | None:
    """None when a crash disk can be mounted here, else the reason."""
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "fusermount3 not installed (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:   # OSError: libfuse itself is missing
        return f"mfusepy cannot load libfuse: {exc}"
    return None


class CrashDisk:
    def __init__(self, image: Path, mountpoint: Path):
        self.image, self.mountpoint = Path(image), Path(mountpoint)
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "CrashDisk":
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.powerloss.crashfs", str(self.image),
                                      str(self.mountpoint)], cwd=str(ROOT), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("crashfs did not start")
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("crashfs did not mount")
            time.sleep(0.02)
        return self

    def _ask(self, line: str) -> str:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def cut(self, out: Path, seed: int | None = None) -> int:
        """The power goes: every later call fails (EIO); ``out`` becomes the device after it."""
        answer = self._ask(f"cut {out}" + ("" if seed is None else f" {seed}"))
        if not answer.startswith("cut "):
            raise RuntimeError(f"crashfs: {answer!r}")
        return int(answer.split()[1])

    def stats(self) -> str:
        return self._ask("stats")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(20)
        except (OSError, subprocess.TimeoutExpired, BrokenPipeError):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
            self.proc = None
