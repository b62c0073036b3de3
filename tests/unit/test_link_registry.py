"""edge.links.registry: records, persistence, counting, cheap-first resolution, secrets at rest."""

from __future__ import annotations

import os

import pytest

from edge.errors import DiskFullError, InvalidInputError, NotFoundError
from edge.links import registry as G, rules as R
from edge.links.seal import seal
from edge.http.wire.links import link_to_wire

FAST = R.PasswordParams(n=2**4, r=1, p=1)
KEY = os.urandom(32)
NOW = 1_700_000_000.0


def make(tmp_path, **kw):
    return G.LinkRegistry.open(tmp_path, key=KEY, password_params=FAST, clock=lambda: NOW, **kw)


def new_link(reg, token="tok-" + "a" * 40, **kw):
    args = dict(token=token, file_name="x.bin", bucket="b", entry="e", record_entry="e", record_ts=42,
                expire_at=int(NOW) + 3600, creator="alice")
    args.update(kw)
    return reg.create(**args)


def test_create_get_list_and_ids(tmp_path):
    reg = make(tmp_path)
    a = new_link(reg, token="t1")
    b = new_link(reg, token="t2", bucket="other", creator="bob")
    assert len(a.id) == 22 and a.id != b.id                 # 128 random bits, url-safe
    assert reg.get(a.id) == a
    assert [r.id for r in reg.list(bucket="b")] == [a.id]
    assert [r.id for r in reg.list(creator="bob")] == [b.id]
    assert len(reg.list()) == 2
    with pytest.raises(NotFoundError, match="is not found"):
        reg.get("A" * 22)
    with pytest.raises(NotFoundError, match="^Link is not found$"):
        reg.get("../../etc/passwd")
    with pytest.raises(ValueError):
        new_link(reg, token="t1")                           # same token twice
    d = link_to_wire(a, NOW, with_receipts=True)
    assert d["state"] == "active" and d["has_password"] is False and d["receipts"] == []
    assert "token_hash" not in d and "password_hash" not in d


def test_validation(tmp_path):
    reg = make(tmp_path)
    for bad in (0, -1, True, "3", 1.5):
        with pytest.raises(InvalidInputError, match="max_downloads"):
            new_link(reg, max_downloads=bad)
    with pytest.raises(InvalidInputError, match="expire_at"):
        new_link(reg, expire_at="soon")
    assert not list(reg.dir.glob("*.json"))


def test_find_by_token_and_password_checks(tmp_path):
    reg = make(tmp_path)
    rec = new_link(reg, token="good", password="pw")
    assert reg.find("good").id == rec.id and reg.find("bad") is None and reg.find("") is None
    assert reg.password_matches(rec, "pw") is True and reg.password_matches(rec, "PW") is False
    assert reg.password_matches(None, "pw") is False
    assert R.is_expired(rec.expire_at, NOW + 7200)
    reg.revoke(rec.id)
    assert reg.find("good").revoked is True


def test_lookups_never_hash(tmp_path, monkeypatch):
    reg = make(tmp_path)
    rec = new_link(reg, token="good", password="pw", max_downloads=1)
    calls = []
    monkeypatch.setattr(R, "_scrypt", lambda *a: calls.append(a) or b"")
    assert reg.find("junk") is None and reg.find("good") is not None and reg.get(rec.id) is not None
    reg.record_download(rec.id, "c", 10, None, partial=False)
    reg.revoke(rec.id)
    assert calls == []


def test_counting_with_sessions(tmp_path):
    reg = make(tmp_path)
    rec = new_link(reg, token="t", max_downloads=2)
    r = reg.record_download(rec.id, "10.0.0.1", 100, "bytes=0-99", partial=True, now=NOW)
    assert r.counted and r.record.downloads == 1
    for i in range(20):                                       # seeking: same client, in session
        r = reg.record_download(rec.id, "10.0.0.1", 10, f"bytes={i * 10}-", partial=True, now=NOW + i)
        assert not r.counted
    assert r.record.downloads == 1
    r = reg.record_download(rec.id, "10.0.0.1", 1000, None, partial=False, now=NOW + 30)   # full body
    assert r.counted and r.record.downloads == 2
    # used up: a continuation in the live session is still served, a new download is not
    assert not reg.record_download(rec.id, "10.0.0.1", 5, "bytes=5-", partial=True, now=NOW + 31).counted
    assert R.session_live(reg.get(rec.id).sessions.get("10.0.0.1"), NOW + 31)   # what admission checks
    with pytest.raises(NotFoundError, match="^Link not found or has expired$"):
        reg.record_download(rec.id, "10.0.0.1", 1000, None, partial=False, now=NOW + 32)
    with pytest.raises(NotFoundError):
        reg.record_download(rec.id, "10.0.0.2", 5, "bytes=5-", partial=True, now=NOW + 32)
    with pytest.raises(NotFoundError):                       # the session ran out
        reg.record_download(rec.id, "10.0.0.1", 5, "bytes=5-", partial=True, now=NOW + 32 + R.SESSION_WINDOW_S + 1)
    got = reg.get(rec.id)
    assert got.downloads == 2 and got.state(NOW + 40) == "used_up"
    assert len(got.receipts) == 23 and got.receipts[0].range == "bytes=0-99" and got.receipts[0].client == "10.0.0.1"


