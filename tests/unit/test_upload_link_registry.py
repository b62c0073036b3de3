"""The upload-link registry without HTTP: counting, reservations, scope, persistence."""

from __future__ import annotations

import pytest

from edge.errors import BadRequestError, ForbiddenError, InvalidInputError, NotFoundError, PayloadTooLargeError
from edge.uploadlinks import NOT_FOUND_TEXT, UploadLinkRegistry

NOW = 1_800_000_000.0


def make(tmp_path, **kw):
    reg = UploadLinkRegistry.open(tmp_path, clock=lambda: NOW)
    rec, secret = reg.create(bucket="b", entry="in", expire_at=int(NOW) + 60, creator="t", **kw)
    return reg, rec, secret


def test_reserve_counts_and_limits(tmp_path):
    reg, rec, secret = make(tmp_path, max_files=2, max_bytes=100)
    g1 = reg.reserve(secret, bucket="b", entry="in", length=60, filename="a", client="1.2.3.4")
    with pytest.raises(PayloadTooLargeError, match="at most 40 more bytes"):
        reg.reserve(secret, bucket="b", entry="in", length=41, filename="b", client="x")
    reg.reserve(secret, bucket="b", entry="in", length=40, filename="b", client="x")
    with pytest.raises(ForbiddenError, match="maximum of 2 files"):
        reg.reserve(secret, bucket="b", entry="in", length=0, filename="c", client="x")
    assert reg.get(rec.id).state(NOW) == "full"
    reg.release(g1)
    assert (reg.get(rec.id).files, reg.get(rec.id).bytes) == (1, 40)
    assert reg.statistics()["refused"] == 2


def test_scope_and_length(tmp_path):
    reg, _, secret = make(tmp_path)
    with pytest.raises(ForbiddenError):
        reg.reserve(secret, bucket="b", entry="other", length=1, filename="", client="")
    with pytest.raises(ForbiddenError):
        reg.reserve(secret, bucket="c", entry="in", length=1, filename="", client="")
    with pytest.raises(BadRequestError):
        reg.reserve(secret, bucket="b", entry="in", length=None, filename="", client="")


@pytest.mark.parametrize("secret", ["", "short", "x" * 43, "y" * 500, None])
def test_unknown_secrets_get_the_uniform_answer(tmp_path, secret):
    reg, _, _ = make(tmp_path)
    with pytest.raises(NotFoundError) as exc:
        reg.resolve(secret)
    assert exc.value.message == NOT_FOUND_TEXT


def test_revoked_and_expired_look_like_unknown(tmp_path):
    reg, rec, secret = make(tmp_path)
    with pytest.raises(NotFoundError, match=NOT_FOUND_TEXT):
        reg.resolve(secret, now=NOW + 61)
    reg.revoke(rec.id)
    with pytest.raises(NotFoundError, match=NOT_FOUND_TEXT):
        reg.resolve(secret)
    with pytest.raises(InvalidInputError):
        reg.update(rec.id, max_files=3)


def test_bind_limits_access_to_own_uploads(tmp_path):
    reg, _, secret = make(tmp_path)
    grant = reg.reserve(secret, bucket="b", entry="in", length=1, filename="a", client="")
    with pytest.raises(NotFoundError):
        reg.check_access(secret, "up-1")
    reg.bind(grant, "up-1")
    reg.check_access(secret, "up-1")
    with pytest.raises(NotFoundError):
        reg.check_access(secret, "up-2")


def test_persisted_without_the_secret(tmp_path):
    reg, rec, secret = make(tmp_path, max_files=5, note="n")
    reg.reserve(secret, bucket="b", entry="in", length=7, filename="f.txt", client="c")
    files = list((tmp_path / ".edge" / "upload_links").iterdir())
    assert [f.name for f in files] == [f"{rec.id}.json"]
    assert secret.encode() not in files[0].read_bytes()
    again = UploadLinkRegistry.open(tmp_path, clock=lambda: NOW)
    got = again.resolve(secret)
    assert (got.files, got.bytes, got.note, got.received[0].filename) == (1, 7, "n", "f.txt")


def test_leftover_tmp_files_are_removed_and_junk_reported(tmp_path):
    make(tmp_path)
    d = tmp_path / ".edge" / "upload_links"
    (d / "abcdefghijklmnopqrstuv.json.1.ab.tmp").write_bytes(b"{")
    (d / "ABCDEFGHIJKLMNOPQRSTUV.json").write_bytes(b"not json")
    reg = UploadLinkRegistry.open(tmp_path)
    assert not list(d.glob("*.tmp"))
    assert len(reg.list()) == 1 and reg.load_report


@pytest.mark.parametrize("kw", [{"max_files": 0}, {"max_bytes": -1}, {"max_files": True}, {"note": "x" * 501}])
def test_bad_limits(tmp_path, kw):
    reg = UploadLinkRegistry.open(tmp_path)
    with pytest.raises(InvalidInputError):
        reg.create(bucket="b", entry="e", expire_at=1, creator="t", **kw)
