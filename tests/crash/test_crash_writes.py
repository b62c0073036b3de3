"""SIGKILL during concurrent writes: every acknowledged record is intact after restart.

Eight writer threads post records (small and large) to one server; the test kills the process
with SIGKILL at a random moment, restarts it on the same data folder, and reads back every
record that had been answered 200, byte for byte. Five cycles on one data folder, so recovery
also runs over the torn tails of earlier cycles.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time

import requests

from tests.helpers import EdgeProcess, NO_AUTH

CYCLES = 5
WRITERS = 8


def _writer(api: str, bucket: str, wid: int, cycle: int, acked: dict, stop: threading.Event) -> None:
    session = requests.Session()
    n = 0
    while not stop.is_set():
        n += 1
        ts = cycle * 10**9 + wid * 10**6 + n
        size = random.choice([0, 10, 1000, 70_000, 1_500_000]) if n % 7 == 0 else random.randint(1, 4000)
        body = os.urandom(size)
        entry = f"w{wid % 3}"
        try:
            r = session.post(f"{api}/b/{bucket}/{entry}?ts={ts}", data=body,
                             headers={"x-reduct-label-w": str(wid)}, timeout=5)
        except requests.RequestException:
            return
        if r.status_code == 200:
            acked[(entry, ts)] = hashlib.sha256(body).hexdigest()


def test_sigkill_during_concurrent_writes_loses_no_acknowledged_record(tmp_path):
    data = tmp_path / "data"
    proc = EdgeProcess(data, auth=NO_AUTH).start()
    port = proc.port
    assert requests.post(f"{proc.api}/b/crash").status_code == 200
    acked: dict = {}
    try:
        for cycle in range(1, CYCLES + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=_writer, args=(proc.api, "crash", w, cycle, acked, stop))
                       for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.3, 1.2))
            proc.kill()  # SIGKILL mid-traffic
            stop.set()
            for t in threads:
                t.join(10)
            proc = EdgeProcess(data, port=port, auth=NO_AUTH).start()
            session = requests.Session()
            for (entry, ts), digest in acked.items():
                r = session.get(f"{proc.api}/b/crash/{entry}?ts={ts}", timeout=10)
                assert r.status_code == 200, (cycle, entry, ts, r.status_code, r.headers.get("x-reduct-error"))
                assert hashlib.sha256(r.content).hexdigest() == digest, (cycle, entry, ts)
        assert len(acked) > 50
        # Still accepts writes after all that.
        assert requests.post(f"{proc.api}/b/crash/after?ts=1", data=b"ok").status_code == 200
    finally:
        proc.kill()


def test_sigterm_finishes_in_flight_write_and_exits_zero(tmp_path):
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    requests.post(f"{proc.api}/b/term")
    payload = os.urandom(30 * 1024 * 1024)
    result: dict = {}

    def slow_upload():
        # Raw socket: the body trickles in while the server is asked to stop.
        with socket.create_connection(("127.0.0.1", proc.port), timeout=30) as s:
            s.sendall(f"POST /api/v1/b/term/e?ts=1 HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Length: {len(payload)}\r\n\r\n".encode())
            for i in range(0, len(payload), 1 << 20):
                time.sleep(0.02)
                s.sendall(payload[i:i + (1 << 20)])
            result["status"] = int(s.recv(4096).split(b" ")[1])

    t = threading.Thread(target=slow_upload)
    t.start()
    time.sleep(0.2)
    code = proc.stop()
    t.join(30)
    assert code == 0
    assert result.get("status") == 200
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        assert requests.get(f"{proc.api}/b/term/e?ts=1").content == payload
    finally:
        proc.stop()
