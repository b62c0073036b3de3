"""Power cuts under a real edge server: what was acknowledged must be there, what was removed must not.

Each *cycle*: mount the device image on a crash disk (``crashfs``), start ``edge serve`` on it,
drive a mixed workload with one sequential client, cut the power at a random moment (the disk
freezes, then the server gets SIGKILL), and start edge again on the device after the cut
(a plain folder) to judge it against what the client was told. The next cycle continues on
that device ("an existing data folder"); every ``fresh_every`` cycles start from nothing ("a
fresh data folder": first start, first token, first link, first upload link, first mail).

Workload: token create/remove, buckets ``keep`` (no quota) and ``fifo`` (a FIFO quota that
wraps many times), record writes and removals, entry renames and removals, bucket create /
remove / rename, share links and their revocation, upload links, a share mail (the relay is
down, so it stays queued). The one request in flight at the cut may or may not have happened.

Findings (none is allowed; ``summary`` counts them per mode, fresh or existing folder):

    start            the server did not start on the device after the cut
    garbage          a 200 whose bytes are not what was written (never allowed)
    lost-write       an acknowledged record is missing (FIFO: one the quota could not have evicted)
    lost-token / resurrected-token, lost-link / resurrected-link, lost-upload-link, lost-mail
    lost-bucket      an acknowledged bucket (or its settings) is gone
    resurrected-record / resurrected-entry / resurrected-bucket   an acknowledged removal undone
    rename-undone    an acknowledged entry or bucket rename is not on the device
    resurrected-evicted   FIFO data older than what the client had seen evicted is back
    over-quota       the FIFO bucket is larger than its quota after the cut
    torn-growth      the torn tails kept by recovery exceed their bound (``TORN_KEEP``, set small
                     here so that the bound is reached) after the server started on the device

``python -m tests.powerloss.edge_run --cuts 100`` runs the long version (README); the suite
runs a short one (``tests/powerloss/test_powerloss.py``).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.helpers import ClosedPort, EdgeProcess, token_auth
from tests.powerloss.harness import CrashDisk

INIT = "powerloss-init-token"
AUTH = {"Authorization": f"Bearer {INIT}"}
QUOTA = 400_000
BLOCK = 64_000
FIFO_KEEP = int(0.8 * QUOTA) - 2 * BLOCK    # acked FIFO bytes written since a record's block began:
                                            # at most this many, and the record must survive (fifo_required)
TORN_KEEP = 32_000                          # EDGE_TORN_KEEP_SIZE of every server here
LOST = ("lost-",)
RESURRECTED = ("resurrected-", "rename-undone")
TIMEOUT = 5


def payload(key: str, ts: int) -> bytes:
    size = 2000 + int(hashlib.sha256(f"{key}:{ts}".encode()).hexdigest()[:4], 16) % 10_000
    seed = hashlib.sha256(f"{key}/{ts}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


@dataclass
class Rec:
    key: str          # original "bucket/entry" (the payload's seed; renames move records)
    ts: int
    state: str        # present | deleted | maybe


@dataclass
class Model:
    """What the client was told, across cycles."""

    records: dict[tuple[str, str, int], Rec] = field(default_factory=dict)   # (bucket, entry, ts)
    fifo: list[tuple[str, int, int]] = field(default_factory=list)          # acked (entry, ts, size)
    evicted_before: dict[str, int] = field(default_factory=dict)            # fifo entry -> ts seen oldest
    gone_entries: dict[tuple[str, str], str] = field(default_factory=dict)  # -> "deleted"/"renamed"/"maybe"
    buckets: dict[str, str] = field(default_factory=dict)                   # name -> present/deleted/maybe
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)        # name -> (secret, state)
    links: dict[str, tuple[str, str]] = field(default_factory=dict)         # id -> (path?query, state)
    upload_links: dict[str, str] = field(default_factory=dict)              # id -> state
    mails: dict[str, str] = field(default_factory=dict)                     # link id shared -> state
    counter: int = 0
    ts: int = 1_000_000

    def next_ts(self) -> int:
        self.ts += 1 + self.counter % 3
        return self.ts

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


class Client:
    """One sequential client: every request is pending until its answer, then acked or not."""

    def __init__(self, api: str, model: Model, rng: random.Random, cut: threading.Event):
        self.api, self.model, self.rng, self.cut = api, model, rng, cut
        self.s = requests.Session()
        self.s.headers.update(AUTH)
        self.acked = 0
        self.errors: list[str] = []
        self.journal: list[str] = []   # every request and its answer (for reproduction)

    def call(self, method: str, path: str, **kw) -> requests.Response | None:
        """The answer, or None when the power went (the request's effect is unknown)."""
        try:
            r = self.s.request(method, self.api + path, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            self.journal.append(f"{time.monotonic():.3f} {method} {path} -> {type(exc).__name__}")
            if self.cut.is_set():
                return None
            raise
        self.journal.append(f"{time.monotonic():.3f} {method} {path} -> {r.status_code}")
        if r.status_code >= 500 and self.cut.is_set():
            return None
        if r.status_code >= 400:
            self.errors.append(f"{method} {path}: {r.status_code} {r.headers.get('x-reduct-error')}")
            return r
        self.acked += 1
        return r

    # --- operations: each marks its effect "maybe" first, then settles it ------------------

    def write(self, bucket: str, entry: str) -> bool:
        m = self.model
        ts = m.next_ts()
        key = f"{bucket}/{entry}"
        rec = m.records[(bucket, entry, ts)] = Rec(key, ts, "maybe")
        data = payload(key, ts)
        r = self.call("POST", f"/b/{bucket}/{entry}?ts={ts}", data=data)
        if r is None:
            return False
        if r.status_code == 200:
            rec.state = "present"
            if bucket == "fifo":
                m.fifo.append((entry, ts, len(data)))
        else:
            del m.records[(bucket, entry, ts)]
        return True

    def remove_record(self) -> bool:
        m = self.model
        live = [k for k, r in m.records.items() if k[0] == "keep" and k[1] == "k" and r.state == "present"]
        if not live:
            return True
        k = self.rng.choice(live)
        m.records[k].state = "maybe"
        r = self.call("DELETE", f"/b/{k[0]}/{k[1]}?ts={k[2]}")
        if r is None:
            return False
        m.records[k].state = "deleted" if r.status_code == 200 else "present"
        return True

    def _entry_with_records(self, prefix: str) -> str | None:
        entry = self.model.name(prefix)
        for _ in range(2):
            if not self.write("keep", entry):
                return None
        return entry

    def rename_entry(self) -> bool:
        m = self.model
        entry = self._entry_with_records("r")
        if entry is None:
            return False
        new = entry + "x"
        moving = {k: r for k, r in m.records.items() if k[:2] == ("keep", entry)}
        m.gone_entries[("keep", entry)] = "maybe"
        for k, rec in moving.items():
            m.records[("keep", new, k[2])] = Rec(rec.key, rec.ts, "maybe")
            rec.state = "maybe"
        r = self.call("PUT", f"/b/keep/{entry}/rename", json={"new_name": new})
        if r is None:
            return False
        ok = r.status_code == 200
        m.gone_entries[("keep", entry)] = "renamed" if ok else "present"
        for k, rec in moving.items():
            m.records[("keep", new, k[2])].state = "present" if ok else "deleted"
            rec.state = "deleted" if ok else "present"
        return True

    def remove_entry(self) -> bool:
        m = self.model
        entry = self._entry_with_records("d")
        if entry is None:
            return False
        doomed = [r for k, r in m.records.items() if k[:2] == ("keep", entry)]
        m.gone_entries[("keep", entry)] = "maybe"
        for rec in doomed:
            rec.state = "maybe"
        r = self.call("DELETE", f"/b/keep/{entry}")
        if r is None:
            return False
        ok = r.status_code == 200
        m.gone_entries[("keep", entry)] = "deleted" if ok else "present"
        for rec in doomed:
            rec.state = "deleted" if ok else "present"
        return True

    def bucket_cycle(self) -> bool:
        """Create a bucket with a record, then remove it or rename it."""
        m = self.model
        name = m.name("tmp")
        m.buckets[name] = "maybe"
        r = self.call("POST", f"/b/{name}")
        if r is None:
            return False
        if r.status_code != 200:
            m.buckets[name] = "none"
            return True
        m.buckets[name] = "present"
        if not self.write(name, "e"):
            return False
        recs = [r_ for k, r_ in m.records.items() if k[0] == name]
        if self.rng.random() < 0.5:
            m.buckets[name] = "maybe"
            for rec in recs:
                rec.state = "maybe"
            r = self.call("DELETE", f"/b/{name}")
            if r is None:
                return False
            ok = r.status_code == 200
            m.buckets[name] = "deleted" if ok else "present"
            for rec in recs:
                rec.state = "deleted" if ok else "present"
        else:
            new = name + "x"
            m.buckets[name], m.buckets[new] = "maybe", "maybe"
            moved = {}
            for k, rec in list(m.records.items()):
                if k[0] == name:
                    moved[k] = m.records[(new, k[1], k[2])] = Rec(rec.key, rec.ts, "maybe")
                    rec.state = "maybe"
            r = self.call("PUT", f"/b/{name}/rename", json={"new_name": new})
            if r is None:
                return False
            ok = r.status_code == 200
            m.buckets[name], m.buckets[new] = ("deleted", "present") if ok else ("present", "none")
            for k, rec in moved.items():
                rec.state = "present" if ok else "deleted"
                m.records[k].state = "deleted" if ok else "present"
        return True

    def token(self) -> bool:
        m = self.model
        live = [n for n, (_, st) in m.tokens.items() if st == "present"]
        if live and self.rng.random() < 0.4:
            name = self.rng.choice(live)
            secret = m.tokens[name][0]
            m.tokens[name] = (secret, "maybe")
            r = self.call("DELETE", f"/tokens/{name}")
            if r is None:
                return False
            m.tokens[name] = (secret, "removed" if r.status_code == 200 else "present")
            return True
        name = m.name("t")
        m.tokens[name] = ("", "maybe")
        r = self.call("POST", f"/tokens/{name}", json={"permissions": {"read": ["keep"]}})
        if r is None:
            return False
        m.tokens[name] = (r.json()["value"], "present") if r.status_code == 200 else ("", "removed")
        return True

    def link(self) -> bool:
        m = self.model
        live = [i for i, (_, st) in m.links.items() if st == "present"]
        if live and self.rng.random() < 0.3:
            link_id = self.rng.choice(live)
            url = m.links[link_id][0]
            m.links[link_id] = (url, "maybe")
            r = self.call("DELETE", f"/links/{link_id}")
            if r is None:
                return False
            m.links[link_id] = (url, "revoked" if r.status_code == 200 else "present")
            return True
        ts = self.anchor()
        body = {"bucket": "keep", "entry": "anchor", "record_entry": "anchor", "record_timestamp": ts,
                "query": {"query_type": "QUERY", "entries": ["anchor"]}, "expire_at": int(time.time()) + 86400}
        r = self.call("POST", "/links/f.bin", json=body)
        if r is None:
            return False
        if r.status_code != 200:
            return True
        doc = r.json()
        parts = urllib.parse.urlsplit(doc["link"])
        m.links[doc["id"]] = (f"{parts.path}?{parts.query}", "present")
        return True

    def anchor(self) -> int:
        """A record links point at; never removed."""
        return 1

    def upload_link(self) -> bool:
        r = self.call("POST", "/upload-links", json={"bucket": "keep", "entry": "drop",
                                                     "expire_at": int(time.time()) + 86400})
        if r is None:
            return False
        if r.status_code == 200:
            self.model.upload_links[r.json()["id"]] = "present"
        return True

    def mail(self) -> bool:
        live = [i for i, (_, st) in self.model.links.items() if st == "present" and i not in self.model.mails]
        if not live:
            return True
        link_id = live[0]
        self.model.mails[link_id] = "maybe"
        r = self.call("POST", "/share", json={"link_ids": [link_id], "recipients": ["ops@example.com"]})
        if r is None:
            return False
        self.model.mails[link_id] = "present" if r.status_code == 200 else "none"
        return True

    def observe_fifo(self) -> bool:
        r = self.call("GET", "/b/fifo")
        if r is None:
            return False
        if r.status_code != 200:
            return True
        for e in r.json().get("entries", []):
            if e.get("record_count"):
                self.model.evicted_before[e["name"]] = max(self.model.evicted_before.get(e["name"], 0),
                                                           e["oldest_record"])
        return True

    # --- the script --------------------------------------------------------------------------

    def setup(self) -> bool:
        """The firsts (fresh folder): token, buckets, the anchor record, link, upload link, mail."""
        m = self.model
        steps = [self.token]
        for name, settings in (("keep", {}), ("fifo", {"quota_type": "FIFO", "quota_size": QUOTA,
                                                       "max_block_size": BLOCK})):
            if m.buckets.get(name) != "present":
                steps.append(lambda name=name, settings=settings: self._bucket(name, settings))
        if ("keep", "anchor", 1) not in m.records or m.records[("keep", "anchor", 1)].state != "present":
            steps.append(self._anchor_record)
        steps += [self.link, self.upload_link, self.mail]
        return all(step() for step in steps)

    def _bucket(self, name: str, settings: dict) -> bool:
        self.model.buckets[name] = "maybe"
        r = self.call("POST", f"/b/{name}", json=settings)
        if r is None:
            return False
        self.model.buckets[name] = "present" if r.status_code in (200, 409) else "none"
        return True

    def _anchor_record(self) -> bool:
        rec = self.model.records[("keep", "anchor", 1)] = Rec("keep/anchor", 1, "maybe")
        r = self.call("POST", "/b/keep/anchor?ts=1", data=payload("keep/anchor", 1))
        if r is None:
            return False
        rec.state = "present" if r.status_code in (200, 409) else "deleted"
        return True

    def run(self) -> None:
        if not self.setup():
            return
        ops = [(40, lambda: self.write("fifo", self.rng.choice(("f0", "f1")))), (8, lambda: self.write("keep", "k")),
               (4, self.remove_record), (3, self.rename_entry), (3, self.remove_entry), (2, self.bucket_cycle),
               (3, self.token), (3, self.link), (1, self.upload_link), (1, self.mail), (5, self.observe_fifo)]
        weights = [w for w, _ in ops]
        while not self.cut.is_set():
            op = self.rng.choices([f for _, f in ops], weights)[0]
            if not op():
                return


# --- judging the device after a cut ---------------------------------------------------------


def fifo_required(fifo: list[tuple[str, int, int]]) -> set[tuple[str, int]]:
    """The acked FIFO records (``(entry, ts, size)`` in ts order) the quota cannot have evicted.

    FIFO evicts whole blocks, oldest block id (its first record's ts) first, across entries; so
    a record goes with its block, and a block's age is the bytes written since *it* began, not
    since the record: an entry that got few writes while another got many has one block
    spanning a long time, evicted whole once the bucket wrapped past its start (power-loss cut
    60, fresh every cut: f0's block 1000189 held records up to 1000333, 143 kB from the head,
    and was rightly evicted before f1's block 1000195). The block of a record starts no earlier
    than the oldest record of its entry that fits within ``BLOCK`` bytes together with the
    records after it up to this one (a block holds at most ``BLOCK``; frame headers only make it
    start later). When the bucket evicts that block, every older block is gone, so it holds
    only records written since then (plus an in-flight writer's block of each entry, the
    ``2 * BLOCK`` of ``FIFO_KEEP``); if those acked bytes are at most ``FIFO_KEEP``, 80 % of the
    quota less that slack, the bucket was below its quota and the record must be there."""
    ts_all = [ts for _, ts, _ in fifo]
    since = [0] * (len(fifo) + 1)            # since[i]: acked bytes of fifo[i:]
    for i in range(len(fifo) - 1, -1, -1):
        since[i] = since[i + 1] + fifo[i][2]
    per_entry: dict[str, list[tuple[int, int]]] = {}
    for entry, ts, size in fifo:
        per_entry.setdefault(entry, []).append((ts, size))
    required: set[tuple[str, int]] = set()
    for entry, recs in per_entry.items():
        lo, window = 0, 0                    # recs[lo..k]: the most that can share a block with k
        for k, (ts, size) in enumerate(recs):
            window += size
            while window > BLOCK and lo < k:
                window -= recs[lo][1]
                lo += 1
            start = recs[lo][0]              # the earliest the block of recs[k] can have begun
            if since[bisect.bisect_left(ts_all, start)] <= FIFO_KEEP:
                required.add((entry, ts))
    return required


def judge(model: Model, api: str) -> list[tuple[str, str]]:
    """Findings (kind, detail) of the server on the device after the cut; then settle every
    "maybe" of the model to what the device shows, so the next cycle starts from the truth."""
    found: list[tuple[str, str]] = []
    s = requests.Session()
    s.headers.update(AUTH)
    def get(path: str, ok: tuple[int, ...] = (200,)) -> requests.Response:
        r = s.get(api + path, timeout=TIMEOUT)
        if r.status_code not in ok:
            raise RuntimeError(f"judge: GET {path} answered {r.status_code} {r.headers.get('x-reduct-error')}")
        return r

    buckets = {b["name"] for b in get("/list").json()["buckets"]}
    for name, state in model.buckets.items():
        if state == "present" and name not in buckets:
            found.append(("lost-bucket", name))
        if state == "deleted" and name in buckets:
            found.append(("resurrected-bucket" if not name.endswith("x") else "rename-undone", name))
        if state in ("maybe", "none"):
            model.buckets[name] = "present" if name in buckets else "deleted"
    if "fifo" in buckets:
        info = get("/b/fifo").json()
        q = info.get("settings", {}).get("quota_size")
        if q != QUOTA:
            found.append(("lost-bucket", f"fifo settings: quota_size {q}"))
        size = info.get("info", {}).get("size", 0)
        if size > QUOTA + BLOCK:
            found.append(("over-quota", f"fifo holds {size} bytes, quota {QUOTA}"))
        for e in info.get("entries", []):
            seen = model.evicted_before.get(e["name"])
            if seen is not None and e.get("record_count") and e["oldest_record"] < seen:
                found.append(("resurrected-evicted", f"fifo/{e['name']}: oldest {e['oldest_record']} < {seen} "
                                                     "seen before the cut"))
    entries: dict[str, set[str]] = {}
    for b in buckets:
        r = get(f"/b/{b}", ok=(200, 404))
        entries[b] = {e["name"] for e in r.json().get("entries", [])} if r.status_code == 200 else set()
    for (b, e), state in list(model.gone_entries.items()):
        there = e in entries.get(b, set())
        if state == "deleted" and there:
            found.append(("resurrected-entry", f"{b}/{e}"))
        if state == "renamed" and there:
            found.append(("rename-undone", f"{b}/{e} still there"))
        if state == "maybe":
            model.gone_entries[(b, e)] = "present" if there else "deleted"

    required = fifo_required(model.fifo)
    for k, rec in list(model.records.items()):
        b, e, ts = k
        r = get(f"/b/{b}/{e}?ts={ts}", ok=(200, 404, 500))
        if r.status_code == 200 and r.content != payload(rec.key, rec.ts):
            found.append(("garbage", f"{b}/{e}@{ts}: {len(r.content)} bytes, not what was written"))
        present = r.status_code == 200
        if rec.state == "present" and not present:
            if b != "fifo" or (e, ts) in required:
                found.append(("lost-write", f"{b}/{e}@{ts}: {r.status_code} {r.headers.get('x-reduct-error')}"))
        if rec.state == "deleted" and present:
            kind = "rename-undone" if e.endswith("x") or b.endswith("x") or (b, e) in model.gone_entries \
                and model.gone_entries[(b, e)] == "renamed" else "resurrected-record"
            found.append((kind, f"{b}/{e}@{ts}"))
        if rec.state == "maybe":
            rec.state = "present" if present else "deleted"
        if b == "fifo" and not present:
            del model.records[k]          # evicted (or never there): gone for good
    model.fifo = [x for x in model.fifo if ("fifo", x[0], x[1]) in model.records]

    for name, (secret, state) in list(model.tokens.items()):
        code = requests.get(api + "/me", headers={"Authorization": f"Bearer {secret}"},
                            timeout=TIMEOUT).status_code if secret else 401
        if code not in (200, 401):
            raise RuntimeError(f"judge: token {name} answered {code}")
        ok = code == 200
        if state == "present" and not ok:
            found.append(("lost-token", name))
        if state == "removed" and ok:
            found.append(("resurrected-token", name))
        if state == "maybe":
            listed = get(f"/tokens/{name}", ok=(200, 404)).status_code == 200
            model.tokens[name] = (secret, "present" if ok or (listed and secret) else "removed")
            if listed and not secret:   # created, but we never learnt its secret: remove it
                s.delete(api + f"/tokens/{name}", timeout=TIMEOUT)
    base = api.rsplit("/api/v1", 1)[0]
    for link_id, (url, state) in list(model.links.items()):
        r = requests.get(base + url, timeout=TIMEOUT)
        if r.status_code not in (200, 404):
            raise RuntimeError(f"judge: link {link_id} answered {r.status_code} {r.headers.get('x-reduct-error')}")
        ok = r.status_code == 200
        if ok and r.content != payload("keep/anchor", 1):
            found.append(("garbage", f"link {link_id} served other bytes"))
        if state == "present" and not ok:
            found.append(("lost-link", f"{link_id}: {r.status_code} {r.headers.get('x-reduct-error')}"))
        if state == "revoked" and ok:
            found.append(("resurrected-link", link_id))
        if state == "maybe":
            model.links[link_id] = (url, "present" if ok else "revoked")
    listed = {u["id"] for u in get("/upload-links").json().get("upload_links", [])}
    for link_id, state in model.upload_links.items():
        if state == "present" and link_id not in listed:
            found.append(("lost-upload-link", link_id))
    shared = {i for m in get("/share/outbox").json().get("mails", []) for i in m.get("link_ids", [])}
    for link_id, state in list(model.mails.items()):
        if state == "present" and link_id not in shared:
            found.append(("lost-mail", f"share of {link_id}"))
        if state == "maybe":
            model.mails[link_id] = "present" if link_id in shared else "none"
    return found


# --- one cycle ------------------------------------------------------------------------------


def edge_env(smtp_port: int) -> dict[str, str]:
    return {"EDGE_SMTP_HOST": "127.0.0.1", "EDGE_SMTP_PORT": str(smtp_port),
            "EDGE_SMTP_FROM": "Edge <edge@example.com>", "EDGE_SMTP_RETRY_MIN": "60", "RS_LOG_LEVEL": "WARN",
            # the judge tries removed tokens on purpose: do not let the brute-force guard block it
            "EDGE_AUTH_MAX_FAILURES": "1000000", "EDGE_TORN_KEEP_SIZE": str(TORN_KEEP)}


@dataclass
class CycleResult:
    index: int
    fresh: bool
    cut_after_s: float
    acked: int
    refused: list[str]            # answers >= 400 before the cut (the workload's own mistakes)
    findings: list[tuple[str, str]]
    torn_files: int
    first_start_s: float


def cycle(index: int, model: Model, image: Path, work: Path, rng: random.Random, *, torn: bool,
          fresh: bool, smtp_port: int) -> tuple[CycleResult, Path]:
    mnt, after, logs = work / f"mnt{index}", work / f"after{index}", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cut = threading.Event()
    cut_after = rng.uniform(0.05, 3.0)
    client: Client | None = None
    t0 = time.monotonic()
    with CrashDisk(image, mnt) as disk:
        srv = EdgeProcess(mnt / "data", edge_env(smtp_port), auth=token_auth(INIT))
        srv.log_path = logs / f"cycle{index}-run.log"
        srv.start(timeout_s=60)
        first_start = time.monotonic() - t0
        client = Client(srv.api, model, rng, cut)

        def power_cut() -> None:
            time.sleep(cut_after)
            cut.set()    # first: a 5xx from here on may be the dead disk, so its effect is unknown
            disk.cut(after, seed=rng.randrange(1 << 30) if torn else None)
            srv.kill()

        cutter = threading.Thread(target=power_cut, daemon=True)
        cutter.start()
        try:
            client.run()
        finally:
            cutter.join(60)
            (logs / f"cycle{index}-ops.log").write_text("\n".join(client.journal) + "\n")
    after.mkdir(exist_ok=True)
    check = EdgeProcess(after / "data", edge_env(smtp_port), auth=token_auth(INIT))
    check.log_path = logs / f"cycle{index}-after.log"
    try:
        check.start(timeout_s=60)
    except RuntimeError as exc:
        findings = [("start", str(exc)[-2000:])]
    else:
        try:
            findings = judge(model, check.api)
        except (RuntimeError, requests.RequestException) as exc:   # the judge could not read the server
            findings = [("judge", str(exc))]
        finally:
            check.stop()
    torn = [p for p in (after / "data").rglob("*") if ".torn-" in p.name] if (after / "data").exists() else []
    torn_files, torn_bytes = len(torn), sum(p.stat().st_size for p in torn)
    if torn_bytes > TORN_KEEP and not any(k == "start" for k, _ in findings):
        findings.append(("torn-growth", f"{torn_files} torn files, {torn_bytes} bytes kept (bound {TORN_KEEP})"))
    shutil.rmtree(mnt, ignore_errors=True)
    result = CycleResult(index, fresh, cut_after, client.acked if client else 0, client.errors if client else [],
                         findings, torn_files, first_start)
    return result, after


def run(cuts: int, work: Path, *, seed: int = 24, fresh_every: int = 10, torn: bool = True,
        log: bool = True) -> list[CycleResult]:
    rng = random.Random(seed)
    smtp_closed = ClosedPort()     # the relay port refuses for the whole run; no one else takes it
    smtp_port = smtp_closed.port
    results: list[CycleResult] = []
    image = work / "empty"
    image.mkdir(parents=True, exist_ok=True)
    model = Model()
    for i in range(cuts):
        fresh = i % fresh_every == 0
        if fresh:
            model, image = Model(), work / "empty"
        result, after = cycle(i, model, image, work, rng, torn=torn, fresh=fresh, smtp_port=smtp_port)
        results.append(result)
        keep = results[-2].findings if len(results) > 1 else []
        if not fresh and image != work / "empty" and not keep:
            shutil.rmtree(image, ignore_errors=True)   # kept when its cycle had findings (reproduction)
        image = after
        if log:
            kinds = Counter(k for k, _ in result.findings)
            print(f"cut {i:3d} {'fresh' if fresh else 'exist'} after {result.cut_after_s:4.2f}s: "
                  f"{result.acked:4d} acked, {len(result.refused)} refused, torn files {result.torn_files}, findings {dict(kinds) or 'none'}",
                  flush=True)
            for kind, detail in result.findings[:5]:
                print(f"    {kind}: {detail}", flush=True)
        if any(k in ("start", "judge") for k, _ in result.findings):
            model, image = Model(), work / "empty"   # cannot go on on a device that does not start
    smtp_closed.close()
    return results


def _figures(results: list[CycleResult]) -> dict:
    kinds = Counter(k for r in results for k, _ in r.findings)
    return {"cuts": len(results), "acked": sum(r.acked for r in results),
            "lost": sum(v for k, v in kinds.items() if k.startswith(LOST)),
            "resurrected": sum(v for k, v in kinds.items() if k.startswith(RESURRECTED)),
            "failed_starts": kinds.get("start", 0), "findings": dict(kinds),
            "cuts_with_findings": sum(1 for r in results if r.findings)}


def summary(results: list[CycleResult]) -> dict:
    """Totals, and the same per mode: ``fresh`` (the cycle began on an empty folder: first start,
    first token, link, upload link, mail) and ``existing`` (on the device the previous cut left)."""
    out = _figures(results)
    out["fresh"] = _figures([r for r in results if r.fresh])
    out["existing"] = _figures([r for r in results if not r.fresh])
    out["torn_files_max"] = max((r.torn_files for r in results), default=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cuts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--fresh-every", type=int, default=10)
    ap.add_argument("--strict-names", action="store_true", help="no torn file tails: only synced bytes survive")
    ap.add_argument("--work", help="folder for images and logs (default: a temp folder, kept)")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edge-powerloss-"))
    print(f"work folder {work}")
    results = run(args.cuts, work, seed=args.seed, fresh_every=args.fresh_every, torn=not args.strict_names)
    print(json.dumps(summary(results), indent=1))


if __name__ == "__main__":
    main()
