"""Helpers of the sharing-API tests: run the vendors' shell examples with real bash, curl and jq."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# The vendor's own example key, used as the server's initial token: then only the host changes.
SPEC_KEY = "Y9fdTmZdv0THButt5ZONIY"
TOOLS = [t for t in ("bash", "curl", "jq") if shutil.which(t) is None]
needs_tools = pytest.mark.skipif(bool(TOOLS), reason=f"missing {', '.join(TOOLS)} (apt-get install -y curl jq)")


def run_script(tmp_path: Path, name: str, text: str, *, server: str, timeout_s: float = 60.0) -> str:
    """Run a vendor example exactly as written, with only ``server=`` (and ``api_key=``) replaced."""
    script = text.replace('server="https://liquidfiles.example.com"', f'server="{server}"')
    assert f'server="{server}"' in script
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    done = subprocess.run(["bash", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    return done.stdout
