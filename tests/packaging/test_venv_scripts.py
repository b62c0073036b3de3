"""run.sh/test.sh's venv helper (packaging/venv.sh): the messages a newcomer sees on a stock
distribution. The full install is proven by packaging/test-debian12.sh (a Debian 12 chroot)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _edge_venv(tmp_path: Path, python: str, extras: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHON": python, "EDGE_VENV": str(tmp_path / "venv")}
    return subprocess.run(["bash", "-c", f'. packaging/venv.sh && edge_venv "{extras}" && echo "EDGE_PY=$EDGE_PY"'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _wrapper(tmp_path: Path, body: str) -> str:
    path = tmp_path / "python-wrapper"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_missing_venv_module_names_the_package(tmp_path):
    # Debian/Ubuntu without python3-venv: `venv` imports but `ensurepip` is missing.
    fake = tmp_path / "no-ensurepip" / "ensurepip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('ensurepip is split off, as on Debian')\n")
    python = _wrapper(tmp_path, f'PYTHONPATH={fake.parent} exec {sys.base_prefix}/bin/python3 "$@"\n')
    proc = _edge_venv(tmp_path, python)
    version = "%d.%d" % sys.version_info[:2]
    assert proc.returncode == 1
    assert "has no working 'venv' module" in proc.stderr and f"sudo apt install python{version}-venv" in proc.stderr
    assert not (tmp_path / "venv").exists()          # nothing half-made is left to be reused


def test_too_old_python_is_refused_with_the_way_out(tmp_path):
    python = _wrapper(tmp_path, "exit 1\n")            # answers no to "3.11 or newer?"
    proc = _edge_venv(tmp_path, python)
    assert proc.returncode == 1 and "edge needs 3.11 or newer" in proc.stderr


def test_a_venv_python_is_used_as_it_is(tmp_path):
    # PYTHON=.venv/bin/python (how the team runs the suite): no second venv, no reinstall when stamped.
    stamp = Path(sys.prefix) / ".edge-installed"
    if sys.prefix == sys.base_prefix or f"{REPO} [test]" not in (stamp.read_text() if stamp.exists() else ""):
        import pytest

        pytest.skip("the suite is not running in a venv that ./test.sh made")  # would install into it
    proc = _edge_venv(tmp_path, sys.executable, "test")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"EDGE_PY={sys.executable}"
    assert not (tmp_path / "venv").exists() and "installing" not in proc.stderr


def test_a_directory_that_is_not_a_venv_is_left_alone(tmp_path):
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "precious.txt").write_text("keep me")
    proc = _edge_venv(tmp_path, f"{sys.base_prefix}/bin/python3")
    assert proc.returncode == 1 and "is not a virtual environment" in proc.stderr
    assert (tmp_path / "venv" / "precious.txt").read_text() == "keep me"
