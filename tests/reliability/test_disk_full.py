"""Disk full: writes fail with 507, the server stays up, nothing written before is lost.

What it checks, and why: an edge device's disk fills up (a quota set too large, logs, another
program). Then every kind of write -- single records (buffered and streamed through), v1 batches,
label updates, bucket creation -- must fail cleanly with 507 ``Insufficient Storage`` and a text,
never a 500, never a crash, never a half-written record that later reads as damage. Everything
acknowledged before stays readable byte for byte (also after a restart on the full disk), and
once space is freed (a bucket is deleted) writes succeed again.

The data folder lives on a small file system of its own, 20 MiB: a tmpfs mounted by the test
(needs root), else a loop-mounted ext4 image (``mkfs.ext4`` + ``mount -o loop``), each tried
in turn; a variant that cannot be mounted here is skipped with the reason. ext4 is the more
realistic one (real ENOSPC from ``writev`` with delayed allocation, metadata blocks).
All traffic is on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import EdgeProcess, NO_AUTH

TIMEOUT = 15
SIZE_MB = 20


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


def _mount(kind: str, where: Path, tmp: Path) -> str | None:
    """Mount a small file system at ``where``; None on success, else why not."""
    where.mkdir(parents=True, exist_ok=True)
    if kind == "tmpfs":
        r = _run("mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(where))
        return None if r.returncode == 0 else f"mount -t tmpfs failed: {r.stderr.strip()}"
    if not shutil.which("mkfs.ext4"):
        return "mkfs.ext4 not installed"
    image = tmp / "disk.img"
    with open(image, "wb") as f:
        f.truncate(SIZE_MB << 20)
    r = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
    if r.returncode:
        return f"mkfs.ext4 failed: {r.stderr.strip()}"
    r = _run("mount", "-o", "loop", str(image), str(where))
    return None if r.returncode == 0 else f"mount -o loop failed: {r.stderr.strip()}"


@pytest.fixture(params=["tmpfs", "ext4"])
def small_fs(request, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (no quota tooling is set up either)")
    where = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    why = _mount(request.param, where, tmp_path)
    if why:
        pytest.skip(f"{request.param}: {why}")
    try:
        yield where
    finally:
        r = _run("umount", str(where))
        if r.returncode:
            _run("umount", "-l", str(where))


def _err(r: requests.Response) -> str:
    return f"{r.status_code} {r.headers.get('x-reduct-error')}"


def test_disk_full_is_507_server_stays_up_and_recovers(small_fs):
    data = small_fs / "data"
    proc = EdgeProcess(data, auth=NO_AUTH).start()
    try:
        api = proc.api
        s = requests.Session()
        # No quota (the default FIFO one would keep them inside the disk): the disk itself fills.
        none = {"quota_type": "NONE"}
        assert s.post(f"{api}/b/big", json=none, timeout=TIMEOUT).status_code == 200
        assert s.post(f"{api}/b/keep", json=none, timeout=TIMEOUT).status_code == 200
        acked: dict[tuple[str, str, int], bytes] = {}
        for ts in range(1, 6):
            body = os.urandom(30_000)
            assert s.post(f"{api}/b/keep/k?ts={ts}", data=body, timeout=TIMEOUT).status_code == 200
            acked[("keep", "k", ts)] = body

        # Fill it: 200 KiB buffered records and 1.5 MiB streamed ones until the disk says no.
        statuses: list[int] = []
        full_at = None
        for ts in range(1, 400):
            body = os.urandom(1_500_000 if ts % 5 == 0 else 200_000)
            r = s.post(f"{api}/b/big/e?ts={ts}", data=body, timeout=TIMEOUT)
            statuses.append(r.status_code)
            assert r.status_code in (200, 507), _err(r)
            if r.status_code == 200:
                acked[("big", "e", ts)] = body
            else:
                assert r.headers.get("x-reduct-error"), "507 without a text"
                full_at = full_at or ts
                if statuses.count(507) >= 5:
                    break
        assert full_at is not None, f"never got 507 on a {SIZE_MB} MiB file system"

        # Every other kind of write, on the full disk: 200 or 507, never 500.
        n = 10_000
        for _ in range(30):
            n += 1
            r = s.post(f"{api}/b/big/e?ts={n}", data=os.urandom(100_000), timeout=TIMEOUT)
            assert r.status_code in (200, 507), _err(r)
        r = s.post(f"{api}/b/big/e/batch", data=os.urandom(300_000),
                   headers={"x-reduct-time-20001": "100000,", "x-reduct-time-20002": "200000,"}, timeout=TIMEOUT)
        assert r.status_code in (200, 404, 405, 507), _err(r)  # 404/405: batch endpoint not there
        for k, v in r.headers.items():
            if k.lower().startswith("x-reduct-error-"):
                assert v.startswith("507,"), (k, v)
        for ts in list(t for (b, _, t) in acked if b == "big")[:20]:
            r = s.patch(f"{api}/b/big/e?ts={ts}", headers={"x-reduct-label-x": "y" * 2000}, timeout=TIMEOUT)
            assert r.status_code in (200, 507), _err(r)
        r = s.post(f"{api}/b/newbucket", timeout=TIMEOUT)
        assert r.status_code in (200, 507), _err(r)

        # Still up; everything acknowledged is readable byte for byte.
        assert s.get(f"{api}/alive", timeout=TIMEOUT).status_code == 200
        for (b, e, ts), body in acked.items():
            r = s.get(f"{api}/b/{b}/{e}?ts={ts}", timeout=TIMEOUT)
            assert r.status_code == 200 and r.content == body, (b, e, ts, _err(r))

        # Restart on the full disk: starts, serves, nothing lost or reported as torn.
        assert proc.stop() == 0
        proc = EdgeProcess(data, port=proc.port, auth=NO_AUTH).start()
        api = proc.api
        s = requests.Session()
        for (b, e, ts), body in acked.items():
            r = s.get(f"{api}/b/{b}/{e}?ts={ts}", timeout=TIMEOUT)
            assert r.status_code == 200 and r.content == body, (b, e, ts, _err(r))

        # Free space: delete the big bucket; writes succeed again.
        r = s.delete(f"{api}/b/big", timeout=TIMEOUT)
        assert r.status_code == 200, _err(r)
        for ts in range(100, 110):
            body = os.urandom(500_000)
            r = s.post(f"{api}/b/keep/k?ts={ts}", data=body, timeout=TIMEOUT)
            assert r.status_code == 200, _err(r)
            acked[("keep", "k", ts)] = body
        for (b, e, ts), body in acked.items():
            if b == "keep":
                assert s.get(f"{api}/b/{b}/{e}?ts={ts}", timeout=TIMEOUT).content == body
        print(f"disk full after {full_at - 1} big writes; {len(acked)} records acknowledged and read back")
    finally:
        proc.kill()
