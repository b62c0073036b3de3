"""Shared fixtures: real `edge serve` subprocesses on free loopback ports with temp data folders."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.helpers import NO_AUTH, Auth, EdgeProcess

os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=100, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
except ImportError:  # pragma: no cover
    pass

_names = itertools.count()

# Files whose tests must run alone (./test.sh's second, serial pass): timing bounds that a busy
# neighbour would break, power-loss cuts (FUSE crash disk), start-up/memory bounds, the one-file
# build. A single test can also say so itself with @pytest.mark.serial.
SERIAL_FILES = (
    "tests/powerloss/",
    "tests/reliability/test_abuse.py",
    "tests/server/test_scale_bounds.py",
    "tests/server/test_slow_disk.py",
    "tests/packaging/test_binary_smoke.py",
)


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        rel = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if rel.startswith(SERIAL_FILES):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server without authentication (RS_DISABLE_AUTH=true) per test module; tests use unique
    bucket names. Tests of authentication start their own with ``make_server(auth=...)``."""
    proc = EdgeProcess(tmp_path_factory.mktemp("edge") / "data", auth=NO_AUTH).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path):
    """Factory for servers with their own environment (quotas, ...) and a stated auth choice
    (``auth=NO_AUTH``, ``token_auth(secret)`` or ``GENERATED``); all stopped at the end."""
    started: list[EdgeProcess] = []

    def make(env: dict[str, str] | None = None, data_path=None, *, auth: Auth) -> EdgeProcess:
        proc = EdgeProcess(data_path or tmp_path / f"data{len(started)}", env, auth=auth).start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def bucket_name(request):
    """A bucket name unique within the module's shared server."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "-", f"b{next(_names)}-{request.node.name[:40]}")
