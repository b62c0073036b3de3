"""edge.durable: atomic replacement, directory fsync, OSError translation, registry loading."""

from __future__ import annotations

import errno
import os
import re

import pytest

from edge import durable
from edge.errors import DiskFullError, StorageIOError


def test_replace_file_is_private_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    durable.replace_file(path, b"one")
    durable.replace_file(path, b"two")
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_named_tmp_is_reused_and_mode_kept(tmp_path):
    path = tmp_path / "settings.json"
    tmp = path.with_name("settings.json.tmp")
    tmp.write_bytes(b"stale and longer than the new data")
    durable.replace_file(path, b"new", mode=0o644, tmp=tmp)
    assert path.read_bytes() == b"new" and not tmp.exists()
    assert path.stat().st_mode & 0o777 == 0o644


def test_fsync_order_file_then_rename_then_directory(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append(("replace",)) or real_replace(a, b))
    durable.replace_file(tmp_path / "x", b"data")
    assert calls == [("fsync", False), ("replace",), ("fsync", True)]


def test_failed_rename_removes_the_temp_file(tmp_path, monkeypatch):
    def boom(*a):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        durable.replace_file(tmp_path / "x", b"data")
    assert list(tmp_path.iterdir()) == []


def test_translate_texts():
    full = OSError(errno.ENOSPC, "No space left on device")
    quota = OSError(errno.EDQUOT, "Disk quota exceeded")
    io = OSError(errno.EIO, "Input/output error")
    assert isinstance(durable.translate(full), DiskFullError)
    assert durable.translate(quota).message == "Not enough free disk space"
    assert durable.translate(io).message == "Storage I/O error: [Errno 5] Input/output error"
    assert durable.translate(quota, "Cannot write link record").message == "No space left on device"
    err = durable.translate(io, "Cannot write link record")
    assert isinstance(err, StorageIOError) and err.message == "Cannot write link record: Input/output error"


def test_atomic_write_creates_private_folder_and_translates(tmp_path, monkeypatch):
    path = tmp_path / "reg" / "a.json"
    durable.atomic_write(path, b"{}", failure="Cannot write thing")
    assert path.parent.stat().st_mode & 0o777 == 0o700 and path.read_bytes() == b"{}"

    def full(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFullError, match="No space left on device"):
        durable.atomic_write(path, b"[]", failure="Cannot write thing")
    assert path.read_bytes() == b"{}" and [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_fsync_dir_tolerates_a_missing_folder(tmp_path):
    durable.fsync_dir(tmp_path / "gone")
    durable.fsync_dir(tmp_path)


def test_load_json_dir_skips_damage_and_removes_temp_files(tmp_path):
    (tmp_path / "aaaa.json").write_text('{"n": 1}')
    (tmp_path / "bbbb.json").write_text("{torn")
    (tmp_path / ".cccc.json.1f.tmp").write_text("{")
    (tmp_path / "x.json").write_text("{also torn")     # not a valid name: ignored, not reported
    (tmp_path / "notes.txt").write_text("ignored")
    skipped = []
    recs = list(durable.load_json_dir(tmp_path, lambda stem, d: (stem, d["n"]),
                                      lambda p, exc: skipped.append(p.name), names=re.compile(r"[a-z]{4}")))
    assert recs == [("aaaa", 1)]
    assert skipped == ["bbbb.json"]
    assert not list(tmp_path.glob("*.tmp"))
    assert list(durable.load_json_dir(tmp_path / "missing", lambda s, d: d, skipped.append)) == []


def test_make_dirs_fsyncs_the_parent_of_every_created_folder(tmp_path, monkeypatch):
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(p) or real(p))
    created = durable.make_dirs(tmp_path / "a" / "b" / "c", mode=0o700)
    assert created == [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]
    assert synced == [tmp_path, tmp_path / "a", tmp_path / "a" / "b"]
    assert (tmp_path / "a" / "b" / "c").is_dir()
    synced.clear()
    assert durable.make_dirs(tmp_path / "a" / "b" / "c") == [] and synced == []   # existing: no I/O


def test_make_dirs_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(OSError):
        durable.make_dirs(tmp_path / "f" / "sub")


def test_atomic_write_creates_missing_registry_folders_durably(tmp_path, monkeypatch):
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(p) or real(p))
    durable.atomic_write(tmp_path / ".edge" / "links" / "x.json", b"{}", failure="Cannot write")
    assert synced[:2] == [tmp_path, tmp_path / ".edge"]          # the new folders' names
    assert synced[-1] == tmp_path / ".edge" / "links"             # the file's name