def test_receipts_and_sessions_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "MAX_RECEIPTS", 5)
    monkeypatch.setattr(G, "MAX_SESSIONS", 3)
    reg = make(tmp_path)
    rec = new_link(reg, token="t")
    for i in range(10):
        reg.record_download(rec.id, f"c{i}", i, None, partial=False, now=NOW + i)
    got = reg.get(rec.id)
    assert [r.bytes for r in got.receipts] == [5, 6, 7, 8, 9]
    assert list(got.sessions) == ["c7", "c8", "c9"] and got.downloads == 10


def test_update_and_revoke(tmp_path):
    reg = make(tmp_path)
    rec = new_link(reg, token="t", max_downloads=1)
    reg.record_download(rec.id, "c", 1, None, partial=False)
    with pytest.raises(NotFoundError):
        reg.record_download(rec.id, "d", 1, None, partial=False)        # used up for a new client
    rec = reg.update(rec.id, max_downloads=None, expire_at=int(NOW) + 10, password="new")
    assert rec.max_downloads is None and rec.expire_at == int(NOW) + 10 and rec.has_password
    assert reg.password_matches(rec, "new") and reg.record_download(rec.id, "d", 1, None, partial=False).counted
    rec = reg.update(rec.id, password=None)
    assert not rec.has_password and rec.expire_at == int(NOW) + 10     # untouched fields kept
    with pytest.raises(InvalidInputError):
        reg.update(rec.id, max_downloads=0)
    with pytest.raises(NotFoundError):
        reg.update("B" * 22, password="x")
    assert reg.revoke(rec.id).revoked and reg.revoke(rec.id).revoked_at == int(NOW)   # idempotent
    with pytest.raises(NotFoundError, match="^Link not found or has expired$"):
        reg.record_download(rec.id, "c", 1, None, partial=False)
    assert link_to_wire(reg.get(rec.id), NOW)["state"] == "revoked"


def test_survives_reopen_with_counters(tmp_path):
    reg = make(tmp_path)
    rec = new_link(reg, token="t", max_downloads=3, password="pw", receipt_to="o@example.com")
    reg.record_download(rec.id, "c", 7, "bytes=0-6", partial=True)
    reg.record_download(rec.id, "d", 9, None, partial=False)
    other = new_link(reg, token="u")
    reg.revoke(other.id)
    again = make(tmp_path)
    assert again.get(rec.id) == reg.get(rec.id)
    assert again.get(rec.id).downloads == 2 and again.get(other.id).revoked
    assert again.find("t").id == rec.id and again.password_matches(again.get(rec.id), "pw")
    assert again.load_report == []


def test_reopen_skips_damaged_and_temp_files(tmp_path):
    reg = make(tmp_path)
    rec = new_link(reg, token="t")
    (reg.dir / ".junk.json.abc.tmp").write_bytes(b"half")
    (reg.dir / ("Z" * 22 + ".json")).write_bytes(b"{not json")
    again = make(tmp_path)
    assert again.get(rec.id) == rec
    assert len(again.load_report) == 1 and "Z" * 22 in again.load_report[0]
    assert not list(reg.dir.glob("*.tmp"))


def test_failed_write_changes_nothing(tmp_path, monkeypatch):
    reg = make(tmp_path)
    rec = new_link(reg, token="t")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)  # edge.durable does the rename
    with pytest.raises(DiskFullError):
        reg.record_download(rec.id, "c", 1, None, partial=False)
    assert reg.get(rec.id).downloads == 0
    assert not [p for p in reg.dir.iterdir() if p.name.endswith(".tmp")]


def test_no_secret_at_rest_and_reveal(tmp_path):
    reg = make(tmp_path)
    box = seal({"bucket": "b"}, KEY, associated=b"alice")
    params = {"ct": box.ct, "s": box.s, "n": box.n, "i": "alice"}
    rec = new_link(reg, token=box.ct, password="hunter2-password", url_params=params)
    reg.record_download(rec.id, "c", 1, None, partial=False)
    blob = b"".join(p.read_bytes() for p in reg.dir.iterdir())
    assert box.ct.encode() not in blob and b"hunter2" not in blob
    assert reg.reveal(rec.id) == params
    assert make(tmp_path).reveal(rec.id) == params
    assert G.LinkRegistry(tmp_path, key=os.urandom(32)).reveal(rec.id) is None
    assert G.LinkRegistry(tmp_path).reveal(rec.id) is None
    assert (reg.dir / f"{rec.id}.json").stat().st_mode & 0o077 == 0
