"""SIGKILL between (and inside) the pieces of a LiquidFiles chunked upload.

Every piece that was answered is on disk; after ``kill -9`` and a restart the upload completes
when the missing pieces arrive, byte for byte. A piece cut off mid-body is not kept (it was never
answered) and is simply sent again. A restart after every piece arrived but before the upload was
marked done finishes it once, without a second record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import requests

from tests.helpers import EdgeProcess, token_auth

KEY = "crash-key"
AUTH = (KEY, "x")
ADMIN = {"Authorization": f"Bearer {KEY}"}
PIECE = 256 * 1024


def _piece(srv: EdgeProcess, data: bytes, i: int, n: int, name: str = "clip.bin") -> dict:
    r = requests.post(f"{srv.url}/link/attachments/upload", params={"filename": name, "chunks": n, "chunk": i},
                      data=data, auth=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _read(srv: EdgeProcess, attachment_id: int) -> bytes:
    r = requests.get(f"{srv.api}/b/attachments/files", params={"ts": attachment_id}, headers=ADMIN, timeout=30)
    assert r.status_code == 200, r.headers
    return r.content


def test_kill_between_pieces_then_complete_after_restart(tmp_path):
    data = os.urandom(PIECE * 4 + 1234)
    pieces = [data[i * PIECE:(i + 1) * PIECE] for i in range(4)] + [data[4 * PIECE:]]
    srv = EdgeProcess(tmp_path / "data", auth=token_auth(KEY)).start()
    try:
        assert _piece(srv, pieces[3], 3, 5)["chunk"]["received"] == 1
        assert _piece(srv, pieces[0], 0, 5)["chunk"]["received"] == 2
        srv.kill()                                               # SIGKILL right after two answers
        srv.start()
        assert _piece(srv, pieces[4], 4, 5)["chunk"]["received"] == 3   # the two before the crash are there
        # a piece cut off mid-body, then SIGKILL: never answered, so never kept
        head = (f"POST /link/attachments/upload?filename=clip.bin&chunks=5&chunk=1 HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Basic {base64.b64encode(f'{KEY}:x'.encode()).decode()}\r\n"
                f"Content-Length: {len(pieces[1])}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(head + pieces[1][:PIECE // 2])
            time.sleep(0.5)
            srv.kill()
        srv.start()
        assert _piece(srv, pieces[2], 2, 5)["chunk"]["received"] == 4
        done = _piece(srv, pieces[1], 1, 5)["attachment"]
        assert done["size"] == len(data) and done["checksum"] == hashlib.sha256(data).hexdigest()
        assert _read(srv, done["id"]) == data
        srv.kill()                                               # and it survives a crash once written
        srv.start()
        assert _read(srv, done["id"]) == data
        assert _piece(srv, pieces[1], 1, 5)["attachment"] == done   # a retried last piece: same answer
    finally:
        srv.kill()


def _plant_session(data_dir: Path, data: bytes, ts_us: int) -> None:
    """A session with every piece on disk and no ``complete.json``: the state a crash between the
    last piece's answer and the record write leaves (pieces are written, then assembled)."""
    folder = data_dir / ".edge" / "attachments" / ("ab" * 16)
    folder.mkdir(parents=True)
    halves = [data[:len(data) // 2], data[len(data) // 2:]]
    session = {"v": 1, "id": "ab" * 16, "key": "k" * 64, "token": "init-token", "filename": "planted.bin",
               "chunks": 2, "ts_us": ts_us, "content_type": None, "created_s": time.time(), "touched_s": time.time()}
    (folder / "session.json").write_text(json.dumps(session))
    for i, half in enumerate(halves):
        (folder / f"{i}.1.{hashlib.sha256(half).hexdigest()}.part").write_bytes(half)
    (folder / ".1.2.tmp").write_bytes(b"an unanswered piece")     # left by a crash: dropped at load


def test_restart_finishes_a_full_upload_exactly_once(tmp_path):
    data = os.urandom(100_000)
    ts = 1_700_000_000_000_000
    srv = EdgeProcess(tmp_path / "data", auth=token_auth(KEY)).start()
    srv.stop()
    _plant_session(tmp_path / "data", data, ts)
    srv.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = requests.get(f"{srv.api}/b/attachments/files", params={"ts": ts}, headers=ADMIN, timeout=10)
            if r.status_code == 200:
                break
            time.sleep(0.1)
        assert r.content == data and r.headers["x-reduct-label-filename"] == "planted.bin"
        assert r.headers["x-reduct-label-checksum"] == hashlib.sha256(data).hexdigest()
        srv.stop()
        # the same state again, with the record already written: recognised, not written twice
        shutil.rmtree(tmp_path / "data" / ".edge" / "attachments" / ("ab" * 16))
        _plant_session(tmp_path / "data", data, ts)
        srv.start()
        time.sleep(1.0)
        info = requests.get(f"{srv.api}/b/attachments", headers=ADMIN, timeout=10).json()
        assert [e["record_count"] for e in info["entries"] if e["name"] == "files"] == [1]
        assert "could not be finished" not in srv.log()
    finally:
        srv.kill()
