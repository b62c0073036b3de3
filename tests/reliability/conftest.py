"""Collect the two script-style modules (``crash_soak.py``, ``soak.py``) as test modules too:
each is a script for long runs and holds a short pytest test for CI."""

from __future__ import annotations

import pytest

SCRIPT_MODULES = {"crash_soak.py", "soak.py"}


def pytest_collect_file(file_path, parent):
    # A path given on the command line is collected by pytest itself; don't collect it twice.
    if file_path.name in SCRIPT_MODULES and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
