"""Crash soak: SIGKILL at random moments under mixed load; nothing acknowledged is ever lost.

What it checks, and why: edge answers 200 only after a write (record, batch, label update,
removal) is on disk. That promise is only worth something if it holds at *every* moment a
process can die -- mid-writev, mid-fdatasync, mid-seal of an ``.idx``, mid-compaction of a
``journal.log``, mid-recovery of the previous crash. So each cycle runs a mixed load against one
real server (single writes of 0 B..1.5 MB, v1 batch writes, label updates, removals, queries, and
share-link downloads), kills it with SIGKILL after a random delay, restarts it on the same data
folder and then checks, with a full query scan of every entry plus single-record GETs:

* every acknowledged write is present, byte for byte (sha256), with its acknowledged labels;
* every acknowledged removal stays removed;
* a write or update that was in flight (no answer) is either fully there or fully absent --
  never other bytes, and nothing appears that was never sent (no phantoms);
* share links created before the first cycle still download the right bytes;
* no request ever got a 5xx while the server was alive.

Every timestamp is used once, and every record is touched by one worker thread only, so the
expected state of each record is exact. The data folder carries over from cycle to cycle, so
recovery also runs over the torn tails of earlier crashes.

As a script (default 100 cycles; prints the figures):

    python tests/reliability/crash_soak.py --cycles 100 [--seed N] [--workers 6] [--keep]

pytest runs a short version (``CI_CYCLES`` = 10) as ``test_crash_soak_short``.
Everything runs on 127.0.0.1, is bounded by per-request timeouts and a total deadline, and the
server is always killed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import NO_AUTH, EdgeProcess  # noqa: E402

CI_CYCLES = 10
BUCKET = "soak"
TIMEOUT = 10
LINK_PAYLOADS = {"l0": os.urandom(3000), "l1": os.urandom(200_000), "l2": b""}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Rec:
    """What is known about one record (only its owning worker thread changes it)."""

    entry: str
    ts: int
    digest: str
    size: int
    w: str
    exists: str = "maybe"  # "yes" (acked), "maybe" (in flight at a kill), "removed", "maybe-removed"
    u: set = field(default_factory=lambda: {None})  # acceptable values of label "u" (None: absent)

    @property
    def certain(self) -> bool:
        return self.exists in ("yes", "removed")


@dataclass
class Figures:
    cycles: int = 0
    acked_writes: int = 0
    acked_batch_records: int = 0
    acked_updates: int = 0
    acked_removes: int = 0
    queries: int = 0
    link_downloads: int = 0
    in_flight_at_kill: int = 0
    in_flight_found_after: int = 0
    records_verified: int = 0
    recovery_lines: int = 0
    torn_files: int = 0
    restart_s_max: float = 0.0
    batch_skipped: str = ""
    errors: list = field(default_factory=list)

    def line(self) -> str:
        d = dict(self.__dict__)
        d["errors"] = len(self.errors)
        return json.dumps(d)


class Model:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recs: dict[tuple[str, int], Rec] = {}
        self._ts = itertools.count(1_000_000)

    def next_ts(self) -> int:
        with self.lock:
            return next(self._ts)

    def add(self, rec: Rec) -> None:
        with self.lock:
            self.recs[(rec.entry, rec.ts)] = rec

    def owned(self, wid: int) -> list[Rec]:
        with self.lock:
            return [r for r in self.recs.values() if r.w == str(wid)]


def _payload(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.03:
        size = rng.choice([1_100_000, 1_500_000])  # written through (streamed), not buffered
    elif roll < 0.15:
        size = rng.randint(20_000, 200_000)
    elif roll < 0.2:
        size = 0
    else:
        size = rng.randint(1, 4000)
    return rng.randbytes(size)


class Worker(threading.Thread):
    def __init__(self, wid: int, api: str, model: Model, figs: Figures, stop: threading.Event,
                 batch_ok: bool, links: dict[str, str], seed: int):
        super().__init__(daemon=True)
        self.wid, self.api, self.model, self.figs, self.stop = wid, api, model, figs, stop
        self.batch_ok, self.links = batch_ok, links
        self.rng = random.Random(seed)
        self.s = requests.Session()

    def fail(self, what: str, r: requests.Response) -> None:
        # A non-200 answer from a live server: a bug unless the server is being killed right now.
        if not self.stop.is_set():
            self.figs.errors.append(f"{what}: {r.status_code} {r.headers.get('x-reduct-error')}")

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                op = self.rng.random()
                if op < 0.45:
                    self.single_write()
                elif op < 0.55:
                    self.batch_write() if self.batch_ok else self.single_write()
                elif op < 0.72:
                    self.update()
                elif op < 0.82:
                    self.remove()
                elif op < 0.92:
                    self.query()
                else:
                    self.link()
        except requests.RequestException:
            return  # the server was killed: this thread's part of the cycle is over
        except Exception as exc:  # noqa: BLE001 - a bad answer (not JSON, ...) is a finding
            if not self.stop.is_set():
                self.figs.errors.append(f"worker {self.wid}: {exc!r}")

    def _pick(self) -> Rec | None:
        mine = [r for r in self.model.owned(self.wid) if r.exists == "yes"]
        return self.rng.choice(mine) if mine else None

    def single_write(self) -> None:
        ts = self.model.next_ts()
        body = _payload(self.rng)
        entry = f"t{self.wid}"
        rec = Rec(entry, ts, sha(body), len(body), str(self.wid))
        self.model.add(rec)  # "maybe" until answered
        r = self.s.post(f"{self.api}/b/{BUCKET}/{entry}?ts={ts}", data=body,
                        headers={"x-reduct-label-w": str(self.wid)}, timeout=TIMEOUT)
        if r.status_code == 200:
            rec.exists = "yes"
            self.figs.acked_writes += 1
        else:
            rec.exists = "never"
            self.fail("write", r)

    def batch_write(self) -> None:
        entry = f"b{self.wid}"
        recs, bodies, headers = [], [], {}
        for _ in range(self.rng.randint(2, 6)):
            ts = self.model.next_ts()
            body = _payload(self.rng) if self.rng.random() < 0.5 else self.rng.randbytes(self.rng.randint(0, 3000))
            rec = Rec(entry, ts, sha(body), len(body), str(self.wid))
            self.model.add(rec)
            recs.append(rec)
            bodies.append(body)
            headers[f"x-reduct-time-{ts}"] = f"{len(body)},application/octet-stream,w={self.wid}"
        r = self.s.post(f"{self.api}/b/{BUCKET}/{entry}/batch", data=b"".join(bodies), headers=headers,
                        timeout=TIMEOUT)
        if r.status_code != 200:
            for rec in recs:
                rec.exists = "never"
            self.fail("batch", r)
            return
        failed = {k.lower() for k in r.headers if k.lower().startswith("x-reduct-error-")}
        for rec in recs:
            if f"x-reduct-error-{rec.ts}" in failed:
                rec.exists = "never"
                self.figs.errors.append(f"batch record {rec.ts}: {r.headers.get(f'x-reduct-error-{rec.ts}')}")
            else:
                rec.exists = "yes"
                self.figs.acked_batch_records += 1

    def update(self) -> None:
        rec = self._pick()
        if rec is None:
            return
        value = str(self.rng.randint(0, 10**6))
        before = set(rec.u)
        rec.u = before | {value}  # in flight: old or new
        url = f"{self.api}/b/{BUCKET}/{rec.entry}/batch" if rec.entry.startswith("b") and self.rng.random() < 0.5 \
            else None
        if url is not None and self.batch_ok:
            r = self.s.patch(url, headers={f"x-reduct-time-{rec.ts}": f"0,,u={value}"}, timeout=TIMEOUT)
            ok = r.status_code == 200 and not any(k.lower().startswith("x-reduct-error-") for k in r.headers)
        else:
            r = self.s.patch(f"{self.api}/b/{BUCKET}/{rec.entry}?ts={rec.ts}",
                             headers={"x-reduct-label-u": value}, timeout=TIMEOUT)
            ok = r.status_code == 200
        if ok:
            rec.u = {value}
            self.figs.acked_updates += 1
        else:
            rec.u = before
            self.fail("update", r)

    def remove(self) -> None:
        rec = self._pick()
        if rec is None:
            return
        rec.exists = "maybe-removed"
        r = self.s.delete(f"{self.api}/b/{BUCKET}/{rec.entry}?ts={rec.ts}", timeout=TIMEOUT)
        if r.status_code == 200:
            rec.exists = "removed"
            self.figs.acked_removes += 1
        else:
            rec.exists = "yes"
            self.fail("remove", r)

    def query(self) -> None:
        entry = f"t{self.wid}"
        r = self.s.get(f"{self.api}/b/{BUCKET}/{entry}/q", params={"ttl": 30}, timeout=TIMEOUT)
        if r.status_code in (404, 204):
            return  # entry not created yet, or no records in it (GET .../q answers 204 then)
        if r.status_code != 200:
            return self.fail("query", r)
        qid = r.json()["id"]
        r = self.s.get(f"{self.api}/b/{BUCKET}/{entry}/batch", params={"q": qid}, timeout=TIMEOUT)
        if r.status_code not in (200, 204):
            return self.fail("query read", r)
        self.figs.queries += 1

    def link(self) -> None:
        name = self.rng.choice(sorted(self.links))
        r = self.s.get(self.links[name], timeout=TIMEOUT)
        if r.status_code != 200 or r.content != LINK_PAYLOADS[name]:
            return self.fail(f"link {name}", r)
        self.figs.link_downloads += 1


# --- verification -----------------------------------------------------------------------------


def _labels_v1(value: str) -> tuple[int, dict[str, str]]:
    parts = value.split(",")
    labels = {}
    for item in parts[2:]:
        k, _, v = item.partition("=")
        labels[k.strip()] = v.strip()
    return int(parts[0]), labels


def scan_entry(api: str, entry: str, s: requests.Session) -> dict[int, tuple[str, dict[str, str]]]:
    """Every record of an entry via a query + v1 batched reads: ts -> (sha256, labels)."""
    r = s.get(f"{api}/b/{BUCKET}/{entry}/q", params={"ttl": 60}, timeout=TIMEOUT)
    if r.status_code in (404, 204):          # no such entry, or no records in it
        return {}
    assert r.status_code == 200, (entry, r.status_code, r.headers.get("x-reduct-error"))
    qid = r.json()["id"]
    found: dict[int, tuple[str, dict[str, str]]] = {}
    for _ in range(100_000):
        r = s.get(f"{api}/b/{BUCKET}/{entry}/batch", params={"q": qid}, timeout=60)
        if r.status_code == 204:
            break
        assert r.status_code == 200, (entry, r.status_code, r.headers.get("x-reduct-error"))
        items = sorted((int(k[len("x-reduct-time-"):]), v) for k, v in r.headers.items()
                       if k.lower().startswith("x-reduct-time-"))
        pos = 0
        for ts, value in items:
            size, labels = _labels_v1(value)
            found[ts] = (sha(r.content[pos:pos + size]), labels)
            pos += size
        assert pos == len(r.content), (entry, pos, len(r.content))
        if r.headers.get("x-reduct-last") == "true":
            break
    return found


def verify(api: str, model: Model, figs: Figures, rng: random.Random, cycle: int) -> list[str]:
    problems: list[str] = []
    s = requests.Session()
    entries = sorted({r.entry for r in model.recs.values()})
    seen: dict[tuple[str, int], tuple[str, dict]] = {}
    for entry in entries:
        for ts, v in scan_entry(api, entry, s).items():
            seen[(entry, ts)] = v
    for key, (digest, labels) in seen.items():
        rec = model.recs.get(key)
        if rec is None or rec.exists == "never":
            problems.append(f"cycle {cycle}: phantom record {key}")
        elif rec.exists == "removed":
            problems.append(f"cycle {cycle}: removed record {key} is back")
        elif digest != rec.digest:
            problems.append(f"cycle {cycle}: record {key} has other bytes")
        elif labels.get("w") != rec.w:
            problems.append(f"cycle {cycle}: record {key} lost label w: {labels}")
        elif labels.get("u") not in rec.u:
            problems.append(f"cycle {cycle}: record {key} label u={labels.get('u')!r}, expected one of {rec.u}")
    for key, rec in model.recs.items():
        if rec.exists == "yes" and key not in seen:
            problems.append(f"cycle {cycle}: acknowledged record {key} is missing")
    # Settle the uncertain ones now that they are decided on disk (a later crash must keep them).
    for key, rec in model.recs.items():
        if rec.exists == "maybe":
            figs.in_flight_at_kill += 1
            rec.exists = "yes" if key in seen else "never"
            figs.in_flight_found_after += key in seen
        elif rec.exists == "maybe-removed":
            figs.in_flight_at_kill += 1
            rec.exists = "yes" if key in seen else "removed"
        if rec.exists == "yes" and len(rec.u) > 1:
            rec.u = {seen[key][1].get("u")}
    # Single-record GETs too (the path clients use most): a sample of live and removed records.
    live = [r for r in model.recs.values() if r.exists in ("yes", "removed")]
    for rec in rng.sample(live, min(len(live), 40)):
        r = s.get(f"{api}/b/{BUCKET}/{rec.entry}", params={"ts": rec.ts}, timeout=TIMEOUT)
        if rec.exists == "removed":
            if r.status_code != 404:
                problems.append(f"cycle {cycle}: removed {rec.entry}/{rec.ts} answers {r.status_code}")
        elif r.status_code != 200 or sha(r.content) != rec.digest:
            problems.append(f"cycle {cycle}: GET {rec.entry}/{rec.ts}: {r.status_code}")
    figs.records_verified += len(seen)
    return problems


def _setup(api: str) -> tuple[bool, dict[str, str], str]:
    assert requests.post(f"{api}/b/{BUCKET}", timeout=TIMEOUT).status_code in (200, 409)
    links = {}
    for i, (name, data) in enumerate(sorted(LINK_PAYLOADS.items())):
        r = requests.post(f"{api}/b/{BUCKET}/linked?ts={i + 1}", data=data, timeout=TIMEOUT)
        assert r.status_code == 200, r.headers
        body = {"bucket": BUCKET, "entry": "linked", "record_entry": "linked", "record_timestamp": i + 1,
                "query": {"query_type": "QUERY", "entries": ["linked"]}, "expire_at": int(time.time()) + 86400}
        r = requests.post(f"{api}/links/{name}.bin", json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.headers
        links[name] = r.json()["link"]
    r = requests.post(f"{api}/b/{BUCKET}/probe/batch", headers={"x-reduct-time-5": "2,"}, data=b"ok",
                      timeout=TIMEOUT)
    if r.status_code == 200 and not any(k.lower().startswith("x-reduct-error-") for k in r.headers):
        return True, links, ""
    return False, links, f"v1 batch writes skipped: POST .../batch answered {r.status_code}"


def run(cycles: int, data: Path, seed: int = 0, workers: int = 6, deadline_s: float = 3600,
        out=print) -> Figures:
    rng = random.Random(seed)
    figs = Figures()
    model = Model()
    proc = EdgeProcess(data, auth=NO_AUTH).start()
    port = proc.port
    started = time.monotonic()
    try:
        batch_ok, links, note = _setup(proc.api)
        figs.batch_skipped = note
        if note:
            out(f"NOTE: {note}")
        for cycle in range(1, cycles + 1):
            if time.monotonic() - started > deadline_s:
                out(f"deadline of {deadline_s} s reached after {cycle - 1} cycles")
                break
            stop = threading.Event()
            threads = [Worker(w, proc.api, model, figs, stop, batch_ok, links, rng.randrange(2**32))
                       for w in range(workers)]
            for t in threads:
                t.start()
            # Mostly mid-load; sometimes right after start (first writes, seal of a fresh block).
            time.sleep(rng.uniform(0.0, 0.1) if rng.random() < 0.15 else rng.uniform(0.2, 1.6))
            stop.set()  # set first: answers racing the kill are not counted as server errors
            proc.kill()
            for t in threads:
                t.join(TIMEOUT + 5)
            assert not any(t.is_alive() for t in threads), "worker thread hung"
            t0 = time.monotonic()
            proc = EdgeProcess(data, port=port, auth=NO_AUTH).start()
            figs.restart_s_max = max(figs.restart_s_max, time.monotonic() - t0)
            info = requests.get(f"{proc.api}/info", timeout=TIMEOUT).json()
            figs.recovery_lines += len(info.get("recovery", []))
            problems = verify(proc.api, model, figs, rng, cycle)
            for name, url in links.items():
                r = requests.get(url, timeout=TIMEOUT)
                if r.status_code != 200 or r.content != LINK_PAYLOADS[name]:
                    problems.append(f"cycle {cycle}: link {name} answers {r.status_code}")
            figs.errors += problems
            figs.cycles = cycle
            if cycle % 10 == 0 or problems:
                out(f"cycle {cycle}: {figs.line()}")
            if problems:
                break
        figs.torn_files = sum(1 for p in data.rglob("*.torn-*"))
        r = requests.post(f"{proc.api}/b/{BUCKET}/after?ts=1", data=b"still writable", timeout=TIMEOUT)
        if r.status_code != 200:
            figs.errors.append(f"write after the soak: {r.status_code}")
    finally:
        proc.kill()
    out(f"crash soak: {figs.line()} in {time.monotonic() - started:.1f} s")
    for e in figs.errors[:20]:
        out(f"  ERROR {e}")
    return figs


def test_crash_soak_short(tmp_path):
    figs = run(CI_CYCLES, tmp_path / "data", seed=int(os.environ.get("SOAK_SEED", "1")), deadline_s=150)
    assert not figs.errors, figs.errors[:10]
    assert figs.cycles >= CI_CYCLES // 2
    assert figs.acked_writes > 50 and figs.acked_updates > 5 and figs.acked_removes > 5
    assert figs.link_downloads > 0 and figs.queries > 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--deadline", type=float, default=3600, help="stop after this many seconds")
    ap.add_argument("--keep", action="store_true", help="keep the data folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-crash-soak-"))
    print(f"seed {args.seed}, data {tmp / 'data'}")
    figs = run(args.cycles, tmp / "data", args.seed, args.workers, args.deadline)
    if not args.keep and not figs.errors:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if figs.errors else 0


if __name__ == "__main__":
    sys.exit(main())
