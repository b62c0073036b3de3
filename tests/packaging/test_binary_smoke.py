"""The one-file executable and the systemd unit.

- ``test_binary_smoke``: runs only when asked (EDGE_BINARY_SMOKE=1: packaging/smoke.sh builds
  dist/edge and smoke-tests it, ~30 s) or when a dist/edge already exists (then only
  packaging/smoke.py runs against it).
- ``test_unit_verifies``: packaging/check-unit.sh, when systemd-analyze is installed.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "dist" / "edge"
ASKED = os.environ.get("EDGE_BINARY_SMOKE") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not (ASKED or BINARY.exists()), reason="set EDGE_BINARY_SMOKE=1 to build and smoke-test dist/edge")
def test_binary_smoke():
    pytest.importorskip("reduct")
    pytest.importorskip("psutil")
    if ASKED:
        cmd = ["bash", str(REPO / "packaging" / "smoke.sh")]
        env = dict(os.environ, SMOKE_PYTHON=sys.executable)
    else:
        cmd = [sys.executable, str(REPO / "packaging" / "smoke.py"), "--binary", str(BINARY)]
        env = dict(os.environ)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-6000:], proc.stderr[-6000:], sep="\n")
    assert proc.returncode == 0, "smoke failed:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke: all checks passed" in proc.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_verifies():
    proc = subprocess.run(["bash", str(REPO / "packaging" / "check-unit.sh")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
