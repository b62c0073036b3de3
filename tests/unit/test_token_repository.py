"""edge.auth.repository: token API, authentication order, persistence, provisioning."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from edge.auth.repository import TokenRepository
from edge.auth.tokens import parse_rfc3339
from edge.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StorageIOError,
    UnauthorizedError,
)

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
INIT = "init-secret-value"


@pytest.fixture
def repo(tmp_path):
    r = TokenRepository.open(tmp_path)
    r.provision({"RS_API_TOKEN": INIT}, NOW)
    return r


def bearer(secret):
    return f"Bearer {secret}"


def tokens_file(tmp_path):
    return tmp_path / ".edge" / "tokens.json"


# --- create ------------------------------------------------------------------------------------


def test_create_returns_value_and_created_at(repo):
    value, created_at = repo.create("token-1", {"permissions": {"read": ["b"]}}, NOW)
    assert value.startswith("token-1-") and len(value) == len("token-1-") + 32
    assert created_at == NOW
    t = repo.get("token-1")
    assert t.permissions.read == ("b",) and t.last_access is None and not t.is_provisioned


def test_create_accepts_raw_json_bytes(repo):
    repo.create("raw", b'{"full_access": true}', NOW)
    assert repo.get("raw").permissions.full_access
    with pytest.raises(InvalidInputError, match="^Invalid body$"):
        repo.create("raw2", b"{not json", NOW)
    with pytest.raises(InvalidInputError, match="^Invalid body$"):
        repo.create("raw3", b"", NOW)


def test_create_error_texts_in_order(repo):
    past = "2020-01-01T00:00:00Z"
    bad_everything = {"permissions": {"read": ["no spaces"]}, "ttl": 0, "expires_at": past}
    with pytest.raises(InvalidInputError, match="^Token name can't be empty$"):
        repo.create("", bad_everything, NOW)
    with pytest.raises(AlreadyExistsError, match="^Token 'init-token' already exists$"):
        repo.create("init-token", bad_everything, NOW)
    with pytest.raises(InvalidInputError) as exc:
        repo.create("t", bad_everything, NOW)
    assert exc.value.message == "Permission can contain only bucket names or wildcard '*', got 'no spaces'"
    with pytest.raises(InvalidInputError, match="^Token TTL must be greater than zero$"):
        repo.create("t", {"permissions": {}, "ttl": 0, "expires_at": past}, NOW)
    with pytest.raises(InvalidInputError, match="^Token expiration date must not be in the past$"):
        repo.create("t", {"permissions": {}, "expires_at": past}, NOW)
    with pytest.raises(InvalidInputError, match="^Invalid body$"):
        repo.create("t", {"permissions": {}, "expires_at": "2030-01-01T00:00:00"}, NOW)  # naive
    assert [t.name for t in repo.list()] == ["init-token"]


# --- authenticate (§2.2 order) -----------------------------------------------------------------


def test_authenticate_header_rules(repo):
    for header in (None, "", "bearer " + INIT, "Basic xyz", "Bearer" + INIT, "Token " + INIT):
        with pytest.raises(UnauthorizedError, match="^No bearer token in request header$"):
            repo.authenticate(header, "1.2.3.4", NOW)
    for header in ("Bearer ", "Bearer wrong", "Bearer  " + INIT):
        with pytest.raises(UnauthorizedError, match="^Invalid token$"):
            repo.authenticate(header, "1.2.3.4", NOW)
    t = repo.authenticate(bearer(INIT), "1.2.3.4", NOW)
    assert t.name == "init-token" and t.permissions.full_access and t.last_access == NOW


def test_expiry_by_expires_at_and_by_ttl(repo):
    soon = (NOW + timedelta(seconds=10)).isoformat()
    v1, _ = repo.create("abs", {"permissions": {}, "expires_at": soon}, NOW)
    v2, _ = repo.create("ttl", {"permissions": {}, "ttl": 60}, NOW)
    repo.authenticate(bearer(v1), None, NOW + timedelta(seconds=9))
    with pytest.raises(UnauthorizedError, match="^Token has expired$"):
        repo.authenticate(bearer(v1), None, NOW + timedelta(seconds=10))
    # Using a ttl token keeps it alive; inactivity longer than ttl expires it.
    repo.authenticate(bearer(v2), None, NOW + timedelta(seconds=50))
    repo.authenticate(bearer(v2), None, NOW + timedelta(seconds=100))
    with pytest.raises(UnauthorizedError, match="^Token has expired$"):
        repo.authenticate(bearer(v2), None, NOW + timedelta(seconds=161))


def test_expired_is_checked_before_ip(repo):
    v, _ = repo.create("both", {"permissions": {}, "ttl": 1, "ip_allowlist": ["10.0.0.1"]}, NOW)
    with pytest.raises(UnauthorizedError, match="^Token has expired$"):
        repo.authenticate(bearer(v), "9.9.9.9", NOW + timedelta(seconds=5))


def test_ip_allowlist(repo):
    v, _ = repo.create("ip", {"permissions": {}, "ip_allowlist": ["10.0.0.0/8", "::1"]}, NOW)
    repo.authenticate(bearer(v), "10.1.2.3", NOW)
    repo.authenticate(bearer(v), "::1", NOW)
    with pytest.raises(UnauthorizedError, match="^Token is not allowed for client IP 11.0.0.1$"):
        repo.authenticate(bearer(v), "11.0.0.1", NOW)
    with pytest.raises(UnauthorizedError, match="^Client IP is required for this token$"):
        repo.authenticate(bearer(v), None, NOW)


# --- get / list / rotate / remove --------------------------------------------------------------


def test_get_missing_and_list_sorted(repo):
    with pytest.raises(NotFoundError, match="^Token 'nope' doesn't exist$"):
        repo.get("nope")
    repo.create("b", {}, NOW)
    repo.create("a", {}, NOW)
    assert [t.name for t in repo.list()] == ["a", "b", "init-token"]


def test_rotate_invalidates_old_secret_at_once(repo):
    old, _ = repo.create("rot", {}, NOW)
    repo.authenticate(bearer(old), None, NOW)  # now in the fingerprint index
    later = NOW + timedelta(seconds=5)
    new, created_at = repo.rotate("rot", later)
    assert new != old and new.startswith("rot-") and created_at == later
    assert repo.get("rot").created_at == later and repo.get("rot").last_access == later
    with pytest.raises(UnauthorizedError, match="^Invalid token$"):
        repo.authenticate(bearer(old), None, later)
    assert repo.authenticate(bearer(new), None, later).name == "rot"


def test_rotate_errors(repo):
    with pytest.raises(NotFoundError, match="^Token 'x' doesn't exist$"):
        repo.rotate("x", NOW)
    with pytest.raises(ConflictError, match="^Can't rotate provisioned token 'init-token'$"):
        repo.rotate("init-token", NOW)
    repo.create("short", {"permissions": {}, "ttl": 1}, NOW)
    with pytest.raises(InvalidInputError, match="^Can't rotate expired token 'short'$"):
        repo.rotate("short", NOW + timedelta(seconds=2))


def test_remove_rules(repo, tmp_path):
    with pytest.raises(NotFoundError, match="^Token 'x' doesn't exist$"):
        repo.remove("x")
    with pytest.raises(ConflictError, match="^Can't remove provisioned token 'init-token'$"):
        repo.remove("init-token")
    v, _ = repo.create("gone", {}, NOW)
    repo.authenticate(bearer(v), None, NOW)
    repo.remove("gone")
    with pytest.raises(UnauthorizedError, match="^Invalid token$"):
        repo.authenticate(bearer(v), None, NOW)
    # Unprovisioned, last full-access token:
    r2 = TokenRepository.open(tmp_path / "other")
    r2.provision({"RS_INIT_API_TOKEN": "first"}, NOW)
    assert not r2.get("init-token").is_provisioned
    with pytest.raises(ConflictError) as exc:
        r2.remove("init-token")
    assert exc.value.message == "Can't remove token 'init-token': at least one full-access token must remain"
    r2.create("admin2", {"full_access": True}, NOW)
    r2.remove("init-token")


# --- bucket events -----------------------------------------------------------------------------


def test_bucket_removed_and_renamed_update_exact_names_only(repo):
    repo.create("t", {"read": ["a", "a*", "b"], "write": ["a", "c"]}, NOW)
    repo.on_bucket_removed("a")
    p = repo.get("t").permissions
    assert p.read == ("a*", "b") and p.write == ("c",)
    repo.on_bucket_renamed("b", "bb")
    assert repo.get("t").permissions.read == ("a*", "bb")


# --- persistence -------------------------------------------------------------------------------


def test_reopen_keeps_tokens_and_secrets_still_work(repo, tmp_path):
    v, _ = repo.create("keep", {"permissions": {"write": ["x"]}, "ttl": 3600, "ip_allowlist": ["::1"]}, NOW)
    repo.authenticate(bearer(v), "::1", NOW + timedelta(seconds=1))
    repo.save_access_times()
    again = TokenRepository.open(tmp_path)
    t = again.get("keep")
    assert t == repo.get("keep")
    assert again.authenticate(bearer(v), "::1", NOW + timedelta(seconds=2)).name == "keep"
    assert again.authenticate(bearer(INIT), None, NOW).name == "init-token"


def test_file_never_contains_a_secret_in_clear(repo, tmp_path):
    v, _ = repo.create("secretive", {}, NOW)
    v2, _ = repo.rotate("secretive", NOW)
    raw = tokens_file(tmp_path).read_text()
    for secret in (v, v2, INIT, v.split("-")[-1], v2.split("-")[-1]):
        assert secret not in raw
    assert "sha256:" in raw
    assert oct(tokens_file(tmp_path).stat().st_mode & 0o777) == "0o600"


def test_plain_legacy_secret_is_migrated_on_open(tmp_path):
    path = tokens_file(tmp_path)
    path.parent.mkdir(parents=True)
    rec = {"name": "old", "value": "plain-legacy-secret", "created_at": "2025-01-01T00:00:00Z",
           "permissions": {"full_access": True, "read": [], "write": []}}
    path.write_text(json.dumps({"version": 1, "tokens": [rec]}))
    r = TokenRepository.open(tmp_path)
    assert "plain-legacy-secret" not in path.read_text()
    assert r.authenticate(bearer("plain-legacy-secret"), None, NOW).name == "old"


def test_stale_tmp_file_from_a_crash_is_ignored(repo, tmp_path):
    v, _ = repo.create("durable", {}, NOW)
    tmp = tokens_file(tmp_path).with_name("tokens.json.tmp")
    tmp.write_text('{"version": 1, "tokens": [{"name": "half')  # torn write of a later save
    again = TokenRepository.open(tmp_path)
    assert again.authenticate(bearer(v), None, NOW).name == "durable"
    again.create("next", {}, NOW)  # the next save overwrites the stale tmp
    assert not tmp.exists()
    assert {t.name for t in TokenRepository.open(tmp_path).list()} == {"durable", "init-token", "next"}


def test_failed_write_leaves_memory_unchanged(repo, tmp_path, monkeypatch):
    import edge.auth.repository as mod

    def boom(path, data):
        raise OSError("disk on fire")

    monkeypatch.setattr(mod, "_atomic_write", boom)
    with pytest.raises(OSError):
        repo.create("never", {}, NOW)
    with pytest.raises(NotFoundError):
        repo.get("never")


def test_corrupt_file_is_set_aside_and_only_configured_tokens_work(tmp_path):
    path = tokens_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{garbage")
    repo = TokenRepository.open(tmp_path)
    assert repo.damage is not None and repo.damage.kept_as.read_text() == "{garbage"
    assert not path.exists()
    repo.provision({"RS_API_TOKEN": INIT}, NOW)
    assert repo.authenticate(f"Bearer {INIT}", None, NOW).name == "init-token"
    with pytest.raises(StorageIOError, match="damaged"):
        repo.create("new", {}, NOW)                    # read-only until repaired
    assert not path.exists()                           # nothing written over the evidence
    again = TokenRepository.open(tmp_path)             # next start: still damaged, not a fresh empty file
    assert again.damage is not None and again.list() == []


def test_flipped_byte_in_a_sealed_file_is_detected(tmp_path):
    repo = TokenRepository.open(tmp_path)
    repo.provision({"RS_API_TOKEN": INIT}, NOW)
    secret, _ = repo.create("reader", {"permissions": {"read": ["b"]}}, NOW)
    raw = bytearray(tokens_file(tmp_path).read_bytes())
    assert raw.startswith(b"edge-state 1 ")
    raw[len(raw) // 2] ^= 0x01                          # still JSON, but not the bytes we wrote
    tokens_file(tmp_path).write_bytes(bytes(raw))
    damaged = TokenRepository.open(tmp_path)
    damaged.provision({"RS_API_TOKEN": INIT}, NOW)
    assert damaged.damage is not None
    with pytest.raises(UnauthorizedError):
        damaged.authenticate(f"Bearer {secret}", None, NOW)
    assert damaged.authenticate(f"Bearer {INIT}", None, NOW).permissions.full_access


def test_file_of_the_previous_version_loads_and_gains_a_checksum(tmp_path):
    repo = TokenRepository.open(tmp_path)
    repo.provision({"RS_API_TOKEN": INIT}, NOW)
    secret, _ = repo.create("reader", {"permissions": {"read": ["b"]}}, NOW)
    sealed = tokens_file(tmp_path).read_bytes()
    tokens_file(tmp_path).write_bytes(sealed.split(b"\n", 1)[1])   # what the previous version wrote
    old = TokenRepository.open(tmp_path)
    assert old.damage is None and old.authenticate(f"Bearer {secret}", None, NOW).name == "reader"
    assert tokens_file(tmp_path).read_bytes().startswith(b"edge-state 1 ")


# --- provisioning ------------------------------------------------------------------------------


def test_provision_env_tokens(tmp_path):
    r = TokenRepository.open(tmp_path)
    env = {
        "RS_API_TOKEN": INIT,
        "RS_TOKEN_A_NAME": "reader", "RS_TOKEN_A_VALUE": "reader-secret",
        "RS_TOKEN_A_READ": "b1, b2*", "RS_TOKEN_A_WRITE": "",
        "RS_TOKEN_MY_ID_NAME": "admin", "RS_TOKEN_MY_ID_VALUE": "admin-secret",
        "RS_TOKEN_MY_ID_FULL_ACCESS": "true", "RS_TOKEN_MY_ID_EXPIRES_AT": "2030-01-01T00:00:00Z",
        "RS_TOKEN_NOVAL_NAME": "dropped",
    }
    lines = r.provision(env, NOW)
    assert all("secret" not in line for line in lines)
    assert [t.name for t in r.list()] == ["admin", "init-token", "reader"]
    reader = r.authenticate(bearer("reader-secret"), None, NOW)
    assert reader.is_provisioned and reader.permissions.read == ("b1", "b2*")
    admin = r.get("admin")
    assert admin.permissions.full_access and admin.expires_at == parse_rfc3339("2030-01-01T00:00:00Z")
    with pytest.raises(ConflictError, match="^Can't remove provisioned token 'reader'$"):
        r.remove("reader")
    raw = tokens_file(tmp_path).read_text()
    assert "reader-secret" not in raw and "admin-secret" not in raw and INIT not in raw


def test_unconfigured_tokens_lose_the_provisioned_flag(tmp_path):
    r = TokenRepository.open(tmp_path)
    r.provision({"RS_API_TOKEN": INIT, "RS_TOKEN_A_NAME": "x", "RS_TOKEN_A_VALUE": "xs"}, NOW)
    r2 = TokenRepository.open(tmp_path)
    r2.provision({"RS_TOKEN_A_NAME": "x", "RS_TOKEN_A_VALUE": "xs"}, NOW + timedelta(days=1))
    assert not r2.get("init-token").is_provisioned
    assert r2.get("x").is_provisioned and r2.get("x").created_at == NOW  # same secret: kept
    assert r2.authenticate(bearer(INIT), None, NOW).name == "init-token"


def test_changed_api_token_replaces_the_secret(tmp_path):
    TokenRepository.open(tmp_path).provision({"RS_API_TOKEN": "one"}, NOW)
    r = TokenRepository.open(tmp_path)
    r.provision({"RS_API_TOKEN": "two"}, NOW)
    with pytest.raises(UnauthorizedError, match="^Invalid token$"):
        r.authenticate(bearer("one"), None, NOW)
    assert r.authenticate(bearer("two"), None, NOW).name == "init-token"


def test_init_api_token_is_created_once_and_not_provisioned(tmp_path):
    r = TokenRepository.open(tmp_path)
    r.provision({"RS_INIT_API_TOKEN": "first"}, NOW)
    new, _ = r.rotate("init-token", NOW)
    r2 = TokenRepository.open(tmp_path)
    r2.provision({"RS_INIT_API_TOKEN": "first"}, NOW)  # exists already: untouched
    with pytest.raises(UnauthorizedError):
        r2.authenticate(bearer("first"), None, NOW)
    assert r2.authenticate(bearer(new), None, NOW).name == "init-token"


@pytest.mark.parametrize(
    "env, var",
    [
        ({"RS_TOKEN_A_NAME": "a", "RS_TOKEN_A_VALUE": "v", "RS_TOKEN_A_FULL_ACCESS": "maybe"}, "RS_TOKEN_A_FULL_ACCESS"),
        ({"RS_TOKEN_A_NAME": "a", "RS_TOKEN_A_VALUE": "v", "RS_TOKEN_A_EXPIRES_AT": "soon"}, "RS_TOKEN_A_EXPIRES_AT"),
        ({"RS_TOKEN_A_NAME": "a", "RS_TOKEN_A_VALUE": "v", "RS_TOKEN_A_READ": "bad name"}, "RS_TOKEN_A_"),
    ],
)
def test_bad_provisioning_values_name_the_variable(tmp_path, env, var):
    with pytest.raises(ConfigError, match=var):
        TokenRepository.open(tmp_path).provision(env, NOW)


# --- auth disabled (§2.1) ----------------------------------------------------------------------


def test_auth_disabled_mode(tmp_path):
    r = TokenRepository.open(tmp_path, auth_enabled=False)
    t = r.authenticate(None, None, NOW)
    assert t.name == "AUTHENTICATION-DISABLED" and t.permissions.full_access
    assert r.authenticate("Bearer whatever", "1.1.1.1", NOW).name == "AUTHENTICATION-DISABLED"
    assert r.list() == []
    for call in (lambda: r.create("t", {}, NOW), lambda: r.get("t"), lambda: r.rotate("t", NOW)):
        with pytest.raises(BadRequestError, match="^Authentication is disabled$"):
            call()
    r.remove("anything")  # 200 upstream


def test_many_bad_tokens_are_cheap_and_bounded(repo):
    # A repeated bad secret is answered from the negative cache after the first scan.
    for _ in range(3):
        with pytest.raises(UnauthorizedError):
            repo.authenticate("Bearer nope", None, NOW)
    assert len(repo._bad_fps) == 1
    for i in range(5000):
        with pytest.raises(UnauthorizedError):
            repo.authenticate(f"Bearer bad-{i}", None, NOW)
    assert len(repo._bad_fps) <= 4096
    assert os.path.exists(repo.path)


def test_damaged_file_keeps_the_generated_device_token_working(tmp_path):
    from edge.auth import device_token

    repo = TokenRepository.open(tmp_path)
    secret_file = device_token.ensure(repo, tmp_path, NOW)
    secret = secret_file.read_text().strip()
    raw = bytearray(tokens_file(tmp_path).read_bytes())
    raw[-3] ^= 0x04
    tokens_file(tmp_path).write_bytes(bytes(raw))
    damaged = TokenRepository.open(tmp_path)
    assert damaged.damage is not None
    assert device_token.ensure(damaged, tmp_path, NOW) is None        # no new secret: the operator's one
    assert secret_file.read_text().strip() == secret
    assert damaged.authenticate(f"Bearer {secret}", None, NOW).permissions.full_access
    assert not tokens_file(tmp_path).exists()                         # nothing written over the evidence
