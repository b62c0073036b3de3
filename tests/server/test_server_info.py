"""/info names the instance and its role as ReductStore 1.21 does (spec §3.3)."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.helpers import NO_AUTH


def test_instance_name_and_role(make_server):
    srv = make_server({"RS_INSTANCE_NAME": "  line-3-camera  "}, auth=NO_AUTH)
    info = requests.get(f"{srv.api}/info", timeout=5).json()
    assert info["instance_name"] == "line-3-camera" and info["instance_role"] == "STANDALONE"


def test_instance_name_defaults_to_the_host_name(make_server):
    srv = make_server({"RS_INSTANCE_ROLE": "standalone"}, auth=NO_AUTH)
    info = requests.get(f"{srv.api}/info", timeout=5).json()
    assert info["instance_name"] == (socket.gethostname().strip() or "unknown")
    assert info["instance_role"] == "STANDALONE"


@pytest.mark.parametrize("role, text", [("REPLICA", "not supported by edge"), ("LEADER", "is not one of")])
def test_roles_edge_does_not_build_stop_start_up(make_server, role, text):
    with pytest.raises(RuntimeError) as info:
        make_server({"RS_INSTANCE_ROLE": role}, auth=NO_AUTH)
    assert "RS_INSTANCE_ROLE" in str(info.value) and text in str(info.value)
