"""Bit rot in a staged tus upload: a byte that changed after it was acknowledged is never stored.

A tus upload's ``data`` file can sit on an SD card for hours between PATCHes (a phone on a bad
link). Its bytes were acknowledged; the CRC saved with the offset (``data_crc32`` in
``state.json``) is the only thing that can tell that they changed since. These tests flip a
byte in the acknowledged part of a real server's staged file and check the contract:

* the PATCH that completes the upload answers 500 with the reason; the record is not stored
  (not with the damaged bytes, not at all);
* the upload is set aside whole (``<id>.damaged-<time>``, the flipped bytes kept for repair) and
  is unknown from then on (404);
* it is reported: the log, ``/metrics`` (``edge_damaged_state_files``), ``/info`` and ``edge check``
  (which also names a rotten upload that is still staged, before the server ever looks at it);
* the same upload without the flip becomes the record, byte for byte (the test can fail).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT, EdgeProcess, token_auth

TIMEOUT = 20
INIT = "init-secret-for-upload-rot"
AUTH = {"Authorization": f"Bearer {INIT}"}
TUS = {"Tus-Resumable": "1.0.0", **AUTH}
OCTET = {"Content-Type": "application/offset+octet-stream"}
SIZE = 3 * 2**20 + 17          # more than one read of the hand-over (1 MiB), not a multiple of it
FIRST = 2 * 2**20              # acknowledged by the first PATCH; the flip lands in here


def body() -> bytes:
    seed = hashlib.sha256(b"upload-rot").digest()
    return (seed * (SIZE // 32 + 1))[:SIZE]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def edge_check(data: Path) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "edge", "check", "--data-path", str(data)], cwd=str(ROOT),
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def damaged_gauge(proc: EdgeProcess) -> float:
    text = requests.get(f"{proc.url}/metrics", headers=AUTH, timeout=TIMEOUT).text
    line = next(x for x in text.splitlines() if x.startswith("edge_damaged_state_files "))
    return float(line.split()[1])


def start_upload(proc: EdgeProcess, ts: int) -> str:
    r = requests.post(f"{proc.api}/uploads", timeout=TIMEOUT, headers={
        **TUS, "Upload-Length": str(SIZE),
        "Upload-Metadata": f"bucket {b64('b')},entry {b64('tus')},ts {b64(str(ts))}"})
    assert r.status_code == 201, r.headers
    url = proc.url + urllib.parse.urlsplit(r.headers["location"]).path
    r = requests.patch(url, data=body()[:FIRST], headers={**TUS, **OCTET, "Upload-Offset": "0"}, timeout=TIMEOUT)
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(FIRST), r.headers
    return url


def finish(url: str) -> requests.Response:
    return requests.patch(url, data=body()[FIRST:], timeout=TIMEOUT,
                          headers={**TUS, **OCTET, "Upload-Offset": str(FIRST)})


def staged(data: Path, url: str) -> Path:
    return data / ".edge" / "uploads" / url.rsplit("/", 1)[1]


def flip(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x5A]))


def record(proc: EdgeProcess, ts: int) -> requests.Response:
    return requests.get(f"{proc.api}/b/b/tus?ts={ts}", headers=AUTH, timeout=TIMEOUT)


@pytest.fixture
def server(tmp_path):
    proc = EdgeProcess(tmp_path / "data", auth=token_auth(INIT)).start()
    try:
        assert requests.post(f"{proc.api}/b/b", headers=AUTH, timeout=TIMEOUT).status_code == 200
        yield proc
    finally:
        proc.stop()


def test_a_byte_rotten_in_a_staged_upload_is_never_stored(server):
    data = server.data_path
    good, rotten = start_upload(server, 1), start_upload(server, 2)
    folder = staged(data, rotten)
    flip(folder / "data", 1_000_003)
    code, out = edge_check(data)       # a second reader of the live folder: it only reads
    assert code == 1 and f"{folder.name}/data: damaged" in out, out
    assert damaged_gauge(server) == 0

    r = finish(good)                   # the control: the same upload, not flipped, is stored
    assert r.status_code == 204, r.headers
    assert record(server, 1).content == body()

    r = finish(rotten)
    assert r.status_code == 500, r.headers
    error = r.headers["x-reduct-error"]
    assert "staged bytes were found damaged" in error and "upload the file again" in error, error
    assert record(server, 2).status_code == 404                  # nothing stored, not even in part
    assert requests.head(rotten, headers=TUS, timeout=TIMEOUT).status_code == 404
    kept = [p for p in folder.parent.iterdir() if p.name.startswith(folder.name + ".damaged-")]
    assert len(kept) == 1 and not folder.exists(), sorted(p.name for p in folder.parent.iterdir())
    want = bytearray(body()[:FIRST])
    want[1_000_003] ^= 0x5A
    assert (kept[0] / "data").read_bytes()[:FIRST] == bytes(want)   # kept byte for byte, never deleted
    assert damaged_gauge(server) == 1
    info = requests.get(f"{server.api}/info", headers=AUTH, timeout=TIMEOUT).json()
    assert any(folder.name in line and "no longer matches its checksum" in line for line in info["recovery"]), info
    assert "no longer matches its checksum" in server.log_path.read_text(errors="replace")
    # the bucket goes on: the next write to the same place is an ordinary one
    assert requests.post(f"{server.api}/b/b/tus?ts=2", data=b"again", headers=AUTH, timeout=TIMEOUT).status_code == 200

    server.stop()
    code, out = edge_check(data)
    assert code == 1 and f"{kept[0].name}: damaged copy kept for repair" in out, out


def test_rot_while_the_server_is_down_is_found_after_the_restart(server):
    data = server.data_path
    url = start_upload(server, 3)
    server.stop()
    flip(staged(data, url) / "data", 17)
    server.start()
    url = server.url + urllib.parse.urlsplit(url).path
    assert requests.head(url, headers=TUS, timeout=TIMEOUT).headers["Upload-Offset"] == str(FIRST)
    r = finish(url)                    # the client resumes where it was told, then the check fails
    assert r.status_code == 500 and "damaged" in r.headers["x-reduct-error"], r.headers
    assert record(server, 3).status_code == 404
    assert damaged_gauge(server) == 1
