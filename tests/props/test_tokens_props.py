"""Property tests: the permission matcher against a reference model; hashing round trips."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.auth.policy import Read, Write, bucket_matches
from edge.auth.tokens import (
    Permissions,
    Token,
    format_rfc3339,
    hash_secret,
    parse_rfc3339,
    verify_secret,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

_chars = st.sampled_from("ab-_*$")
names = st.text(_chars, min_size=1, max_size=6)
buckets = st.one_of(names, st.sampled_from(["$system", "$audit", "a", "ab", "a-b", "*"]))
patterns = st.one_of(names, st.sampled_from(["*", "a*", "$system", "$*", "a*b"]))


def reference_match(pattern: str, bucket: str) -> bool:
    """The spec's words, written out independently of the implementation."""
    if pattern == bucket:
        return True
    if bucket[:1] == "$":
        return False
    if pattern[-1:] == "*":
        prefix = pattern[: len(pattern) - 1]
        return bucket[: len(prefix)] == prefix
    return False


@given(patterns, buckets)
def test_matcher_agrees_with_reference(pattern, bucket):
    assert bucket_matches(pattern, bucket) == reference_match(pattern, bucket)


@given(st.lists(patterns, max_size=5), st.lists(patterns, max_size=5), buckets, st.booleans())
def test_read_write_policies_agree_with_reference(read, write, bucket, full):
    token = Token("t", created_at=NOW, permissions=Permissions(full, tuple(read), tuple(write)))
    assert Read(bucket).allows(token) == (full or any(reference_match(p, bucket) for p in read))
    assert Write(bucket).allows(token) == (full or any(reference_match(p, bucket) for p in write))


@given(st.lists(patterns, max_size=5), st.text(min_size=1).map(lambda s: "$" + s))
def test_system_buckets_only_by_exact_name(read, bucket):
    token = Token("t", created_at=NOW, permissions=Permissions(False, tuple(read), ()))
    assert Read(bucket).allows(token) == (bucket in read)


@settings(max_examples=200)
@given(st.text(max_size=64), st.binary(min_size=16, max_size=16))
def test_hash_round_trip(secret, salt):
    assert verify_secret(secret, hash_secret(secret, salt=salt))


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=64), st.data())
def test_any_altered_secret_fails(secret, data):
    stored = hash_secret(secret)
    i = data.draw(st.integers(0, len(secret) - 1))
    op = data.draw(st.sampled_from(["replace", "drop", "insert"]))
    ch = data.draw(st.characters())
    if op == "replace":
        altered = secret[:i] + ch + secret[i + 1:]
    elif op == "drop":
        altered = secret[:i] + secret[i + 1:]
    else:
        altered = secret[:i] + ch + secret[i:]
    if altered != secret:
        assert not verify_secret(altered, stored)


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.just(timezone.utc)))
def test_rfc3339_round_trip(value):
    assert parse_rfc3339(format_rfc3339(value)) == value
