"""edge.links.rules: state answers, counting rule, passwords, Range plans, file names."""

from __future__ import annotations

import email
import email.policy

import pytest

from edge.errors import InvalidInputError, NotFoundError, UnauthorizedError
from edge.links import rules as R

FAST = R.PasswordParams(n=2**4, r=1, p=1)
DATA = bytes(range(256)) * 4          # 1024 bytes


def test_state_answers():
    R.check_state(revoked=False, expire_at_s=100, now_s=100)        # the expiry second is valid
    with pytest.raises(InvalidInputError, match="^Query link has expired$"):
        R.check_state(revoked=False, expire_at_s=100, now_s=100.5)
    with pytest.raises(NotFoundError, match="^Link not found or has expired$"):
        R.check_state(revoked=True, expire_at_s=100, now_s=1)
    with pytest.raises(NotFoundError, match="^Link not found or has expired$"):   # revoked wins
        R.check_state(revoked=True, expire_at_s=1, now_s=100)
    assert R.link_not_found().message == R.UNIFORM_NOT_FOUND
    assert not R.is_used_up(5, None) and not R.is_used_up(1, 2) and R.is_used_up(2, 2)


def test_counting_rule():
    assert R.download_counts(partial=False, last_seen_s=99.0, now_s=100.0)     # full body always counts
    assert R.download_counts(partial=True, last_seen_s=None, now_s=100.0)      # new client counts
    assert not R.download_counts(partial=True, last_seen_s=99.0, now_s=100.0)  # seeking in a session
    assert R.download_counts(partial=True, last_seen_s=0.0, now_s=R.SESSION_WINDOW_S + 1)


def test_passwords():
    stored = R.hash_password("s3cret", FAST)
    assert "s3cret" not in repr(stored) and stored["alg"] == "scrypt" and stored["n"] == 16
    assert R.verify_password("s3cret", stored)
    assert not R.verify_password("s3cret ", stored) and not R.verify_password(None, stored)
    assert R.verify_password(None, None)
    assert R.hash_password("s3cret", FAST)["salt"] != stored["salt"]           # salted
    R.check_password("s3cret", stored)
    with pytest.raises(UnauthorizedError, match="^Password required$"):
        R.check_password(None, stored)
    with pytest.raises(UnauthorizedError, match="^Invalid password$"):
        R.check_password("nope", stored)
    with pytest.raises(UnauthorizedError):
        R.check_password("x" * 5000, stored)                # over the cap: refused, not hashed
    with pytest.raises(InvalidInputError):
        R.hash_password("x" * 5000, FAST)


def test_default_password_params_are_slow_enough():
    assert (R.PasswordParams().n, R.PasswordParams().r, R.PasswordParams().p) == (2**14, 8, 1)


@pytest.mark.parametrize("header", [None, "", "bytes", "bytes=", "bytes=abc", "bytes=5-3", "items=0-5",
                                    "bytes=-", "bytes=1-2-3", "bytes=0x10-", "bytes=１-2", "bytes=0-1;x"])
def test_absent_or_malformed_range_gives_full_body(header):
    plan = R.plan_range(header, len(DATA))
    assert plan.status == 200 and plan.headers == () and plan.apply(DATA) == DATA
    assert plan.content_length == len(DATA) and not plan.partial


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
    ("bytes=-5000", 0, 1023), ("bytes=10-99999", 10, 1023), ("Bytes = 5-5", 5, 5),
    ("bytes=0-0", 0, 0), ("bytes=, 3-4 ,", 3, 4), ("bytes=0-10,5-20", 0, 20), ("bytes=0-9,10-19", 0, 19),
    ("bytes=0-" + "0" * 5000 + "5", 0, 5),
])
def test_single_range(header, start, end):
    plan = R.plan_range(header, len(DATA))
    assert plan.status == 206
    assert plan.headers == (("Content-Range", f"bytes {start}-{end}/1024"),)
    assert plan.apply(DATA) == DATA[start:end + 1]
    assert plan.content_length == end - start + 1


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0", "bytes=" + "9" * 40 + "-"])
def test_unsatisfiable(header):
    plan = R.plan_range(header, len(DATA))
    assert plan.status == 416 and plan.headers == (("Content-Range", "bytes */1024"),)
    assert plan.content_length == 0 and plan.apply(DATA) == b""


def test_empty_representation():
    assert R.plan_range(None, 0).status == 200 and R.plan_range(None, 0).content_length == 0
    assert R.plan_range("bytes=0-", 0).status == 416
    assert R.plan_range("bytes=-5", 0).status == 416


def test_multipart():
    plan = R.plan_range("bytes=500-599, 0-9, -10", len(DATA), content_type="image/png", boundary="BND")
    assert plan.status == 206
    assert plan.headers == (("Content-Type", "multipart/byteranges; boundary=BND"),)
    body = plan.apply(DATA)
    assert len(body) == plan.content_length
    assert body.startswith(b"--BND\r\nContent-Type: image/png\r\nContent-Range: bytes 0-9/1024\r\n\r\n")
    assert body.endswith(b"\r\n--BND--\r\n")
    msg = email.message_from_bytes(b"Content-Type: multipart/byteranges; boundary=BND\r\n\r\n" + body,
                                   policy=email.policy.HTTP)
    parts = list(msg.iter_parts())
    assert [p["Content-Range"] for p in parts] == ["bytes 0-9/1024", "bytes 500-599/1024", "bytes 1014-1023/1024"]
    assert [p.get_payload(decode=True) for p in parts] == [DATA[0:10], DATA[500:600], DATA[1014:]]


def test_multipart_default_boundary_random_and_header_safe_type():
    a = R.plan_range("bytes=0-1,5-6", 10, content_type="text/plain\r\nX-Evil: 1")
    b = R.plan_range("bytes=0-1,5-6", 10)
    assert a.boundary != b.boundary
    assert b"\r\nX-Evil" not in a.apply(bytes(10))


def test_if_range_mismatch_and_too_many_ranges():
    assert R.plan_range("bytes=0-1", 10, honour=False).status == 200
    many = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 200, 2))
    assert R.plan_range(many, 1000).status == 200


def test_sanitize_filename():
    assert R.sanitize_filename("a/b/c.bin") == "c.bin"
    assert R.sanitize_filename("..\\..\\evil.txt") == "evil.txt"
    assert R.sanitize_filename('x"y\r\nSet-Cookie: a.bin') == "x_ySet-Cookie_ a.bin"
    assert R.sanitize_filename("..") == "download" and R.sanitize_filename("") == "download"
    assert R.sanitize_filename(".hidden") == "hidden"
    assert R.sanitize_filename("a\u202egnp.exe") == "agnp.exe"       # bidi override stripped
    long = R.sanitize_filename("x" * 500 + ".tar")
    assert len(long) == R.MAX_FILENAME_CHARS and long.endswith(".tar")


def test_content_disposition():
    assert R.content_disposition("data.bin") == 'attachment; filename="data.bin"'
    v = R.content_disposition("café/résumé €.txt")
    assert v == "attachment; filename=\"resume .txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.txt"
    assert "\r" not in R.content_disposition("a\r\nb") and "\n" not in R.content_disposition("a\r\nb")
    assert R.content_disposition("日本.bin").startswith('attachment; filename="')
