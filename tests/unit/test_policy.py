"""edge.auth.policy: policies as values, wildcard rules, exact 403 texts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from edge.auth.policy import Anonymous, Authenticated, FullAccess, Read, Write, bucket_matches
from edge.auth.tokens import Permissions, Token
from edge.errors import ForbiddenError, UnauthorizedError

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def tok(full=False, read=(), write=(), name="t"):
    return Token(name, created_at=NOW, permissions=Permissions(full, tuple(read), tuple(write)))


@pytest.mark.parametrize(
    "pattern, bucket, ok",
    [
        ("*", "anything", True),
        ("bucket-*", "bucket-1", True),
        ("bucket-*", "bucket-", True),
        ("bucket-*", "other", False),
        ("bucket-1", "bucket-1", True),
        ("bucket-1", "bucket-10", False),
        ("*", "$system", False),
        ("$sys*", "$system", False),
        ("$system", "$system", True),
        ("a*b", "a*b", True),  # only a trailing '*' is special
        ("a*b", "axb", False),
    ],
)
def test_bucket_matches(pattern, bucket, ok):
    assert bucket_matches(pattern, bucket) is ok


def test_policies_are_values():
    assert Read("a") == Read("a") and Read("a") != Write("a")
    assert hash(Read("a")) == hash(Read("a"))
    assert not Anonymous.needs_token and Authenticated().needs_token and Read("x").needs_token


def test_anonymous_and_authenticated():
    Anonymous().check(None)
    Authenticated().check(tok())
    with pytest.raises(UnauthorizedError):
        Authenticated().check(None)


def test_full_access_text():
    FullAccess().check(tok(full=True))
    with pytest.raises(ForbiddenError) as exc:
        FullAccess().check(tok(read=["*"], write=["*"], name="reader"))
    assert exc.value.message == "Token 'reader' doesn't have full access"


def test_read_and_write_texts():
    with pytest.raises(ForbiddenError) as exc:
        Read("b1").check(tok(name="w", write=["b1"]))
    assert exc.value.message == "Token 'w' doesn't have read access to bucket 'b1'"
    with pytest.raises(ForbiddenError) as exc:
        Write("b1").check(tok(name="r", read=["b1"]))
    assert exc.value.message == "Token 'r' doesn't have write access to bucket 'b1'"


def test_write_does_not_imply_read_and_vice_versa():
    writer, reader = tok(write=["*"]), tok(read=["*"])
    assert Write("x").allows(writer) and not Read("x").allows(writer)
    assert Read("x").allows(reader) and not Write("x").allows(reader)


def test_full_access_reaches_system_buckets_wildcards_do_not():
    assert Read("$system").allows(tok(full=True))
    assert not Read("$system").allows(tok(read=["*"]))
    assert Read("$system").allows(tok(read=["$system"]))
    assert not Write("$system").allows(tok(write=["*"]))
