"""edge.auth.tokens: secrets, hashing, time, lifetime, IP allow-list, create body, wire shape."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from edge.auth.tokens import (
    Permissions,
    Token,
    TokenSpec,
    check_client_ip,
    check_lifetime,
    disabled_token,
    format_rfc3339,
    generate_secret,
    hash_secret,
    ip_allowed,
    is_expired,
    parse_create_body,
    parse_rfc3339,
    secret_to_wire,
    token_to_wire,
    validate_spec,
    verify_secret,
)
from edge.errors import InvalidInputError, UnauthorizedError

NOW = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_generated_secret_is_name_dash_32_lowercase_hex():
    value = generate_secret("token-1")
    assert re.fullmatch(r"token-1-[0-9a-f]{32}", value)
    assert generate_secret("token-1") != value


def test_hash_has_reductstore_format_and_verifies():
    stored = hash_secret("s3cret")
    scheme, salt, digest = stored.split(":")
    assert scheme == "sha256" and re.fullmatch(r"[0-9a-f]{32}", salt) and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3creT", stored)
    assert not verify_secret("", stored)


def test_same_secret_gets_different_salts():
    assert hash_secret("x") != hash_secret("x")


def test_plain_legacy_secret_verifies_but_empty_never_matches():
    assert verify_secret("abc", "abc")
    assert not verify_secret("abd", "abc")
    assert not verify_secret("", "")
    assert not verify_secret("x", "sha256:zz:00")
    assert not verify_secret("x", "sha256:only-two")


def test_rfc3339_format_and_parse_round_trip():
    assert format_rfc3339(NOW) == "2026-05-01T10:00:00.123456Z"
    assert format_rfc3339(NOW.replace(microsecond=0)) == "2026-05-01T10:00:00Z"
    assert parse_rfc3339(format_rfc3339(NOW)) == NOW


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-05-01T12:00:00+02:00", datetime(2026, 5, 1, 10, tzinfo=timezone.utc)),
        ("2026-05-01t10:00:00z", datetime(2026, 5, 1, 10, tzinfo=timezone.utc)),
        ("2026-05-01T10:00:00.123456789Z", datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2026-05-01T10:00:00.5Z", datetime(2026, 5, 1, 10, 0, 0, 500000, tzinfo=timezone.utc)),
    ],
)
def test_rfc3339_parse_variants(text, expected):
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize("text", ["2026-05-01T10:00:00", "2026-05-01", "2026-13-01T00:00:00Z", "yesterday", ""])
def test_rfc3339_rejects_naive_and_garbage(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


# --- lifetime ----------------------------------------------------------------------------------


def test_expired_at_and_after_expires_at():
    t = Token("t", created_at=NOW, expires_at=NOW + timedelta(seconds=10))
    assert not is_expired(t, NOW + timedelta(seconds=9))
    assert is_expired(t, NOW + timedelta(seconds=10))
    with pytest.raises(UnauthorizedError, match="^Token has expired$"):
        check_lifetime(t, NOW + timedelta(seconds=11))


def test_ttl_counts_inactivity_from_creation_or_last_access():
    t = Token("t", created_at=NOW, ttl_s=60)
    assert not is_expired(t, NOW + timedelta(seconds=60))
    assert is_expired(t, NOW + timedelta(seconds=61))
    used = Token("t", created_at=NOW, ttl_s=60, last_access=NOW + timedelta(seconds=50))
    assert not is_expired(used, NOW + timedelta(seconds=100))
    assert is_expired(used, NOW + timedelta(seconds=111))


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError):
        is_expired(Token("t", created_at=NOW), datetime(2026, 1, 1))


# --- IP allow-list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "allowlist, ip, ok",
    [
        ((), "1.2.3.4", True),
        (("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), "127.0.0.2", False),
        (("10.0.0.0/8",), "10.200.3.4", True),
        (("10.0.0.0/8",), "11.0.0.1", False),
        (("10.0.0.1/8",), "10.9.9.9", True),  # host bits set: still the /8
        (("2001:db8::/32",), "2001:db8:1::5", True),
        (("2001:db8::/32",), "2001:db9::1", False),
        (("::1",), "::1", True),
        (("127.0.0.1",), "::ffff:127.0.0.1", True),  # dual-stack socket form
        (("10.0.0.0/8",), "::ffff:10.1.1.1", True),
        (("::/0",), "1.2.3.4", False),  # families never cross
        (("bogus", "1.2.3.4"), "1.2.3.4", True),
        (("1.2.3.4",), "not-an-ip", False),
    ],
)
def test_ip_allowed(allowlist, ip, ok):
    assert ip_allowed(allowlist, ip) is ok


def test_client_ip_errors_have_exact_texts():
    t = Token("t", created_at=NOW, ip_allowlist=("192.168.1.0/24",))
    check_client_ip(t, "192.168.1.7")
    with pytest.raises(UnauthorizedError, match=r"^Token is not allowed for client IP 10\.0\.0\.1$"):
        check_client_ip(t, "10.0.0.1")
    with pytest.raises(UnauthorizedError, match="^Client IP is required for this token$"):
        check_client_ip(t, None)
    check_client_ip(Token("u", created_at=NOW), None)  # unrestricted tokens need no IP


# --- create body -------------------------------------------------------------------------------


def test_v2_body():
    spec = parse_create_body({
        "permissions": {"full_access": False, "read": ["a"], "write": ["b-*"]},
        "expires_at": "2030-01-01T00:00:00Z", "ttl": 3600, "ip_allowlist": ["10.0.0.0/8"],
    })
    assert spec == TokenSpec(Permissions(False, ("a",), ("b-*",)),
                             datetime(2030, 1, 1, tzinfo=timezone.utc), 3600, ("10.0.0.0/8",))


def test_v2_body_nulls_are_absent():
    spec = parse_create_body({"permissions": {"full_access": True, "read": None},
                              "expires_at": None, "ttl": None, "ip_allowlist": None})
    assert spec == TokenSpec(Permissions(True, (), ()))


def test_v1_body_and_empty_body():
    assert parse_create_body({"full_access": True, "read": ["x"]}) == TokenSpec(Permissions(True, ("x",), ()))
    assert parse_create_body({}) == TokenSpec()


@pytest.mark.parametrize(
    "body",
    [
        None, [], "x", 3,
        {"permissions": {}, "extra": 1},                   # v2 unknown key
        {"full_access": True, "bogus": 1},                 # v1 unknown key
        {"permissions": {"full_access": True, "admin": True}},
        {"permissions": []},
        {"full_access": "yes"},
        {"read": "bucket"},
        {"read": [1]},
        {"permissions": {}, "ttl": -1},
        {"permissions": {}, "ttl": 1.5},
        {"permissions": {}, "ttl": True},
        {"permissions": {}, "expires_at": "2030-01-01T00:00:00"},  # naive
        {"permissions": {}, "expires_at": 1893456000},
        {"full_access": True, "ttl": 5},                   # mixes the shapes
    ],
)
def test_bad_bodies_are_invalid_body(body):
    with pytest.raises(InvalidInputError, match="^Invalid body$"):
        parse_create_body(body)


def test_permission_syntax_text():
    with pytest.raises(InvalidInputError) as exc:
        validate_spec(TokenSpec(Permissions(False, ("ok", "bad name!"), ())), NOW)
    assert exc.value.message == "Permission can contain only bucket names or wildcard '*', got 'bad name!'"


def test_dollar_names_skip_syntax_check():
    validate_spec(TokenSpec(Permissions(False, ("$system",), ("*", "a_b-C9*"))), NOW)


def test_ttl_zero_and_past_expiry_texts():
    with pytest.raises(InvalidInputError, match="^Token TTL must be greater than zero$"):
        validate_spec(TokenSpec(ttl_s=0), NOW)
    with pytest.raises(InvalidInputError, match="^Token expiration date must not be in the past$"):
        validate_spec(TokenSpec(expires_at=NOW - timedelta(seconds=1)), NOW)


def test_validation_order_permission_then_ttl_then_expiry():
    spec = TokenSpec(Permissions(False, ("b a d",), ()), NOW - timedelta(days=1), 0)
    with pytest.raises(InvalidInputError, match="^Permission can contain"):
        validate_spec(spec, NOW)
    spec = TokenSpec(Permissions(), NOW - timedelta(days=1), 0)
    with pytest.raises(InvalidInputError, match="^Token TTL"):
        validate_spec(spec, NOW)


def test_bad_allowlist_entry_rejected():
    with pytest.raises(InvalidInputError, match="ip_allowlist: '300.1.1.1'"):
        validate_spec(TokenSpec(ip_allowlist=("300.1.1.1",)), NOW)


# --- wire --------------------------------------------------------------------------------------


def test_wire_shape_has_exactly_ten_keys_and_blank_value():
    t = Token("my-token", created_at=NOW, permissions=Permissions(False, ("bucket-1",), ("bucket-*",)),
              secret_hash=hash_secret("secret"))
    wire = token_to_wire(t, NOW)
    assert wire == {
        "name": "my-token", "value": "", "created_at": "2026-05-01T10:00:00.123456Z",
        "permissions": {"full_access": False, "read": ["bucket-1"], "write": ["bucket-*"]},
        "is_provisioned": False, "expires_at": None, "ttl": None, "last_access": None,
        "ip_allowlist": [], "is_expired": False,
    }
    assert "sha256" not in repr(wire) and "sha256" not in repr(t)


def test_wire_is_expired_and_times():
    t = Token("t", created_at=NOW, expires_at=NOW + timedelta(hours=1), ttl_s=10,
              last_access=NOW, ip_allowlist=("::1",))
    wire = token_to_wire(t, NOW + timedelta(hours=2))
    assert wire["is_expired"] is True
    assert wire["expires_at"] == "2026-05-01T11:00:00.123456Z"
    assert wire["ttl"] == 10 and wire["last_access"] == "2026-05-01T10:00:00.123456Z"
    assert wire["ip_allowlist"] == ["::1"]


def test_secret_to_wire_and_disabled_token():
    assert secret_to_wire("t-abc", NOW) == {"value": "t-abc", "created_at": "2026-05-01T10:00:00.123456Z"}
    d = token_to_wire(disabled_token(NOW), NOW)
    assert d["name"] == "AUTHENTICATION-DISABLED" and d["value"] == ""
    assert d["permissions"] == {"full_access": True, "read": [], "write": []}
