"""edge.sdnotify against real AF_UNIX datagram sockets (path and abstract), like systemd's."""

import os
import socket
import uuid

import pytest

from edge import sdnotify


@pytest.fixture
def receiver(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def test_ready_reaches_path_socket(receiver, monkeypatch):
    path, sock = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.notify("READY=1") is True
    assert sock.recv(4096) == b"READY=1"


def test_multiline_message_is_one_datagram(receiver):
    path, sock = receiver
    assert sdnotify.notify("STOPPING=1\nSTATUS=draining", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"


def test_abstract_socket():
    name = f"edge-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_noop_without_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": ""}) is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": "relative/path"}) is False


def test_send_failure_is_false_not_raise(tmp_path):
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "missing.sock")}) is False


def test_watchdog_interval():
    assert sdnotify.watchdog_interval_s({}) is None
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


def test_default_env_is_os_environ(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert sdnotify.watchdog_interval_s() == 1.0
    assert os.environ["WATCHDOG_USEC"] == "2000000"
