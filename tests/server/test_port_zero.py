"""RS_PORT=0: edge binds an ephemeral port and reports it (log line and EDGE_PORT_FILE).

The whole suite relies on this (tests/helpers.py starts every server so); here the report itself
is checked: the file holds exactly the port that answers, the log names it, and URLs edge hands
out name the bound port, not 0.
"""

from __future__ import annotations

import re

import requests

from tests.helpers import NO_AUTH, EdgeProcess


def test_port_zero_is_reported_in_the_log_and_the_port_file(tmp_path):
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        assert proc.port_file.read_text() == f"{proc.port}\n" and proc.port > 0
        assert f"listening on http://127.0.0.1:{proc.port}" in proc.log()
        assert not list(proc.port_file.parent.glob(f".{proc.port_file.name}.*"))   # no temp file left
        r = requests.get(f"{proc.api}/alive", timeout=5)
        assert r.status_code == 200
    finally:
        assert proc.stop() == 0


def test_restart_rebinds_the_port_it_had(tmp_path):
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        first = proc.port
        proc.restart()
        assert proc.port == first and proc.port_file.read_text() == f"{first}\n"
    finally:
        proc.stop()


def test_links_name_the_bound_port_not_zero(tmp_path):
    # No Host header to fall back on: the handed-out location comes from the configured address.
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        assert requests.post(f"{proc.api}/b/p", timeout=5).status_code == 200
        assert requests.post(f"{proc.api}/b/p/e?ts=1", data=b"x", timeout=5).status_code == 200
        doc = {"bucket": "p", "entry": "e", "record_entry": "e", "record_timestamp": 1, "expire_at": 4102444800, "query": {"query_type": "QUERY"}}
        r = requests.post(f"{proc.api}/links/zero", json=doc, timeout=5, headers={"host": "no_such_host"})
        assert r.status_code == 200, r.headers.get("x-reduct-error")
        link = r.json()["link"]
        assert re.match(rf"http://127\.0\.0\.1:{proc.port}/", link), link
    finally:
        proc.stop()
