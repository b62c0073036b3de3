"""Damaged files on disk: the server starts, serves what is intact, never serves damage as good.

What it checks, and why: disks rot, people copy folders half-way, and a crash can leave any file
cut short. While the server is stopped, each test damages one kind of file of a populated data
folder -- a payload byte of a sealed ``.blk`` (loaded from its ``.idx``), a byte of the unsealed
newest block (scanned at start-up), a torn tail, a damaged or missing ``.idx``, a damaged
``journal.log``, random bit flips everywhere, a broken ``settings.json`` -- then starts a real
server and reads every record back. The contract:

* the server starts and answers;
* every record is either 200 with exactly its bytes, 404 (dropped by recovery), or 500 with a
  clear ``x-reduct-error`` text -- never 200 with other bytes (single GETs, queries, links);
* what recovery dropped is reported: a ``recovery:`` log line and ``/info`` ``"recovery"``, and
  ``edge check`` on a copy of the folder names it too (also payload damage in sealed blocks,
  which start-up does not read);
* cut bytes are kept in ``<block>.torn-<n>``;
* the server keeps accepting writes.

The populated folder is made once per module by a real server (small blocks: 10 records each,
so there are sealed blocks with indexes and one unsealed block) and copied for every test.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from edge.formats.recovery import scan
from tests.helpers import EdgeProcess, NO_AUTH, ROOT

TIMEOUT = 10
N = 45  # entry "e": ts 1..45 -> blocks 1, 11, 21, 31 (sealed, with .idx) and 41 (unsealed)
J = 10  # entry "j": ts 1..10 with label updates and removals in its journal
UPDATED = {3: "x", 4: "y", 5: "z"}
REMOVED = {7, 8}


def payload(entry: str, ts: int) -> bytes:
    seed = hashlib.sha256(f"{entry}/{ts}".encode()).digest()
    return (seed * (1 + (ts * 97) % 100))[: 1000 + (ts * 131) % 2000]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("pristine") / "data"
    proc = EdgeProcess(data, auth=NO_AUTH).start()
    try:
        api = proc.api
        r = requests.post(f"{api}/b/c", json={"max_block_records": 10}, timeout=TIMEOUT)
        assert r.status_code == 200, r.headers
        s = requests.Session()
        for ts in range(1, N + 1):
            assert s.post(f"{api}/b/c/e?ts={ts}", data=payload("e", ts),
                          headers={"x-reduct-label-n": str(ts)}, timeout=TIMEOUT).status_code == 200
        for ts in range(1, J + 1):
            assert s.post(f"{api}/b/c/j?ts={ts}", data=payload("j", ts), timeout=TIMEOUT).status_code == 200
        for ts, v in UPDATED.items():
            assert s.patch(f"{api}/b/c/j?ts={ts}", headers={"x-reduct-label-u": v}, timeout=TIMEOUT).status_code == 200
        for ts in REMOVED:
            assert s.delete(f"{api}/b/c/j?ts={ts}", timeout=TIMEOUT).status_code == 200
    finally:
        assert proc.stop() == 0
    entry = data / "c" / "e"
    # A clean stop seals the newest block too; without its .idx it is what a crash leaves
    # behind: a block start-up must scan (payload crcs included).
    (entry / f"{41:020d}.idx").unlink()
    assert sorted(p.name for p in entry.glob("*.idx")) == [f"{i:020d}.idx" for i in (1, 11, 21, 31)]
    assert (entry / f"{41:020d}.blk").exists() and (data / "c" / "j" / "journal.log").stat().st_size > 0
    return data


@pytest.fixture
def data(pristine, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(pristine, dst)
    return dst


def blk(data: Path, block: int, entry: str = "e") -> Path:
    return data / "c" / entry / f"{block:020d}.blk"


def idx(data: Path, block: int) -> Path:
    return data / "c" / "e" / f"{block:020d}.idx"


def frame_of(path: Path, ts: int):
    for f in scan(path.read_bytes()).frames:
        if f.head.ts_us == ts:
            return f
    raise AssertionError(f"no frame {ts} in {path}")


def flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x5A
    path.write_bytes(bytes(raw))


def read_all(api: str, entry: str = "e", count: int = N) -> dict[int, int]:
    """GET every record; 200 must carry exactly its bytes; returns ts -> status."""
    s = requests.Session()
    out = {}
    for ts in range(1, count + 1):
        r = s.get(f"{api}/b/c/{entry}?ts={ts}", timeout=TIMEOUT)
        assert r.status_code in (200, 404, 500), (ts, r.status_code)
        if r.status_code == 200:
            assert r.content == payload(entry, ts), f"record {entry}/{ts} served with other bytes"
        elif r.status_code == 500:
            assert r.headers.get("x-reduct-error"), f"500 without a clear text for {entry}/{ts}"
        out[ts] = r.status_code
    return out


def query_all(api: str, entry: str = "e") -> dict[int, bytes]:
    """Every record a query serves (v1 batched read); payloads must match (a 500 is allowed)."""
    r = requests.get(f"{api}/b/c/{entry}/q", timeout=TIMEOUT)
    assert r.status_code == 200
    qid = r.json()["id"]
    got: dict[int, bytes] = {}
    for _ in range(1000):
        try:
            r = requests.get(f"{api}/b/c/{entry}/batch", params={"q": qid}, timeout=TIMEOUT)
        except requests.RequestException:
            break  # a cut streamed body: the damage was not served as good
        if r.status_code in (204, 500):
            break
        assert r.status_code == 200
        items = sorted((int(k[len("x-reduct-time-"):]), int(v.split(",")[0])) for k, v in r.headers.items()
                       if k.lower().startswith("x-reduct-time-"))
        pos = 0
        for ts, size in items:
            got[ts] = r.content[pos:pos + size]
            assert got[ts] == payload(entry, ts), f"query served {entry}/{ts} with other bytes"
            pos += size
        if r.headers.get("x-reduct-last") == "true":
            break
    return got


def still_writable(api: str) -> None:
    r = requests.post(f"{api}/b/c/after?ts={int(time.time() * 1e6)}", data=b"fresh", timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    r = requests.post(f"{api}/b/c/e?ts=1000000", data=b"more", timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    assert requests.get(f"{api}/b/c/e?ts=1000000", timeout=TIMEOUT).content == b"more"


def recovery_lines(api: str) -> list[str]:
    return requests.get(f"{api}/info", timeout=TIMEOUT).json().get("recovery", [])


def edge_check(data: Path, tmp: Path) -> str:
    copy = tmp / "check-copy"
    shutil.copytree(data, copy)
    out = subprocess.run([sys.executable, "-m", "edge", "check", "--data-path", str(copy)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout + out.stderr


@pytest.fixture
def serve(data):
    procs: list[EdgeProcess] = []

    def start() -> EdgeProcess:
        proc = EdgeProcess(data, auth=NO_AUTH).start()
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.kill()


# --- block payloads --------------------------------------------------------------------------


def test_payload_flip_in_sealed_block_is_500_and_the_rest_is_served(data, serve, tmp_path):
    f = frame_of(blk(data, 11), 15)
    flip(blk(data, 11), f.payload_offset + 7)
    report = edge_check(data, tmp_path)
    assert "15" in report and "corrupt" in report.lower(), report
    proc = serve()
    status = read_all(proc.api)
    assert status[15] == 500
    assert all(s == 200 for ts, s in status.items() if ts != 15), status
    r = requests.get(f"{proc.api}/b/c/e?ts=15", timeout=TIMEOUT)
    assert "corrupt" in r.headers["x-reduct-error"].lower()
    got = query_all(proc.api)
    assert 15 not in got
    still_writable(proc.api)


def test_payload_flip_in_unsealed_block_drops_only_that_record_and_reports_it(data, serve, tmp_path):
    """Rot inside one record of the scanned block: its header still locates the next frame, so
    only that record goes (404, reported; its bytes stay in the block) and the later ones stay."""
    path = blk(data, 41)
    f = frame_of(path, 43)
    flip(path, f.payload_offset + 1)
    damaged = path.read_bytes()
    report = edge_check(data, tmp_path)
    assert "record 43" in report and "payload checksum mismatch" in report, report
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in [*range(1, 43), 44, 45]), status
    assert status[43] == 404, status
    lines = recovery_lines(proc.api)
    assert any(f"{41:020d}.blk" in line and "record 43" in line for line in lines), lines
    assert "recovery:" in proc.log()
    assert path.read_bytes()[: len(damaged)] == damaged  # nothing cut: the evidence stays in place
    still_writable(proc.api)


def test_payload_flip_in_the_last_record_of_unsealed_block_is_torn(data, serve, tmp_path):
    """Damage in the very last frame looks exactly like a write cut by a crash: torn and kept."""
    path = blk(data, 41)
    f = frame_of(path, 45)
    flip(path, f.payload_offset + 1)
    damaged = path.read_bytes()
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in range(1, 45)) and status[45] == 404, status
    assert any(f"{41:020d}.blk" in line and "torn" in line for line in recovery_lines(proc.api))
    torn = path.with_name(path.name + ".torn-0")
    assert torn.read_bytes() == damaged[f.offset:]  # every cut byte kept
    still_writable(proc.api)


def test_torn_tail_of_newest_block(data, serve):
    path = blk(data, 41)
    f = frame_of(path, 45)
    with open(path, "r+b") as fh:
        fh.truncate(f.offset + 40)  # a write cut inside the meta of the last frame
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in range(1, 45)) and status[45] == 404, status
    assert any("incomplete frame" in line for line in recovery_lines(proc.api))
    still_writable(proc.api)


def test_garbage_appended_to_sealed_block(data, serve):
    with open(blk(data, 21), "ab") as fh:
        fh.write(b"\x00garbage" * 50)
    proc = serve()
    status = read_all(proc.api)
    assert all(s == 200 for s in status.values()), status
    assert recovery_lines(proc.api), "the appended garbage was cut without a report"
    still_writable(proc.api)


# --- frame headers ---------------------------------------------------------------------------


def test_header_flip_in_unsealed_block_resyncs_past_the_damage(data, serve, tmp_path):
    """Rot in a frame *header* of the scanned block (no index to say where frames are): recovery
    resyncs at the next header that starts a clean chain to the end of the file, so only that
    record goes (404, reported); the block takes appends and seals again around the damage."""
    path = blk(data, 41)
    f = frame_of(path, 43)
    flip(path, f.offset + 9)                      # a ts byte: the header crc fails
    damaged = path.read_bytes()
    report = edge_check(data, tmp_path)
    assert "unreadable" in report and f"{41:020d}.blk" in report, report
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in [*range(1, 43), 44, 45]), status
    assert status[43] == 404, status
    lines = recovery_lines(proc.api)
    assert any(f"{41:020d}.blk" in line and f"bytes {f.offset}-{f.end} unreadable" in line for line in lines), lines
    assert path.read_bytes()[: len(damaged)] == damaged          # nothing cut
    assert not list(path.parent.glob("*.torn-*"))
    still_writable(proc.api)                                     # ts 1000000 appends to block 41
    assert proc.stop() == 0                                      # a clean stop seals it again
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in [*range(1, 43), 44, 45]) and status[43] == 404, status
    assert requests.get(f"{proc.api}/b/c/e?ts=1000000", timeout=TIMEOUT).content == b"more"


def test_header_flips_in_a_sealed_block_resync_on_its_index(data, serve):
    """Three rotten headers in one sealed block, the last frame's among them (so the index is
    not believed as it is): the index is whole (its crc checks), so its frame offsets are where
    the scan resyncs; every record but the three is served. A scan on its own could not prove
    frames between two damaged headers real (no clean chain to the end of the file)."""
    path = blk(data, 21)
    for ts in (24, 27, 30):
        flip(path, frame_of(path, ts).offset + 13)
    (data / "c" / "e" / "blocks.sum").unlink()                   # no summary record vouches
    proc = serve()
    status = read_all(proc.api)
    assert [ts for ts in range(1, N + 1) if status[ts] != 200] == [24, 27, 30], status
    still_writable(proc.api)


def test_header_flip_hidden_by_an_intact_index(data, serve, tmp_path):
    """A rotten header in the middle of a sealed block whose index and summary are intact: the
    block is trusted without a scan (the index holds the record's timestamp, place and
    metadata, and the payload crc still checks), so the record is served only as it was
    written; ``edge check``, which scans every block, names the damage."""
    path = blk(data, 11)
    flip(path, frame_of(path, 15).offset + 9)
    report = edge_check(data, tmp_path)
    assert f"{11:020d}.blk" in report and "unreadable" in report, report
    proc = serve()
    status = read_all(proc.api)                   # 200 only with exactly the bytes written
    assert all(s == 200 for ts, s in status.items() if ts != 15), status
    assert set(query_all(proc.api)) >= set(range(1, N + 1)) - {15}


# --- indexes ---------------------------------------------------------------------------------


def test_damaged_or_missing_index_is_rebuilt(data, serve):
    flip(idx(data, 21), 40)
    with open(idx(data, 11), "r+b") as fh:
        fh.truncate(10)
    idx(data, 1).unlink()
    proc = serve()
    status = read_all(proc.api)
    assert all(s == 200 for s in status.values()), status
    lines = recovery_lines(proc.api)
    assert any("index of block 21 rebuilt" in line for line in lines), lines
    assert any("index of block 11 rebuilt" in line for line in lines), lines
    assert len(query_all(proc.api)) == N
    still_writable(proc.api)


def test_index_that_lies_about_the_block(data, serve):
    """An .idx copied from another block (valid crc, wrong content) must not be believed."""
    shutil.copy(idx(data, 11), idx(data, 21))
    proc = serve()
    status = read_all(proc.api)
    assert all(s == 200 for s in status.values()), status
    still_writable(proc.api)


def test_payload_flip_in_sealed_block_without_index(data, serve):
    """No .idx to trust: the block is rescanned; the damaged record is dropped and reported,
    every other record (of this block too) is served."""
    f = frame_of(blk(data, 31), 33)
    flip(blk(data, 31), f.payload_offset + 3)
    idx(data, 31).unlink()
    proc = serve()
    status = read_all(proc.api)
    assert all(status[ts] == 200 for ts in [*range(1, 33), *range(34, N + 1)]), status
    assert status[33] == 404, status
    assert any(f"{31:020d}.blk" in line for line in recovery_lines(proc.api))
    still_writable(proc.api)


# --- journal ---------------------------------------------------------------------------------


def _journal_states(api: str) -> dict[int, tuple[int, dict]]:
    s = requests.Session()
    out = {}
    for ts in range(1, J + 1):
        r = s.get(f"{api}/b/c/j?ts={ts}", timeout=TIMEOUT)
        assert r.status_code in (200, 404), (ts, r.status_code)
        if r.status_code == 200:
            assert r.content == payload("j", ts)
        labels = {k.lower()[len("x-reduct-label-"):]: v for k, v in r.headers.items()
                  if k.lower().startswith("x-reduct-label-")}
        out[ts] = (r.status_code, labels)
    return out


def test_journal_intact_applies_updates_and_removals(data, serve):
    proc = serve()
    states = _journal_states(proc.api)
    for ts in range(1, J + 1):
        if ts in REMOVED:
            assert states[ts][0] == 404
        else:
            assert states[ts] == (200, {"u": UPDATED[ts]} if ts in UPDATED else {})


@pytest.mark.parametrize("damage", ["flip_middle", "truncate_tail", "garbage_tail"])
def test_damaged_journal_is_cut_and_reported(data, serve, damage):
    path = data / "c" / "j" / "journal.log"
    raw = path.read_bytes()
    if damage == "flip_middle":
        flip(path, len(raw) // 2)
    elif damage == "truncate_tail":
        path.write_bytes(raw[:-5])
    else:
        path.write_bytes(raw + b"\xff" * 33)
    proc = serve()
    states = _journal_states(proc.api)
    # Records themselves are intact; an update/removal after the cut may be lost (reported).
    for ts in range(1, J + 1):
        if ts not in REMOVED:
            assert states[ts][0] == 200
    assert any("journal truncated" in line for line in recovery_lines(proc.api))
    assert "journal truncated" in proc.log()
    if damage == "garbage_tail":  # nothing acknowledged was lost
        assert all(states[ts][0] == 404 for ts in REMOVED)
    still_writable(proc.api)


# --- everything at once ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_bit_flips_anywhere(data, serve, seed):
    rng = random.Random(seed)
    victims = sorted(p for p in (data / "c").rglob("*") if p.is_file() and p.suffix in (".blk", ".idx", ".log"))
    for _ in range(12):
        p = rng.choice(victims)
        size = p.stat().st_size
        if size and rng.random() < 0.8:
            flip(p, rng.randrange(size))
        elif size:
            with open(p, "r+b") as fh:
                fh.truncate(rng.randrange(size))
    proc = serve()
    status = read_all(proc.api)
    assert sum(s == 200 for s in status.values()) > 0
    query_all(proc.api)
    _ = read_all(proc.api, "j", J)
    still_writable(proc.api)


@pytest.mark.parametrize("damage", ["garbage", "flipped"])
def test_broken_bucket_settings_do_not_stop_the_server(data, serve, damage):
    """Reads go on, writes are refused with a clear error (the quota is unknown) until the
    settings are set again; the damaged bytes stay beside the file, also across a restart."""
    path = data / "c" / "settings.json"
    raw = bytearray(path.read_bytes())
    assert raw.startswith(b"edge-state 1 ")
    if damage == "garbage":
        raw = bytearray(b"{not json")
    else:
        raw[-5] ^= 0x02                                   # may well still parse: the checksum tells
    path.write_bytes(bytes(raw))
    proc = serve()
    status = read_all(proc.api)
    assert all(s == 200 for s in status.values()), status
    assert any("settings" in line and "read-only" in line for line in recovery_lines(proc.api))
    r = requests.post(f"{proc.api}/b/c/after?ts=1", data=b"x", timeout=TIMEOUT)
    assert r.status_code == 409 and "settings file is damaged" in r.headers["x-reduct-error"]
    kept = [p for p in (data / "c").iterdir() if p.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(raw)
    proc.restart()                                        # still read-only: nothing was guessed
    assert requests.post(f"{proc.api}/b/c/after?ts=1", data=b"x", timeout=TIMEOUT).status_code == 409
    metrics = requests.get(f"{proc.url}/metrics", timeout=TIMEOUT).text
    assert "edge_damaged_state_files 1.0" in metrics
    r = requests.put(f"{proc.api}/b/c", json={"max_block_records": 10}, timeout=TIMEOUT)
    assert r.status_code == 200, r.headers
    still_writable(proc.api)
    assert kept[0].exists()                               # never deleted by us


def test_zero_length_and_stray_files(data, serve):
    (data / "c" / "e" / f"{99:020d}.blk").write_bytes(b"")
    (data / "c" / "e" / "notes.txt").write_text("hello")
    (data / "c" / "e" / f"{41:020d}.blk.torn-7").write_bytes(b"old torn bytes")
    proc = serve()
    status = read_all(proc.api)
    assert all(s == 200 for s in status.values()), status
    still_writable(proc.api)
