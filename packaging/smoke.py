#!/usr/bin/env python3
"""Smoke test of an `edge` executable (the one-file binary from packaging/build.sh, or the
`edge` console script installed by pip): starts `BINARY serve` on a free loopback port with a
fresh temporary RS_DATA_PATH and no authentication setting (as a service starts by default),
measures the time from process start to the first 200 from GET /api/v1/alive, checks that a
request without a token is refused (401) and that the generated device token (read from
<data>/.edge/device-token, mode 0600) works, writes and reads a record with reduct-py using it,
GETs /ui/, /ui/js/app.js and /metrics (all 200),
measures idle RSS (the bootloader and its Python child together), sends SIGTERM and checks
exit code 0 within --stop-timeout, restarts on the same data, checks the record is intact,
and stops it with SIGTERM to the whole process group (the server then receives it twice),
again expecting exit code 0.

    python3 packaging/smoke.py --binary dist/edge
    python3 packaging/smoke.py --binary "$(which edge)"
    python3 packaging/smoke.py --binary dist/edge --start-only   # start, wait for alive, SIGTERM (for timing)

Needs reduct-py and psutil (the project's test extra). Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUCKET, ENTRY = "smoke", "sensor/a"
PAYLOAD = os.urandom(1000) + b"edge smoke payload"
LABELS = {"kind": "smoke", "n": "1"}
TS = 1_700_000_000_123_456


def http_get(port: int, path: str, timeout: float = 2.0, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class Server:
    """The executable serving on ``port`` (0: an ephemeral port, read back from EDGE_PORT_FILE)."""

    def __init__(self, cmd: list[str], port: int, data: Path, log: Path):
        self.cmd, self.port, self.data, self.log_path = cmd, port, data, log
        self.port_file = log.with_suffix(".port")

    def start(self, alive_timeout: float) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RS_", "EDGE_"))}
        self.port_file.unlink(missing_ok=True)
        env.update(RS_HOST="127.0.0.1", RS_PORT=str(self.port), RS_DATA_PATH=str(self.data),
                   EDGE_PORT_FILE=str(self.port_file))
        env.pop("NOTIFY_SOCKET", None)
        self.log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd + ["serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = t0 + alive_timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before answering")
            if not self.port_file.exists():     # written once the server listens
                time.sleep(0.005)
                continue
            self.port = int(self.port_file.read_text())
            try:
                if http_get(self.port, "/api/v1/alive", timeout=1.0) == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"no 200 from /api/v1/alive within {alive_timeout} s")

    def rss(self) -> tuple[int, int]:
        """(RSS of the main process, RSS of it plus its children) in bytes."""
        import psutil

        p = psutil.Process(self.proc.pid)
        main = p.memory_info().rss
        return main, main + sum(c.memory_info().rss for c in p.children(recursive=True))

    def stop(self, timeout: float, group: bool = False) -> tuple[int | None, float]:
        """SIGTERM to the main process only (systemd KillMode=mixed) or, with ``group``, to every
        process of the group at once (KillMode=control-group, kill -- -PGID): in the one-file
        executable the server then gets it twice, directly and forwarded by the bootloader."""
        t0 = time.perf_counter()
        if group:
            os.killpg(self.proc.pid, signal.SIGTERM)
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.log.close()
        return rc, time.perf_counter() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            import psutil

            try:
                kids = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                kids = []
            for p in [self.proc, *kids]:
                try:
                    p.kill()
                except Exception:
                    pass
            self.proc.wait()


async def write_record(url: str, token: str) -> None:
    from reduct import Client

    async with Client(url, api_token=token) as client:
        bucket = await client.create_bucket(BUCKET, exist_ok=True)
        await bucket.write(ENTRY, PAYLOAD, timestamp=TS, labels=LABELS, content_type="application/octet-stream")


async def read_record(url: str, token: str) -> None:
    from reduct import Client

    async with Client(url, api_token=token) as client:
        bucket = await client.get_bucket(BUCKET)
        async with bucket.read(ENTRY, timestamp=TS) as record:
            data = await record.read_all()
            if data != PAYLOAD:
                raise AssertionError(f"payload differs ({len(data)} bytes read, {len(PAYLOAD)} written)")
            if dict(record.labels) != LABELS:
                raise AssertionError(f"labels differ: {record.labels!r}")
            if record.content_type != "application/octet-stream":
                raise AssertionError(f"content type differs: {record.content_type!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="path of the edge executable (or a name on PATH)")
    ap.add_argument("--alive-timeout", type=float, default=15.0)
    ap.add_argument("--stop-timeout", type=float, default=10.0)
    ap.add_argument("--max-start-s", type=float, default=None,
                    help="fail if start to first 200 from /api/v1/alive takes longer (seconds)")
    ap.add_argument("--start-only", action="store_true", help="start, wait for alive, SIGTERM; no other checks")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    args = ap.parse_args()

    binary = shutil.which(args.binary) or args.binary
    if not os.access(binary, os.X_OK):
        print(f"FAIL: {binary} is not executable", file=sys.stderr)
        return 2
    binary = os.path.abspath(binary)
    work = Path(tempfile.mkdtemp(prefix="edge-smoke-"))
    data, log = work / "data", work / "server.log"
    srv = Server([binary], 0, data, log)     # port 0: known once started (srv.port)
    fig: dict[str, object] = {"binary": binary, "size_bytes": os.path.getsize(binary)}
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        if args.start_only:
            t = srv.start(args.alive_timeout)
            rc, _ = srv.stop(args.stop_timeout)
            print(f"start_to_alive_s={t:.4f} rc={rc}")
            return 0 if rc == 0 else 1

        v = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        fig["version"] = (v.stdout or v.stderr).strip()
        check(v.returncode == 0 and bool(fig["version"]), f"--version -> {fig['version']!r} (rc {v.returncode})")

        t = srv.start(args.alive_timeout)
        fig["start_to_alive_s"] = round(t, 4)
        limit = f" (limit {args.max_start_s} s)" if args.max_start_s else ""
        check(args.max_start_s is None or t <= args.max_start_s, f"first 200 from GET /api/v1/alive after {t:.3f} s{limit}")

        import asyncio

        port = srv.port
        url = f"http://127.0.0.1:{port}"

        # Secure by default: nothing configured means a generated device token, not an open server.
        status = http_get(port, "/api/v1/info")
        check(status == 401, f"GET /api/v1/info without a token -> {status} (401 expected)")
        secret_file = data / ".edge" / "device-token"
        token = secret_file.read_text().strip()
        mode = secret_file.stat().st_mode & 0o777
        check(mode == 0o600, f"device token file {secret_file.name} has mode {mode:o} (600 expected)")
        asyncio.run(write_record(url, token))
        asyncio.run(read_record(url, token))
        check(True, "wrote and read back a record with reduct-py and the generated token")

        # The console and the metrics are part of the one file: served from inside the binary.
        for path in ("/ui/", "/ui/js/app.js", "/metrics"):
            status = http_get(port, path, token=token)
            fig[f"status {path}"] = status
            check(status == 200, f"GET {path} -> {status}")
        # The fast CRC-32 (isal) must be inside the one file, not silently replaced by zlib's.
        crc = re.search(r"crc32 by ([^\n]*)", srv.log_path.read_text(errors="replace"))
        check(crc is not None and crc.group(1).strip() == "isal",
              f"crc32 implementation: {crc.group(1).strip() if crc else 'not logged'}")

        time.sleep(1.0)  # let start-up garbage settle before reading idle memory
        main_rss, total_rss = srv.rss()
        fig["idle_rss_main_bytes"], fig["idle_rss_total_bytes"] = main_rss, total_rss
        print(f"info idle RSS {total_rss / 2**20:.1f} MiB total (main process {main_rss / 2**20:.1f} MiB)")

        rc, took = srv.stop(args.stop_timeout)
        fig["stop_s"] = round(took, 3)
        check(rc == 0, f"SIGTERM -> exit code {rc} after {took:.3f} s (limit {args.stop_timeout} s)")

        srv2 = Server([binary], port, data, log)
        t2 = srv2.start(args.alive_timeout)
        fig["restart_to_alive_s"] = round(t2, 4)
        try:
            check(secret_file.read_text().strip() == token, "the device token is kept across restarts")
            asyncio.run(read_record(url, token))
            check(True, f"record intact after restart (alive after {t2:.3f} s)")
        finally:
            rc2, _ = srv2.stop(args.stop_timeout, group=True)
        check(rc2 == 0, f"SIGTERM to the whole process group -> exit code {rc2}")
    except Exception as exc:  # any failure above: report, show the server log
        failures.append(repr(exc))
        print(f"FAIL {exc!r}")
        for s in [srv, locals().get("srv2")]:
            if s is not None and hasattr(s, "proc"):
                s.kill()
        if log.exists():
            print("---- server log (tail) ----")
            print(log.read_text(errors="replace")[-4000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"info binary {binary}: {fig['size_bytes'] / 2**20:.1f} MiB")
    if args.json:
        print(json.dumps(fig))
    if failures:
        print(f"smoke: {len(failures)} check(s) failed")
        return 1
    print("smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
