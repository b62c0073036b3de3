"""edge.uploads.staging: folders, durable offsets, rollback, restart repair, limits."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import durable
from edge.errors import BadRequestError, DiskFullError, NotFoundError, PayloadTooLargeError, RateLimitedError
from edge.uploads.protocol import Checksum, Destination, Event, State
from edge.store import files
from edge.uploads.staging import (
    Limits, StagedDataDamaged, StagedSource, Staging, Upload, new_upload_id, verify_data,
)

DEST = Destination("b", "e", 123, "video/mp4", {"filename": "a.mp4"})
NOW = 1_000_000.0


def open_staging(tmp_path, **limits):
    staging, report = Staging.open(tmp_path / ".edge" / "uploads", Limits(**limits), free_bytes=lambda p: 10**12)
    return staging, report


def new(staging, length=10, meta="bucket Yg==") -> Upload:
    return staging.create(new_upload_id(), length, DEST, meta, NOW)


def test_create_layout_and_reload(tmp_path):
    staging, report = open_staging(tmp_path, expire_s=60)
    assert report == []
    up = new(staging)
    folder = staging.folder(up.id)
    assert (folder / "data").read_bytes() == b""
    state = json.loads(durable.unseal((folder / "state.json").read_bytes())[0])
    assert state["offset"] == 0 and state["state"] == "CREATED" and state["expires_s"] == NOW + 60
    assert state["labels"] == {"filename": "a.mp4"} and state["metadata"] == "bucket Yg=="
    again, _ = open_staging(tmp_path)
    got = again.get(up.id)
    assert (got.length, got.offset, got.state, got.dest, got.metadata) == (10, 0, State.CREATED, DEST, "bucket Yg==")


def test_append_commit_is_durable_offset(tmp_path):
    staging, _ = open_staging(tmp_path, expire_s=60)
    up = new(staging)
    w = staging.open_chunk(up, None)
    w.write(b"abc")
    w.write(b"de")
    w.commit(NOW + 5)
    assert (up.offset, up.state, up.expires_s) == (5, State.RECEIVING, NOW + 65)
    assert staging.data_path(up.id).read_bytes() == b"abcde"
    assert json.loads(durable.unseal((staging.folder(up.id) / "state.json").read_bytes())[0])["offset"] == 5


def test_unacknowledged_tail_is_dropped_on_reload_and_on_next_chunk(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging)
    w = staging.open_chunk(up, None)
    w.write(b"abc")
    w.commit(NOW)
    # A PATCH that was cut off by kill -9: bytes on disk, offset never raised.
    w = staging.open_chunk(up, None)
    w.write(b"XYZ")
    assert staging.data_path(up.id).read_bytes() == b"abcXYZ"
    again, _ = open_staging(tmp_path)
    assert again.get(up.id).offset == 3
    assert again.data_path(up.id).read_bytes() == b"abc"
    # Same without a reload: the next chunk truncates first.
    staging.data_path(up.id).write_bytes(b"abcJUNK")
    w = again.open_chunk(again.get(up.id), None)
    w.write(b"d")
    w.commit(NOW)
    assert again.data_path(up.id).read_bytes() == b"abcd"


def test_checksum_mismatch_rolls_back(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging)
    w = staging.open_chunk(up, Checksum("sha256", hashlib.sha256(b"abc").digest()))
    w.write(b"abc")
    assert w.checksum_ok()
    w.commit(NOW)
    w = staging.open_chunk(up, Checksum("sha1", hashlib.sha1(b"good").digest()))
    w.write(b"evil")
    assert not w.checksum_ok()
    w.rollback()
    assert up.offset == 3 and staging.data_path(up.id).read_bytes() == b"abc"


def test_overflow_refused(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging, length=4)
    w = staging.open_chunk(up, None)
    w.write(b"abc")
    with pytest.raises(BadRequestError, match="Upload-Length of 4 bytes exceeded"):
        w.write(b"de")
    assert w.overflow
    w.rollback()
    assert staging.data_path(up.id).read_bytes() == b""


def test_complete_leaves_tombstone_then_remove(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging, length=2)
    w = staging.open_chunk(up, None)
    w.write(b"ab")
    w.commit(NOW)
    assert up.full
    staging.mark_complete(up, NOW)
    assert not staging.data_path(up.id).exists()
    again, report = open_staging(tmp_path)
    assert report == [] and again.get(up.id).state == State.COMPLETE and again.get(up.id).offset == 2
    again.remove(again.get(up.id), Event.EXPIRE)
    assert not staging.folder(up.id).exists()
    with pytest.raises(NotFoundError, match=f"Upload '{up.id}' is not found"):
        again.get(up.id)


def test_terminate_removes_everything(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging)
    staging.remove(up, Event.TERMINATE)
    assert up.state == State.TERMINATED
    assert list(staging.root.iterdir()) == []


def test_crash_leftovers_are_cleaned(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging)
    (staging.root / f".{new_upload_id()}.tmp").mkdir()
    bad = staging.root / new_upload_id()
    bad.mkdir()
    (bad / "state.json").write_text("{not json")
    again, report = open_staging(tmp_path)
    assert list(again.uploads) == [up.id]
    assert len(report) == 2 and len(again.damaged) == 1
    kept = again.damaged[0].kept_as       # a published upload with a damaged state: set aside, never deleted
    assert sorted(p.name for p in again.root.iterdir()) == sorted([up.id, kept.name])
    assert (kept / "state.json").read_text() == "{not json"
    third, report = open_staging(tmp_path)
    assert list(third.uploads) == [up.id] and kept.exists() and len(third.damaged) == 1


def test_unknown_ids_are_404(tmp_path):
    staging, _ = open_staging(tmp_path)
    for bad in ("nope", "../../etc", new_upload_id()):
        with pytest.raises(NotFoundError):
            staging.get(bad)


def test_limits(tmp_path):
    staging, _ = open_staging(tmp_path, max_bytes=100, max_active=2, staging_bytes=150)
    with pytest.raises(PayloadTooLargeError, match="exceeds the largest upload of 100 bytes"):
        new(staging, length=101)
    a = new(staging, length=100)
    with pytest.raises(DiskFullError, match="Not enough upload staging space: 60 bytes requested, 50 of 150 left"):
        new(staging, length=60)
    new(staging, length=50)
    with pytest.raises(RateLimitedError, match=r"Too many uploads in progress \(2\)"):
        new(staging, length=1)
    staging.remove(a, Event.TERMINATE)
    new(staging, length=1)


def test_free_disk_checked(tmp_path):
    staging, _ = Staging.open(tmp_path / "u", Limits(), free_bytes=lambda p: 5)
    with pytest.raises(DiskFullError, match="Not enough free disk space"):
        new(staging, length=6)


def test_limits_from_env():
    lim = Limits.from_env({"EDGE_UPLOAD_MAX_BYTES": "2GiB", "EDGE_UPLOADS_MAX_ACTIVE": "3",
                           "EDGE_UPLOAD_STAGING_BYTES": "10GB", "EDGE_UPLOAD_EXPIRE_S": "0.5"})
    assert lim == Limits(2 * 1024**3, 3, 10 * 1000**3, 0.5)
    assert Limits.from_env({}) == Limits()
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="EDGE_UPLOADS_MAX_ACTIVE"):
        Limits.from_env({"EDGE_UPLOADS_MAX_ACTIVE": "0"})


# --- the running CRC of the staged bytes (data_crc32) ---------------------------------------------


def _read_all(source: StagedSource) -> bytes:
    out = b""
    while chunk := source.read(7):
        out += chunk
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.lists(st.binary(max_size=40), max_size=4), min_size=1, max_size=5),
       refused=st.sets(st.integers(0, 4)), cut=st.sets(st.integers(0, 4)))
def test_crc_follows_every_acknowledged_byte(tmp_path_factory, chunks, refused, cut):
    """Whatever the PATCHes (several writes each, some refused and rolled back, some cut off and
    reloaded), the saved CRC is the CRC of data[0:offset], and the hand-over accepts exactly that."""
    root = tmp_path_factory.mktemp("crc")
    total = sum(len(c) for patch in chunks for c in patch)
    staging, _ = open_staging(root)
    up = new(staging, length=max(total, 1))
    for i, patch in enumerate(chunks):
        w = staging.open_chunk(up, None)
        for c in patch:
            w.write(c)
        if i in refused:
            w.rollback()
        elif i in cut:              # kill -9 before the commit: the next open drops the tail
            files.close(w.fd)
            staging, _ = open_staging(root)
            up = staging.get(up.id)
        else:
            w.commit(NOW)
        acked = staging.data_path(up.id).read_bytes()[:up.offset]
        assert up.crc == zlib.crc32(acked)
        again, _ = open_staging(root)
        assert again.get(up.id).crc == up.crc
    src = StagedSource(staging.data_path(up.id), up.offset, up.crc, 5)
    try:
        assert len(_read_all(src)) == up.offset
    finally:
        src.close()


def test_hand_over_refuses_bytes_that_changed_after_they_were_acknowledged(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging, length=20)
    w = staging.open_chunk(up, None)
    w.write(b"0123456789abcdefghij")
    w.commit(NOW)
    folder = staging.folder(up.id)
    assert verify_data(folder) is None
    raw = bytearray(staging.data_path(up.id).read_bytes())
    raw[11] ^= 1
    staging.data_path(up.id).write_bytes(bytes(raw))
    assert "no longer matches its checksum" in verify_data(folder)
    src = StagedSource(staging.data_path(up.id), up.length, up.crc, 7)
    try:
        assert src.read(7) == b"0123456"             # early reads pass: the CRC covers the whole file
        assert src.read(7) == bytes(raw[7:14])
        with pytest.raises(StagedDataDamaged, match="no longer matches its checksum"):
            src.read(7)                               # ...but the last bytes are never handed over
    finally:
        src.close()
    staging.data_path(up.id).write_bytes(bytes(raw[:15]))
    assert "shorter than the 20 bytes acknowledged" in verify_data(folder)
    aside = staging.set_aside(up, "test")
    assert aside.kept_as is not None and not folder.exists()
    with pytest.raises(NotFoundError):
        staging.get(up.id)


def test_a_state_from_before_the_crc_loads_and_is_not_checked(tmp_path):
    staging, _ = open_staging(tmp_path)
    up = new(staging, length=3)
    w = staging.open_chunk(up, None)
    w.write(b"abc")
    w.commit(NOW)
    state = staging.folder(up.id) / "state.json"
    doc = json.loads(durable.unseal(state.read_bytes())[0])
    del doc["data_crc32"]
    durable.write_state(state, json.dumps(doc).encode())
    again, _ = open_staging(tmp_path)
    old = again.get(up.id)
    assert old.crc is None and "data_crc32" not in json.loads(old.to_json())
    staging.data_path(up.id).write_bytes(b"abX")
    assert verify_data(again.folder(up.id)) is None
    w = again.open_chunk(old, None)     # and it stays unchecked: no CRC can vouch for the old bytes
    w.commit(NOW)
    assert old.crc is None
