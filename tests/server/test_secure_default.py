"""Secure by default (issue: ETSI EN 303 645 5.1): with no auth setting the server generates a
device-unique token instead of serving openly; RS_DISABLE_AUTH=true is the one way to run open."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests

from edge import durable
from edge.config import AuthMode, Config
from tests.helpers import GENERATED, NO_AUTH, token_auth

reduct = pytest.importorskip("reduct")


def test_fresh_server_refuses_requests_without_a_token(make_server):
    srv = make_server(auth=GENERATED)
    assert requests.get(f"{srv.api}/alive", timeout=5).status_code == 200          # probes need no token
    r = requests.get(f"{srv.api}/info", timeout=5)
    assert r.status_code == 401 and r.headers["x-reduct-error"] == "No bearer token in request header"
    assert requests.post(f"{srv.api}/b/open", timeout=5).status_code == 401
    assert requests.get(f"{srv.api}/info", headers={"Authorization": "Bearer device-token-0"},
                        timeout=5).status_code == 401

    secret_file = srv.data_path / ".edge" / "device-token"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = srv.token
    assert secret.startswith("device-token-") and len(secret) == len("device-token-") + 32
    # Only the hash is stored, and the log says where the secret is, never the secret itself.
    tokens = json.loads(durable.unseal((srv.data_path / ".edge" / "tokens.json").read_bytes())[0])["tokens"]
    assert [t["name"] for t in tokens] == ["device-token"] and tokens[0]["permissions"]["full_access"]
    assert secret not in json.dumps(tokens)
    log = srv.log()
    assert str(secret_file.absolute()) in log and secret not in log

    me = requests.get(f"{srv.api}/me", headers={"Authorization": f"Bearer {secret}"}, timeout=5).json()
    assert me["name"] == "device-token" and me["permissions"]["full_access"] is True


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_generated_token_works_with_reduct_py_and_survives_restarts(make_server):
    srv = make_server(auth=GENERATED)
    secret = srv.token

    async def write() -> None:
        async with reduct.Client(srv.url, api_token=secret) as client:
            bucket = await client.create_bucket("cam", exist_ok=True)
            await bucket.write("front", b"jpeg bytes", timestamp=1_000_000, labels={"kind": "jpeg"})
        async with reduct.Client(srv.url) as anonymous:
            with pytest.raises(reduct.ReductError) as info:
                await anonymous.get_bucket("cam")
            assert info.value.status_code == 401

    async def read_back() -> None:
        async with reduct.Client(srv.url, api_token=secret) as client:
            bucket = await client.get_bucket("cam")
            async with bucket.read("front", timestamp=1_000_000) as record:
                assert await record.read_all() == b"jpeg bytes"
            assert [t.name for t in await client.get_token_list()] == ["device-token"]

    run(write())
    srv.restart()
    assert srv.token == secret                              # written once, kept
    assert srv.log().count("was created; its secret is in") == 1   # no second token on the second start
    run(read_back())


def test_disable_auth_serves_without_a_token_and_warns_at_every_start(make_server):
    srv = make_server(auth=NO_AUTH)
    assert requests.post(f"{srv.api}/b/open", timeout=5).status_code == 200
    assert requests.get(f"{srv.api}/info", timeout=5).status_code == 200
    assert not (srv.data_path / ".edge" / "device-token").exists()
    srv.restart()
    assert srv.log().count("authentication is DISABLED (RS_DISABLE_AUTH=true)") == 2


def test_an_explicit_token_means_no_generated_one(make_server):
    srv = make_server(auth=token_auth("my-own-secret"))
    assert requests.get(f"{srv.api}/info", timeout=5).status_code == 401
    assert requests.get(f"{srv.api}/info", headers={"Authorization": "Bearer my-own-secret"},
                        timeout=5).status_code == 200
    assert not (srv.data_path / ".edge" / "device-token").exists()


@pytest.mark.parametrize("env, mode", [
    ({}, AuthMode.GENERATED),
    ({"RS_API_TOKEN": ""}, AuthMode.GENERATED),          # empty is no choice (it used to mean "open")
    ({"RS_API_TOKEN": "s"}, AuthMode.TOKEN),
    ({"RS_INIT_API_TOKEN": "s"}, AuthMode.INIT),
    ({"RS_DISABLE_AUTH": "true"}, AuthMode.DISABLED),
    ({"RS_DISABLE_AUTH": "false"}, AuthMode.GENERATED),
    ({"RS_DISABLE_AUTH": "true", "RS_API_TOKEN": "s"}, AuthMode.DISABLED),
])
def test_auth_mode_from_the_environment(env, mode):
    config = Config.from_env(env)
    assert config.auth_mode is mode
    assert config.auth_enabled is (mode is not AuthMode.DISABLED)
