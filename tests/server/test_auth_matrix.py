"""Every endpoint x every kind of caller, against a real server with ``RS_API_TOKEN`` set.

Callers: no token, a bad token, a read-only token (read ["mx"]), a write-only token
(write ["mx"]) and the full-access init token. For each endpoint the policy of spec §2.4 decides
the answer: 401 "No bearer token in request header" / 401 "Invalid token" / 403 with the
policy's text, or — when the policy passes — the endpoint's own answer.

Rows marked ``pending`` belong to rooms that may not be built yet (batch, queries, io, links,
replications, lifecycles): when the policy passes we assert only that auth let the request
through (not 401/403); when the route is not mounted at all (404 "Not found" for the full token)
the row is skipped, because then not even the auth outcome can be observed.

Bad-token requests come "from" a fresh address each (``X-Forwarded-For`` through the loopback
proxy, spec §1.8) so the bad-token throttle never interferes with this matrix; throttling has its
own test in test_tokens_api.py.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

import pytest
import requests

from tests.helpers import EdgeProcess, token_auth

INIT_SECRET = "matrix-init-secret"
BUCKET = "mx"
OTHER = "other"  # nobody but the full token has any permission here; it does not exist
SEED_TS = 1_000_000

CALLERS = ["none", "bad", "read", "write", "full"]
NO_TOKEN = (401, "No bearer token in request header")
BAD_TOKEN = (401, "Invalid token")
_ts = itertools.count(2_000_000)
_addr = itertools.count(1)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    policy: str            # anonymous | authenticated | full | read:<b> | write:<b>
    ok: tuple | None = None  # (status, x-reduct-error or None) when the policy passes; None = not checked
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    pending: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _q(query_type: str, **extra) -> bytes:
    return json.dumps({"query_type": query_type, **extra}).encode()


ROWS = [
    # server (§3)
    Row("GET", "alive", "anonymous", (200, None)),
    Row("HEAD", "alive", "anonymous", (200, None)),
    Row("GET", "ready", "anonymous", (200, None)),
    Row("HEAD", "ready", "anonymous", (200, None)),
    Row("GET", "info", "authenticated", (200, None)),
    Row("GET", "list", "authenticated", (200, None)),
    Row("GET", "me", "authenticated", (200, None)),
    # tokens (§4): all FullAccess; targets chosen so nothing is changed
    Row("GET", "tokens", "full", (200, None)),
    Row("GET", "tokens/reader", "full", (200, None)),
    Row("GET", "tokens/no-such", "full", (404, "Token 'no-such' doesn't exist")),
    Row("POST", "tokens/reader", "full", (409, "Token 'reader' already exists"), body=b"{}"),
    Row("DELETE", "tokens/no-such", "full", (404, "Token 'no-such' doesn't exist")),
    Row("POST", "tokens/no-such/rotate", "full", (404, "Token 'no-such' doesn't exist")),
    # buckets (§5)
    Row("GET", f"b/{BUCKET}", f"read:{BUCKET}", (200, None)),
    Row("GET", f"b/{OTHER}", f"read:{OTHER}", (404, f"Bucket '{OTHER}' is not found")),
    Row("HEAD", f"b/{BUCKET}", "authenticated", (200, None)),
    Row("HEAD", f"b/{OTHER}", "authenticated", (404, None)),
    Row("POST", f"b/{BUCKET}", "full", (409, f"Bucket '{BUCKET}' already exists")),
    Row("PUT", f"b/{OTHER}", "full", (404, f"Bucket '{OTHER}' is not found"), body=b"{}"),
    Row("DELETE", f"b/{OTHER}", "full", (404, f"Bucket '{OTHER}' is not found")),
    Row("PUT", f"b/{OTHER}/rename", "full", (404, f"Bucket '{OTHER}' is not found"),
        body=b'{"new_name": "x"}'),
    # entries and records (§6)
    Row("POST", f"b/{BUCKET}/e?ts=NEXT", f"write:{BUCKET}", (200, None), body=b"abc"),
    Row("POST", f"b/{OTHER}/e?ts=NEXT", f"write:{OTHER}", (404, f"Bucket '{OTHER}' is not found"), body=b"abc"),
    Row("GET", f"b/{BUCKET}/e?ts={SEED_TS}", f"read:{BUCKET}", (200, None)),
    Row("HEAD", f"b/{BUCKET}/e?ts={SEED_TS}", f"read:{BUCKET}", (200, None)),
    Row("GET", f"b/{BUCKET}/e", f"read:{BUCKET}", (200, None)),  # latest
    Row("GET", f"b/{BUCKET}/no-entry?ts=1", f"read:{BUCKET}",
        (404, f"Entry 'no-entry' not found in bucket '{BUCKET}'")),
    Row("GET", f"b/{OTHER}/e?ts=1", f"read:{OTHER}", (404, f"Bucket '{OTHER}' is not found")),
    Row("PATCH", f"b/{BUCKET}/e?ts={SEED_TS}", f"write:{BUCKET}", (200, None),
        headers={"x-reduct-label-touched": "yes"}),
    Row("DELETE", f"b/{BUCKET}/e?ts=999", f"write:{BUCKET}", (404, f"Record 999 not found in entry {BUCKET}/e")),
    Row("DELETE", f"b/{BUCKET}/no-entry", f"write:{BUCKET}",
        (404, f"Entry 'no-entry' not found in bucket '{BUCKET}'")),
    Row("PUT", f"b/{BUCKET}/no-entry/rename", f"write:{BUCKET}",
        (404, f"Entry 'no-entry' not found in bucket '{BUCKET}'"), body=b'{"new_name": "z"}'),
    # batch v1 (§7)
    Row("POST", f"b/{BUCKET}/e/batch", f"write:{BUCKET}", pending=True, body=b"",
        headers={"x-reduct-time-NEXT": "0,text/plain"}),
    Row("GET", f"b/{BUCKET}/e/batch?q=1", f"read:{BUCKET}", pending=True),
    Row("HEAD", f"b/{BUCKET}/e/batch?q=1", f"read:{BUCKET}", pending=True),
    Row("PATCH", f"b/{BUCKET}/e/batch", f"write:{BUCKET}", pending=True,
        headers={"x-reduct-time-999": "0,,a=b"}),
    Row("DELETE", f"b/{BUCKET}/e/batch", f"write:{BUCKET}", pending=True, headers={"x-reduct-time-999": ""}),
    # queries (§9): the query type in the body picks the policy
    Row("GET", f"b/{BUCKET}/e/q", f"read:{BUCKET}", pending=True),
    Row("GET", f"b/{BUCKET}/e?q=1", f"read:{BUCKET}", pending=True),
    Row("POST", f"b/{BUCKET}/e/q", f"read:{BUCKET}", pending=True, body=_q("QUERY")),
    Row("POST", f"b/{BUCKET}/no-entry/q", f"write:{BUCKET}", pending=True,
        body=_q("REMOVE", start=1, stop=2)),
    Row("DELETE", f"b/{BUCKET}/no-entry/q?start=1&stop=2", f"write:{BUCKET}", pending=True),
    # io, batch protocol v2 (§8)
    Row("POST", f"io/{BUCKET}/write", f"write:{BUCKET}", pending=True, body=b""),
    Row("GET", f"io/{BUCKET}/read", f"read:{BUCKET}", pending=True, headers={"x-reduct-query-id": "1"}),
    Row("HEAD", f"io/{BUCKET}/read", f"read:{BUCKET}", pending=True, headers={"x-reduct-query-id": "1"}),
    Row("PATCH", f"io/{BUCKET}/update", f"write:{BUCKET}", pending=True, body=b""),
    Row("DELETE", f"io/{BUCKET}/remove", f"write:{BUCKET}", pending=True, body=b""),
    Row("POST", f"io/{BUCKET}/q", f"read:{BUCKET}", pending=True, body=_q("QUERY", entries=["e"])),
    Row("POST", f"io/{BUCKET}/q", f"write:{BUCKET}", pending=True,
        body=_q("REMOVE", entries=["no-entry"], start=1, stop=2)),
    Row("POST", f"io/{OTHER}/q", f"read:{OTHER}", pending=True, body=_q("QUERY", entries=["e"])),
    # query links (§11): create checks Read on the body's bucket; download is anonymous
    Row("POST", "links/file.bin", f"read:{BUCKET}",
        body=json.dumps({"bucket": BUCKET, "entry": "e", "query": {"query_type": "QUERY"}}).encode()),
    Row("POST", "links/file.bin", f"read:{OTHER}",
        body=json.dumps({"bucket": OTHER, "entry": "e", "query": {"query_type": "QUERY"}}).encode()),
    # replications (§13), lifecycles (§14): all FullAccess
    Row("GET", "replications", "full", pending=True),
    Row("GET", "replications/r1", "full", pending=True),
    Row("POST", "replications/r1", "full", pending=True, body=b"{}"),
    Row("PUT", "replications/r1", "full", pending=True, body=b"{}"),
    Row("PATCH", "replications/r1/mode", "full", pending=True, body=b'{"mode": "paused"}'),
    Row("DELETE", "replications/r1", "full", pending=True),
    Row("GET", "lifecycles", "full", pending=True),
    Row("GET", "lifecycles/l1", "full", pending=True),
    Row("POST", "lifecycles/l1", "full", pending=True, body=b"{}"),
    Row("PUT", "lifecycles/l1", "full", pending=True, body=b"{}"),
    Row("PATCH", "lifecycles/l1/mode", "full", pending=True, body=b'{"mode": "paused"}'),
    Row("DELETE", "lifecycles/l1", "full", pending=True),
]


def expected_denial(policy: str, caller: str, names: dict[str, str]) -> tuple[int, str] | None:
    """The 401/403 the policy gives ``caller``, or None if it lets the caller through."""
    if policy == "anonymous":
        return None
    if caller == "none":
        return NO_TOKEN
    if caller == "bad":
        return BAD_TOKEN
    name = names[caller]
    perms = {"read": {"read": {BUCKET}, "write": set()}, "write": {"read": set(), "write": {BUCKET}},
             "full": None}[caller]
    if policy == "authenticated" or perms is None:
        return None
    if policy == "full":
        return 403, f"Token '{name}' doesn't have full access"
    kind, bucket = policy.split(":")
    if bucket in perms[kind]:
        return None
    return 403, f"Token '{name}' doesn't have {kind} access to bucket '{bucket}'"


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    proc = EdgeProcess(tmp_path_factory.mktemp("auth") / "data", auth=token_auth(INIT_SECRET)).start()
    full = {"Authorization": f"Bearer {INIT_SECRET}"}
    api = proc.api
    try:
        r = requests.post(f"{api}/b/{BUCKET}", headers=full, timeout=10)
        assert r.status_code == 200, r.headers
        r = requests.post(f"{api}/b/{BUCKET}/e?ts={SEED_TS}", headers=full, data=b"seed", timeout=10)
        assert r.status_code == 200, r.headers
        secrets = {"full": INIT_SECRET}
        for caller, name, perms in (("read", "reader", {"read": [BUCKET]}),
                                    ("write", "writer", {"write": [BUCKET]})):
            r = requests.post(f"{api}/tokens/{name}", headers=full, json={"permissions": perms}, timeout=10)
            assert r.status_code == 200, r.headers
            secrets[caller] = r.json()["value"]
        yield proc, secrets
    finally:
        proc.stop()


NAMES = {"read": "reader", "write": "writer", "full": "init-token"}


def call(proc: EdgeProcess, row: Row, caller: str, secrets: dict[str, str]) -> requests.Response:
    headers = {}
    for k, v in row.headers.items():
        headers[k.replace("NEXT", str(next(_ts)))] = v
    if caller == "bad":
        headers["Authorization"] = "Bearer not-a-token"
        # A fresh client address per bad request keeps the throttle out of this matrix.
        n = next(_addr)
        headers["X-Forwarded-For"] = f"198.18.{n // 250}.{n % 250 + 1}"
    elif caller != "none":
        headers["Authorization"] = f"Bearer {secrets[caller]}"
    path = row.path.replace("NEXT", str(next(_ts)))
    return requests.request(row.method, f"{proc.api}/{path}", headers=headers, data=row.body, timeout=10)


def _not_mounted(r: requests.Response) -> bool:
    return r.status_code in (404, 405) and r.headers.get("x-reduct-error", "Not found") == "Not found"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", ROWS, ids=[f"{r.id} [{r.policy}]" for r in ROWS])
def test_matrix(edge, row, caller):
    proc, secrets = edge
    if row.pending:
        probe = call(proc, row, "full", secrets)
        if _not_mounted(probe):
            pytest.skip(f"{row.id}: route not mounted yet")
    r = call(proc, row, caller, secrets)
    # Every answer, errors and unauthenticated ones included, carries the API version (§18.1).
    assert r.headers.get("x-reduct-api") == "1.21"
    denial = expected_denial(row.policy, caller, NAMES)
    if denial is not None:
        assert (r.status_code, r.headers.get("x-reduct-error")) == denial
        if row.method != "HEAD":
            assert r.json() == {"detail": denial[1]}
        return
    assert r.status_code not in (401, 403), (r.status_code, r.headers.get("x-reduct-error"))
    if row.ok is not None and not row.pending:
        status, text = row.ok
        assert r.status_code == status, r.headers.get("x-reduct-error")
        if text is not None:
            assert r.headers.get("x-reduct-error") == text


def test_list_is_filtered_by_read(edge):
    proc, secrets = edge

    def names(caller):
        r = requests.get(f"{proc.api}/list", headers={"Authorization": f"Bearer {secrets[caller]}"}, timeout=10)
        assert r.status_code == 200
        return [b["name"] for b in r.json()["buckets"]]

    assert BUCKET in names("full")
    assert names("read") == [BUCKET]
    assert names("write") == []  # write does not imply read


def test_me_for_each_token(edge):
    proc, secrets = edge
    for caller, name in NAMES.items():
        r = requests.get(f"{proc.api}/me", headers={"Authorization": f"Bearer {secrets[caller]}"}, timeout=10)
        assert r.status_code == 200
        doc = r.json()
        assert doc["name"] == name and doc["value"] == ""
        assert set(doc) == {"name", "value", "created_at", "permissions", "is_provisioned", "expires_at",
                            "ttl", "last_access", "ip_allowlist", "is_expired"}
    r = requests.get(f"{proc.api}/me", headers={"Authorization": f"Bearer {INIT_SECRET}"}, timeout=10)
    assert r.json()["permissions"] == {"full_access": True, "read": [], "write": []}
    assert r.json()["is_provisioned"] is True


@pytest.mark.parametrize("header", ["bearer x", "Basic abc", "Bearer", "Token matrix-init-secret"])
def test_malformed_authorization_is_no_bearer(edge, header):
    proc, _ = edge
    r = requests.get(f"{proc.api}/info", headers={"Authorization": header}, timeout=10)
    assert (r.status_code, r.headers.get("x-reduct-error")) == NO_TOKEN

