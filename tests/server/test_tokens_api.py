"""The token API over HTTP (spec §2, §4): CRUD, rotation, the exact error texts, lifetime and IP
rules, persistence across a restart, secrets never at rest in clear, bad-token throttling, and
the auth-disabled answers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.helpers import EdgeProcess, token_auth

INIT = "tokens-init-secret"
TOKEN_KEYS = {"name", "value", "created_at", "permissions", "is_provisioned", "expires_at", "ttl",
              "last_access", "ip_allowlist", "is_expired"}


def auth(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


def err(r: requests.Response) -> tuple[int, str | None]:
    return r.status_code, r.headers.get("x-reduct-error")


class Api:
    """Thin requests wrapper with the init token by default."""

    def __init__(self, proc: EdgeProcess, secret: str = INIT):
        self.proc, self.secret = proc, secret

    def __call__(self, method: str, path: str, secret: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        headers.update(auth(self.secret if secret is None else secret))
        return requests.request(method, f"{self.proc.api}/{path}", headers=headers, timeout=10, **kw)


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    proc = EdgeProcess(tmp_path_factory.mktemp("tokens") / "data", auth=token_auth(INIT)).start()
    yield Api(proc)
    proc.stop()


def create(api: Api, name: str, body) -> str:
    r = api("POST", f"tokens/{name}", json=body)
    assert r.status_code == 200, err(r)
    return r.json()["value"]


# --- CRUD -------------------------------------------------------------------------------------


def test_create_get_list_remove(edge):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    r = edge("POST", "tokens/crud-1", json={"permissions": {"full_access": False, "read": ["b-*"],
                                                            "write": ["b-1"]}})
    assert r.status_code == 200, err(r)
    doc = r.json()
    assert set(doc) == {"value", "created_at"}
    assert doc["value"].startswith("crud-1-") and len(doc["value"]) == len("crud-1-") + 32
    created = datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
    assert before <= created <= datetime.now(timezone.utc) + timedelta(seconds=1)

    r = edge("GET", "tokens/crud-1")
    assert r.status_code == 200
    assert r.json() == {
        "name": "crud-1", "value": "", "created_at": doc["created_at"],
        "permissions": {"full_access": False, "read": ["b-*"], "write": ["b-1"]},
        "is_provisioned": False, "expires_at": None, "ttl": None, "last_access": None,
        "ip_allowlist": [], "is_expired": False,
    }
    r = edge("GET", "tokens")
    assert r.status_code == 200
    tokens = r.json()["tokens"]
    names = [t["name"] for t in tokens]
    assert names == sorted(names) and {"init-token", "crud-1"} <= set(names)
    assert all(set(t) == TOKEN_KEYS and t["value"] == "" for t in tokens)

    # The new secret works at once and is what /me reports.
    me = edge("GET", "me", secret=doc["value"]).json()
    assert me["name"] == "crud-1" and me["last_access"] is not None

    r = edge("DELETE", "tokens/crud-1")
    assert r.status_code == 200 and r.content == b""
    assert err(edge("GET", "tokens/crud-1")) == (404, "Token 'crud-1' doesn't exist")
    assert err(edge("GET", "me", secret=doc["value"])) == (401, "Invalid token")


def test_v1_flat_body_and_empty_body_object(edge):
    value = create(edge, "flat-1", {"full_access": False, "read": ["x"], "write": []})
    assert edge("GET", "tokens/flat-1").json()["permissions"] == {"full_access": False, "read": ["x"],
                                                                  "write": []}
    create(edge, "flat-2", {})
    assert edge("GET", "tokens/flat-2").json()["permissions"] == {"full_access": False, "read": [], "write": []}
    assert edge("GET", "me", secret=value).status_code == 200


def test_v2_fields_round_trip(edge):
    expires = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    create(edge, "v2-1", {"permissions": {"read": ["a"]}, "expires_at": expires.isoformat(), "ttl": 3600,
                          "ip_allowlist": ["127.0.0.1", "10.0.0.0/8"]})
    doc = edge("GET", "tokens/v2-1").json()
    assert doc["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert doc["ttl"] == 3600
    assert doc["ip_allowlist"] == ["127.0.0.1", "10.0.0.0/8"]
    assert doc["is_expired"] is False


@pytest.mark.parametrize(
    "path, body, expected",
    [
        ("tokens/dup", {}, (409, "Token 'dup' already exists")),
        ("tokens/p1", {"permissions": {"read": ["bad name"]}},
         (422, "Permission can contain only bucket names or wildcard '*', got 'bad name'")),
        ("tokens/p2", {"permissions": {"write": ["a/b"]}},
         (422, "Permission can contain only bucket names or wildcard '*', got 'a/b'")),
        ("tokens/t0", {"permissions": {}, "ttl": 0}, (422, "Token TTL must be greater than zero")),
        ("tokens/past", {"permissions": {}, "expires_at": "2020-01-01T00:00:00Z"},
         (422, "Token expiration date must not be in the past")),
        ("tokens/naive", {"permissions": {}, "expires_at": "2099-01-01T00:00:00"}, (422, "Invalid body")),
        ("tokens/shape", {"permissions": 5}, (422, "Invalid body")),
        ("tokens/unknown", {"permissions": {}, "colour": "red"}, (422, "Invalid body")),
        ("tokens/neg", {"permissions": {}, "ttl": -1}, (422, "Invalid body")),
        ("tokens/", {}, (422, "Token name can't be empty")),
    ],
)
def test_create_errors(edge, path, body, expected):
    if path == "tokens/dup":
        edge("POST", "tokens/dup", json={})
    r = edge("POST", path, json=body)
    assert err(r) == expected
    assert r.json() == {"detail": expected[1]}


def test_create_body_not_json(edge):
    assert err(edge("POST", "tokens/nj", data=b"not json")) == (422, "Invalid body")
    assert err(edge("POST", "tokens/nj", data=b"")) == (422, "Invalid body")
    assert edge("GET", "tokens/nj").status_code == 404


def test_provisioned_init_token_is_immutable(edge):
    doc = edge("GET", "tokens/init-token").json()
    assert doc["is_provisioned"] is True
    assert doc["permissions"] == {"full_access": True, "read": [], "write": []}
    assert err(edge("DELETE", "tokens/init-token")) == (409, "Can't remove provisioned token 'init-token'")
    assert err(edge("POST", "tokens/init-token/rotate")) == (409, "Can't rotate provisioned token 'init-token'")
    assert edge("GET", "me").status_code == 200


def test_not_found_texts(edge):
    for method, path in (("GET", "tokens/ghost"), ("DELETE", "tokens/ghost"), ("POST", "tokens/ghost/rotate")):
        r = edge(method, path)
        assert err(r) == (404, "Token 'ghost' doesn't exist"), (method, path)


# --- rotation, lifetime, IP allow-list --------------------------------------------------------


def test_rotate_invalidates_the_old_secret_at_once(edge):
    old = create(edge, "rot-1", {"permissions": {"read": ["a"]}})
    assert edge("GET", "me", secret=old).status_code == 200
    created_before = edge("GET", "tokens/rot-1").json()["created_at"]
    time.sleep(0.01)
    r = edge("POST", "tokens/rot-1/rotate")
    assert r.status_code == 200, err(r)
    new = r.json()["value"]
    assert set(r.json()) == {"value", "created_at"}
    assert new != old and new.startswith("rot-1-")
    assert err(edge("GET", "me", secret=old)) == (401, "Invalid token")
    assert edge("GET", "me", secret=new).json()["name"] == "rot-1"
    doc = edge("GET", "tokens/rot-1").json()
    assert doc["created_at"] == r.json()["created_at"] != created_before
    assert doc["permissions"]["read"] == ["a"]  # rotation keeps everything but the secret


def test_expired_token(edge):
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    value = create(edge, "exp-1", {"permissions": {}, "expires_at": soon.isoformat()})
    assert edge("GET", "me", secret=value).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    assert err(edge("GET", "me", secret=value)) == (401, "Token has expired")
    assert edge("GET", "tokens/exp-1").json()["is_expired"] is True
    assert err(edge("POST", "tokens/exp-1/rotate")) == (422, "Can't rotate expired token 'exp-1'")
    assert edge("DELETE", "tokens/exp-1").status_code == 200


def test_ip_allowlist(edge):
    value = create(edge, "ip-1", {"permissions": {}, "ip_allowlist": ["10.1.2.0/24"]})
    # The test client is the loopback peer, a trusted proxy: the forwarded address counts (§1.8).
    assert err(edge("GET", "me", secret=value)) == (401, "Token is not allowed for client IP 127.0.0.1")
    assert edge("GET", "me", secret=value, headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    r = edge("GET", "me", secret=value, headers={"X-Forwarded-For": "10.1.3.3"})
    assert err(r) == (401, "Token is not allowed for client IP 10.1.3.3")


def test_bucket_removal_and_rename_update_permissions(edge):
    assert edge("POST", "b/perm-a").status_code == 200
    create(edge, "perm-1", {"permissions": {"read": ["perm-a", "perm-*"], "write": ["perm-a"]}})
    assert edge("PUT", "b/perm-a/rename", json={"new_name": "perm-b"}).status_code == 200
    assert edge("GET", "tokens/perm-1").json()["permissions"]["read"] == ["perm-b", "perm-*"]
    assert edge("DELETE", "b/perm-b").status_code == 200
    perms = edge("GET", "tokens/perm-1").json()["permissions"]
    assert perms["read"] == ["perm-*"] and perms["write"] == []


# --- throttling -------------------------------------------------------------------------------


def test_bad_tokens_are_throttled_per_address(make_server):
    proc = make_server({"EDGE_AUTH_MAX_FAILURES": "3", "EDGE_AUTH_BACKOFF": "2"}, auth=token_auth(INIT))
    api = Api(proc)
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    # Requests without a token are not guesses: they never count (clients probe /info that way).
    for _ in range(5):
        r = requests.get(f"{proc.api}/info", headers=attacker, timeout=10)
        assert err(r) == (401, "No bearer token in request header")
    for _ in range(3):
        assert err(api("GET", "info", secret="guess", headers=dict(attacker))) == (401, "Invalid token")
    r = api("GET", "info", secret="guess", headers=dict(attacker))
    assert r.status_code == 429
    assert r.headers.get("x-reduct-error") == f"Too many failed authentication attempts; retry in {r.headers['retry-after']} s"
    assert 1 <= int(r.headers["retry-after"]) <= 2
    # Only further guesses are refused: a valid token from the same address still works ...
    assert api("GET", "info", headers=dict(attacker)).status_code == 200
    assert api("GET", "info", secret="guess2", headers=dict(attacker)).status_code == 429
    # ... and other clients, with or without a good token, are not affected.
    assert api("GET", "info", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    assert api("GET", "info").status_code == 200
    assert err(api("GET", "info", secret="guess")) == (401, "Invalid token")
    # The block ends after the backoff.
    time.sleep(2.2)
    assert api("GET", "info", headers=dict(attacker)).status_code == 200


# --- persistence ------------------------------------------------------------------------------


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def test_restart_keeps_tokens_and_no_secret_at_rest(make_server, tmp_path):
    data = tmp_path / "persist"
    proc = make_server(data_path=data, auth=token_auth(INIT))
    api = Api(proc)
    secrets = {
        "keep-1": create(api, "keep-1", {"permissions": {"read": ["a", "b-*"], "write": ["$system"]}}),
        "keep-2": create(api, "keep-2", {"permissions": {"full_access": True}, "ttl": 86400,
                                         "ip_allowlist": ["127.0.0.1"]}),
        "keep-3": create(api, "keep-3", {"full_access": False}),
    }
    rotated = api("POST", "tokens/keep-3/rotate").json()["value"]
    old_keep3, secrets["keep-3"] = secrets["keep-3"], rotated
    assert api("GET", "me", secret=secrets["keep-1"]).status_code == 200  # sets last_access
    before = {t["name"]: t for t in api("GET", "tokens").json()["tokens"]}

    proc.restart()

    after = {t["name"]: t for t in api("GET", "tokens").json()["tokens"]}
    assert set(after) == set(before) == {"init-token", "keep-1", "keep-2", "keep-3"}
    for name in before:
        b, a = dict(before[name]), dict(after[name])
        # last_access moved with our own calls; everything else is exactly as before.
        b.pop("last_access"), a.pop("last_access")
        assert a == b, name
    # keep-1's last use came after the last token change, so only the shutdown save kept it.
    assert before["keep-1"]["last_access"] is not None
    assert after["keep-1"]["last_access"] == before["keep-1"]["last_access"]
    for name, secret in secrets.items():
        assert api("GET", "me", secret=secret).json()["name"] == name
    assert err(api("GET", "me", secret=old_keep3)) == (401, "Invalid token")

    proc.stop()
    # Nothing under the data folder holds a secret in clear (hashes only).
    for path, content in _all_bytes(data):
        for secret in [INIT, old_keep3, *secrets.values()]:
            assert secret.encode() not in content, f"{secret} in clear in {path}"
    # Nor does the server's log.
    log = proc.log_path.read_bytes()
    for secret in [INIT, old_keep3, *secrets.values()]:
        assert secret.encode() not in log
    tokens_file = data / ".edge" / "tokens.json"
    assert tokens_file.exists()
    assert b"sha256:" in tokens_file.read_bytes()
    assert tokens_file.stat().st_mode & 0o077 == 0  # not readable by others


def test_provisioned_tokens_from_env(make_server):
    env = {"RS_TOKEN_A_NAME": "prov-reader", "RS_TOKEN_A_VALUE": "prov-reader-secret", "RS_TOKEN_A_READ": "x, y-*",
           "RS_TOKEN_B_NAME": "prov-novalue"}  # dropped: no value
    proc = make_server(env, auth=token_auth(INIT))
    api = Api(proc)
    doc = api("GET", "tokens/prov-reader").json()
    assert doc["is_provisioned"] is True
    assert doc["permissions"] == {"full_access": False, "read": ["x", "y-*"], "write": []}
    assert api("GET", "me", secret="prov-reader-secret").json()["name"] == "prov-reader"
    assert err(api("DELETE", "tokens/prov-reader")) == (409, "Can't remove provisioned token 'prov-reader'")
    assert err(api("POST", "tokens/prov-reader/rotate")) == (409, "Can't rotate provisioned token 'prov-reader'")
    assert api("GET", "tokens/prov-novalue").status_code == 404


# --- authentication disabled (§2.1) -----------------------------------------------------------


def test_auth_disabled(server):
    api = server.api
    assert requests.get(f"{api}/tokens", timeout=10).json() == {"tokens": []}
    # A token is neither needed nor checked.
    assert requests.get(f"{api}/tokens", headers=auth("anything"), timeout=10).status_code == 200
    for method, path in (("POST", "tokens/x"), ("GET", "tokens/x"), ("POST", "tokens/x/rotate")):
        r = requests.request(method, f"{api}/{path}", json={} if method == "POST" else None, timeout=10)
        assert err(r) == (400, "Authentication is disabled"), (method, path)
    r = requests.delete(f"{api}/tokens/x", timeout=10)
    assert r.status_code == 200 and r.content == b""
    me = requests.get(f"{api}/me", timeout=10).json()
    assert me["name"] == "AUTHENTICATION-DISABLED" and me["value"] == ""
    assert me["permissions"] == {"full_access": True, "read": [], "write": []}
    assert set(me) == TOKEN_KEYS
