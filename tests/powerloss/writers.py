"""Known writers to validate the crash disk before it judges edge: one that must lose, one that must not.

``python -m tests.powerloss.writers MODE FOLDER`` writes ``FOLDER/sub/<i>.rec`` for i = 0, 1, ...
and prints ``ack <i>`` once each file is "done" by that writer's standard:

* ``bad``: ``os.makedirs`` + write + rename, no fsync at all (what a careless program does);
* ``nodirsync``: fsyncs each file but never a folder (the bug edge had in ``atomic_write``);
* ``good``: ``edge.durable.make_dirs`` + ``edge.durable.replace_file`` (file fsync, rename,
  folder fsync): edge's own durable-write code.

``trial(mode, ...)`` runs one writer on a crash disk, cuts the power after a while, and counts
the acknowledged files missing or different on the device after the cut. The crash disk is
right only if ``bad`` and ``nodirsync`` lose files and ``good`` loses none.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.powerloss.harness import ROOT, CrashDisk


def content(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).hexdigest().encode() * (1 + i % 7)


def write_forever(mode: str, folder: Path) -> None:
    sub = folder / "sub"
    if mode == "good":
        from edge import durable

        durable.make_dirs(sub)
    else:
        os.makedirs(sub, exist_ok=True)
    i = 0
    while True:
        final, tmp = sub / f"{i}.rec", sub / f".{i}.tmp"
        if mode == "good":
            durable.replace_file(final, content(i))
        else:
            with open(tmp, "wb") as f:
                f.write(content(i))
                if mode == "nodirsync":
                    f.flush()
                    os.fsync(f.fileno())
            os.rename(tmp, final)
        print(f"ack {i}", flush=True)
        i += 1


@dataclass
class Trial:
    mode: str
    acked: int
    lost: int


def trial(mode: str, base: Path, run_s: float) -> Trial:
    image, mnt, after = base / "image", base / "mnt", base / "after"
    image.mkdir(parents=True)
    acked: list[int] = []
    with CrashDisk(image, mnt) as disk:
        proc = subprocess.Popen([sys.executable, "-m", "tests.powerloss.writers", mode, str(mnt / "data")],
                                cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: acked.extend(int(x.split()[1]) for x in proc.stdout
                                                              if x.startswith("ack ")), daemon=True)
        reader.start()
        time.sleep(run_s)
        disk.cut(after)
        proc.kill()
        proc.wait(10)
        reader.join(10)
    sub = after / "data" / "sub"
    lost = sum(1 for i in acked if not (sub / f"{i}.rec").exists() or (sub / f"{i}.rec").read_bytes() != content(i))
    return Trial(mode, len(acked), lost)


if __name__ == "__main__":
    write_forever(sys.argv[1], Path(sys.argv[2]))
