"""SIGKILL in the middle of batch writes: every acknowledged record survives byte for byte.

Several writer threads send v1 and v2 batches (small records, 100 KB records and records above
the store's write-through threshold) to one server; the server is killed at a random moment while
batches are in flight, restarted on the same data folder, and every record that was answered 200
without an error header must read back with its exact bytes, content type and labels. Records
that were sent but not acknowledged may exist or not, but if they exist they must be intact too
(payloads are a function of entry and timestamp, so there is only one right answer).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time

import requests

from tests.helpers import EdgeProcess, NO_AUTH

ROUNDS = 6
WRITERS = 4
TIMEOUT = 10


def payload(entry: str, ts: int, size: int) -> bytes:
    seed = hashlib.sha256(f"{entry}@{ts}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def labels_for(entry: str, ts: int) -> dict[str, str]:
    return {"ts": str(ts), "kind": "crash", "note": f"{entry}, #{ts % 7}"}


class Writer(threading.Thread):
    """Writes batches until the server dies; remembers what was acknowledged and what was sent."""

    def __init__(self, api: str, bucket: str, ident: int, round_no: int, rng: random.Random):
        super().__init__(daemon=True)
        self.api, self.bucket, self.rng = api, bucket, rng
        self.entries = [f"w{ident}", f"w{ident}/sub"]
        self.next_ts = round_no * 10_000_000 + 1
        self.acked: list[tuple[str, int, int]] = []
        self.sent: list[tuple[str, int, int]] = []
        self.stop = threading.Event()

    def _sizes(self, n: int) -> list[int]:
        shape = self.rng.random()
        if shape < 0.6:
            return [self.rng.randint(0, 2048) for _ in range(n)]
        if shape < 0.9:
            return [self.rng.choice((0, 100, 100_000)) for _ in range(n)]
        return [self.rng.choice((10, 1_500_000)) for _ in range(min(n, 3))]

    def _records(self, entry: str, n: int) -> list[tuple[str, int, int]]:
        out = []
        for size in self._sizes(n):
            out.append((entry, self.next_ts, size))
            self.next_ts += self.rng.randint(1, 3)
        return out

    def _v1(self, session: requests.Session) -> None:
        entry = self.rng.choice(self.entries)
        records = self._records(entry, self.rng.randint(1, 80))
        headers = {}
        for _, ts, size in records:
            items = ",".join(f'{k}="{v}"' if "," in v else f"{k}={v}" for k, v in labels_for(entry, ts).items())
            headers[f"x-reduct-time-{ts}"] = f"{size},text/x-crash,{items}"
        body = b"".join(payload(e, ts, size) for e, ts, size in records)
        self.sent.extend(records)
        r = session.post(f"{self.api}/b/{self.bucket}/{entry}/batch", headers=headers, data=body, timeout=TIMEOUT)
        if r.status_code == 200:
            failed = {int(k[len("x-reduct-error-"):]) for k in r.headers if k.lower().startswith("x-reduct-error-")}
            self.acked.extend(rec for rec in records if rec[1] not in failed)

    def _v2(self, session: requests.Session) -> None:
        records = []
        for index, entry in enumerate(self.entries):
            records.append([(index, rec) for rec in self._records(entry, self.rng.randint(1, 40))])
        start = min(rec[1] for run in records for _, rec in run)
        headers = {"x-reduct-entries": ",".join(e.replace("/", "%2F") for e in self.entries),
                   "x-reduct-start-ts": str(start)}
        body = []
        flat = []
        for run in records:
            for index, (entry, ts, size) in run:
                items = ",".join(f'{k}="{v}"' if "," in v else f"{k}={v}" for k, v in labels_for(entry, ts).items())
                headers[f"x-reduct-{index}-{ts - start}"] = f"{size},text/x-crash,{items}"
                body.append(payload(entry, ts, size))
                flat.append((index, entry, ts, size))
        self.sent.extend((e, ts, size) for _, e, ts, size in flat)
        r = session.post(f"{self.api}/io/{self.bucket}/write", headers=headers, data=b"".join(body), timeout=TIMEOUT)
        if r.status_code == 200:
            failed = set()
            for k in r.headers:
                if k.lower().startswith("x-reduct-error-"):
                    index, delta = k[len("x-reduct-error-"):].split("-")
                    failed.add((int(index), start + int(delta)))
            self.acked.extend((e, ts, size) for index, e, ts, size in flat if (index, ts) not in failed)

    def run(self) -> None:
        session = requests.Session()
        try:
            while not self.stop.is_set():
                (self._v1 if self.rng.random() < 0.5 else self._v2)(session)
        except requests.RequestException:
            pass  # the server was killed


def check(api: str, bucket: str, records, *, must_exist: bool) -> int:
    found = 0
    session = requests.Session()
    for entry, ts, size in records:
        r = session.get(f"{api}/b/{bucket}/{entry}", params={"ts": ts}, timeout=TIMEOUT)
        if r.status_code == 404 and not must_exist:
            continue
        assert r.status_code == 200, (entry, ts, r.status_code, r.headers.get("x-reduct-error"))
        assert r.content == payload(entry, ts, size), (entry, ts, size, len(r.content))
        assert r.headers["content-type"] == "text/x-crash"
        labels = {k[len("x-reduct-label-"):]: v for k, v in r.headers.items() if k.startswith("x-reduct-label-")}
        assert labels == labels_for(entry, ts), (entry, ts, labels)
        found += 1
    return found


def test_sigkill_mid_batch_keeps_every_acknowledged_record(tmp_path):
    rng = random.Random(20261124)
    proc = EdgeProcess(tmp_path / "data", auth=NO_AUTH).start()
    try:
        assert requests.post(f"{proc.api}/b/crash", timeout=TIMEOUT).status_code == 200
        acked: list[tuple[str, int, int]] = []
        sent: list[tuple[str, int, int]] = []
        checked = 0
        for round_no in range(ROUNDS):
            writers = [Writer(proc.api, "crash", i, round_no, random.Random(rng.random())) for i in range(WRITERS)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.2, 0.7))
            proc.kill()  # SIGKILL while batches are in flight
            for w in writers:
                w.stop.set()
                w.join(TIMEOUT)
                assert not w.is_alive()
                acked.extend(w.acked)
                sent.extend(w.sent)
            proc.start()
            new = acked[checked:]
            assert check(proc.api, "crash", new, must_exist=True) == len(new)
            checked = len(acked)
        assert len(acked) > 100, "the writers never got going"
        # After the last restart: everything again (later kills must not have hurt older records).
        assert check(proc.api, "crash", acked, must_exist=True) == len(acked)
        unacked = sorted(set(sent) - set(acked))
        assert unacked, "no batch was in flight at any kill"
        check(proc.api, "crash", unacked, must_exist=False)
    finally:
        proc.kill()
