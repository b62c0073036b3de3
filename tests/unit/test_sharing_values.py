"""Pure and synchronous pieces of the sharing APIs: vendor wire values, download tickets,
content-type sniffing, the registry's new fields, and the attachment staging area's repair."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest


from edge import durable
from edge.attachments.sniff import content_type_or_none, sniff
from edge.attachments.staging import AttachmentStaging, Completed, session_key
from edge.errors import InvalidInputError
from edge.links import registry as G, rules as R, tickets, wire
from edge.uploads.staging import Limits
from edge.http.wire.links import link_to_wire

KEY = os.urandom(32)
NOW = 1_700_000_000.0
FAST = R.PasswordParams(n=2**4, r=1, p=1)


# --- wire values ------------------------------------------------------------------------------

@pytest.mark.parametrize("size, text", [(0, "0 Bytes"), (1, "1 Byte"), (1023, "1023 Bytes"), (1024, "1 KB"),
                                        (147874, "144 KB"), (1536 * 1024, "1.5 MB"), (10**10, "9.31 GB"),
                                        (1024**2 - 1, "1 MB"), (5 * 1024**4, "5 TB")])
def test_size_human(size, text):
    assert wire.size_human(size) == text


def test_expiry_days_are_whole_utc_days():
    end = wire.day_end_s(date(2017, 1, 3))
    assert end == 1483487999 and wire.expiry_day(end) == "2017-01-03" and wire.expiry_day(end + 1) == "2017-01-04"
    assert R.is_expired(end, end) is False and R.is_expired(end, end + 1) is True
    assert wire.days_from(end - 5, 7) == wire.day_end_s(date(2017, 1, 10))
    for bad in ("2017-1-3", "2017-02-30", "17-01-03", " 2017-01-03", "2017-01-03T00:00", 20170103, None, "1969-12-31"):
        with pytest.raises(InvalidInputError, match="expires_at"):
            wire.parse_day(bad, "expires_at")


def test_iso_ms():
    assert wire.iso_ms(1482184568719) == "2016-12-19T21:56:08.719Z"
    assert wire.iso_ms(1482184494000) == "2016-12-19T21:54:54.000Z"


# --- tickets ----------------------------------------------------------------------------------

def test_tickets_are_bound_signed_and_short_lived():
    t = tickets.issue(KEY, "link-id-0123456789ab", NOW, prepaid=True)
    got = tickets.check(KEY, t, "link-id-0123456789ab", NOW + 10)
    assert got is not None and got.prepaid is True
    assert tickets.check(KEY, t, "other-id-0123456789a", NOW) is None
    assert tickets.check(os.urandom(32), t, "link-id-0123456789ab", NOW) is None
    assert tickets.check(KEY, t, "link-id-0123456789ab", NOW + tickets.TICKET_TTL_S + 1) is None
    exp, flag, mac = t.split(".")
    assert tickets.check(KEY, f"{exp}.0.{mac}", "link-id-0123456789ab", NOW) is None      # prepaid flag signed
    assert tickets.check(KEY, f"{int(exp) + 100}.{flag}.{mac}", "link-id-0123456789ab", NOW) is None
    for junk in ("", "x", "1.1.1", t + "A", None):
        assert tickets.check(KEY, junk, "link-id-0123456789ab", NOW) is None


# --- sniffing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("head, ctype", [
    (b"\x89PNG\r\n\x1a\n....", "image/png"), (b"\xff\xd8\xff\xe0", "image/jpeg"), (b"%PDF-1.7", "application/pdf"),
    (b"PK\x03\x04", "application/zip"), (b"\x1f\x8b\x08", "application/gzip"),
    (b"\x00\x00\x00\x18ftypmp42", "video/mp4"), (b"RIFF\x00\x00\x00\x00WEBPVP8", "image/webp"),
    (b'{"a": 1}', "application/json"), (b"[1, 2", "text/plain"), (b"plain words\n", "text/plain"),
    (b"<!DOCTYPE html><p>", "text/html"), (b"<svg xmlns='...'>", "image/svg+xml"), (b"\x00\x01\x02", "application/octet-stream"),
    (b"", "application/x-empty"), ("naïve".encode()[:3], "text/plain"),
])
def test_sniff(head, ctype):
    assert sniff(head) == ctype


def test_content_type_checks():
    assert content_type_or_none("image/png", "x") == "image/png"
    assert content_type_or_none('text/plain; charset="utf-8"', "x") == 'text/plain; charset="utf-8"'
    assert content_type_or_none("application/x-www-form-urlencoded", "x") is None    # curl's default
    assert content_type_or_none(None, "x") is None and content_type_or_none(" ", "x") is None
    for bad in ("png", "image/png\r\nX-Evil: 1", "a/b; c", "a/" + "b" * 300, "ümlaut/x"):
        with pytest.raises(InvalidInputError):
            content_type_or_none(bad, "x")


# --- registry ---------------------------------------------------------------------------------

def make(tmp_path):
    return G.LinkRegistry.open(tmp_path, key=KEY, password_params=FAST, clock=lambda: NOW)


def vendor_link(reg, **kw):
    args = dict(token=None, file_name="x.bin", bucket="b", entry="e", record_entry="e", record_ts=42,
                expire_at=int(NOW) + 3600, creator="alice", origin="liquidfiles")
    args.update(kw)
    return reg.create(**args)


def test_serials_switches_and_persistence(tmp_path):
    reg = make(tmp_path)
    a = vendor_link(reg, require_authentication=True, send_receipts=False)
    b = vendor_link(reg, origin="mediapocket", max_downloads=3)
    c = reg.create(token="ct-" + "a" * 30, file_name="n.bin", bucket="b", entry="e", record_entry="e",
                   record_ts=1, expire_at=int(NOW) + 60, creator="bob")
    assert (a.serial, b.serial, c.serial) == (1, 2, 3) and a.token_hash is None
    assert reg.by_serial(2) == b and reg.by_serial(9) is None and reg.find("ct-" + "a" * 30) == c
    assert a.created_ms == int(NOW * 1000) and link_to_wire(a, NOW)["origin"] == "liquidfiles"
    reg.revoke(b.id)
    again = make(tmp_path)
    assert again.get(a.id).require_authentication is True and again.get(a.id).send_receipts is False
    assert again.by_serial(2).revoked and vendor_link(again).serial == 4        # serials never reused
    upd = again.update(a.id, require_authentication=False, send_receipts=True, receipt_to="o@example.com")
    assert (upd.require_authentication, upd.send_receipts, upd.receipt_to) == (False, True, "o@example.com")
    with pytest.raises(InvalidInputError):
        again.update(a.id, require_authentication="yes")
    with pytest.raises(ValueError):
        vendor_link(again, origin="ftp")


def test_links_from_before_serials_get_them_once(tmp_path):
    reg = make(tmp_path)
    old = [vendor_link(reg, origin="native") for _ in range(3)]
    for i, rec in enumerate(old):                     # as written by the previous version
        path = reg.dir / f"{rec.id}.json"
        doc = json.loads(durable.unseal(path.read_bytes())[0])
        for key in ("serial", "require_authentication", "send_receipts", "origin", "created_ms", "updated_ms"):
            doc.pop(key)
        doc["created_at"] = int(NOW) - 10 + i
        path.write_text(json.dumps(doc))
    loaded = make(tmp_path)
    serials = [loaded.get(r.id).serial for r in old]
    assert serials == [1, 2, 3] and loaded.get(old[0].id).created_ms == (int(NOW) - 10) * 1000
    assert [make(tmp_path).get(r.id).serial for r in old] == serials    # stable across restarts


def test_password_matches_costs_one_hash_always(tmp_path, monkeypatch):
    reg = make(tmp_path)
    locked = vendor_link(reg, password="pw")
    public = vendor_link(reg)
    calls = []
    real = R.verify_password
    monkeypatch.setattr(R, "verify_password", lambda p, s: calls.append(1) or real(p, s))
    assert reg.password_matches(locked, "pw") is True
    assert reg.password_matches(locked, "no") is False
    assert reg.password_matches(public, "pw") is False
    assert reg.password_matches(None, "pw") is False
    assert len(calls) == 4


# --- attachment staging -----------------------------------------------------------------------

def test_staging_repairs_what_a_crash_left(tmp_path):
    root = tmp_path / "att"
    st, _ = AttachmentStaging.open(root, Limits())
    s = st.create(key=session_key("t", "f", 3), token="t", filename="f", chunks=3, ts_us=5, content_type=None,
                  now_s=NOW)
    for data in (b"first try", b"second try"):
        w = st.open_piece(s, 1)
        w.write(data)
        w.commit()
    folder = root / s.id
    old = next(p for p in folder.iterdir() if p.name.startswith("1.2."))
    (folder / old.name.replace("1.2.", "1.1.")).write_bytes(b"first try")   # a crash before the unlink
    (folder / ".0.9.tmp").write_bytes(b"unanswered")
    (root / ".deadbeef.tmp").mkdir()                                         # an unfinished creation
    st2, report = AttachmentStaging.open(root, Limits())
    again = st2.sessions[s.id]
    assert list(again.pieces) == [1] and again.pieces[1].size == len(b"second try")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["session.json", old.name])
    assert any("unfinished" in line for line in report)
    st2.mark_complete(again, Completed(5, "f", 10, "c", "text/plain", ("a", "b", "c"), NOW))
    st3, _ = AttachmentStaging.open(root, Limits())
    assert st3.sessions[s.id].completed is not None and st3.finished(again.key)[0].id == s.id
    assert st3.active(again.key) is None


@pytest.mark.parametrize("name", ["session.json", "complete.json"])
def test_staging_sets_a_session_with_damaged_state_aside_with_its_pieces(tmp_path, name):
    # The state files are checksummed; a damaged one is never guessed at and the client's pieces
    # are never deleted: the session folder is set aside whole and reported.
    root = tmp_path / "att"
    st, _ = AttachmentStaging.open(root, Limits())
    s = st.create(key=session_key("t", "f", 2), token="t", filename="f", chunks=2, ts_us=5, content_type=None,
                  now_s=NOW)
    w = st.open_piece(s, 0)
    w.write(b"piece zero")
    w.commit()
    if name == "complete.json":
        st.save(s)
        (root / s.id / name).write_bytes(durable.seal(b'{"v": 1}'))   # checks, but does not parse
    else:
        raw = bytearray((root / s.id / name).read_bytes())
        assert durable.unseal(bytes(raw))[1]                            # written sealed
        raw[-3] ^= 0x20
        (root / s.id / name).write_bytes(bytes(raw))
    st2, report = AttachmentStaging.open(root, Limits())
    assert s.id not in st2.sessions
    assert len(st2.damaged) == 1 and st2.damaged[0].kept_as is not None
    kept = st2.damaged[0].kept_as
    assert any(p.name.startswith("0.") and p.read_bytes() == b"piece zero" for p in kept.iterdir())
    assert any(s.id in line and "damaged" in line for line in report)
    st3, report = AttachmentStaging.open(root, Limits())               # still reported, still kept
    assert len(st3.damaged) == 1 and kept.exists()
