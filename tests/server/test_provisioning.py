"""RS_BUCKET_* provisioning through a real server (spec §16.2): created or overwritten at start,
flagged ``is_provisioned``, immutable through the API; a bad value stops start-up naming the
variable."""

from __future__ import annotations

import pytest
import requests
from tests.helpers import NO_AUTH

BUCKET_ENV = {
    "RS_BUCKET_P_NAME": "prov-b",
    "RS_BUCKET_P_QUOTA_TYPE": "FIFO",
    "RS_BUCKET_P_QUOTA_SIZE": "1MB",
    "RS_BUCKET_P_MAX_BLOCK_RECORDS": "32",
}


def settings(api: str, name: str) -> dict:
    r = requests.get(f"{api}/b/{name}", timeout=10)
    assert r.status_code == 200, r.headers.get("x-reduct-error")
    return r.json()


def test_bucket_is_provisioned_and_immutable(make_server, tmp_path):
    proc = make_server(BUCKET_ENV, data_path=tmp_path / "d", auth=NO_AUTH)
    doc = settings(proc.api, "prov-b")
    assert doc["settings"] == {"quota_type": "FIFO", "quota_size": 1_000_000, "max_block_size": 64_000_000,
                               "max_block_records": 32}
    assert doc["info"]["is_provisioned"] is True
    for method, path, body in (("PUT", "b/prov-b", {"quota_size": 5}),
                               ("DELETE", "b/prov-b", None),
                               ("PUT", "b/prov-b/rename", {"new_name": "other"})):
        r = requests.request(method, f"{proc.api}/{path}", json=body, timeout=10)
        assert r.status_code == 409, (method, path)
        assert "provisioned bucket 'prov-b'" in r.headers["x-reduct-error"]
    proc.stop()

    # Restart with other values: the existing bucket's settings are overwritten.
    proc2 = make_server({"RS_BUCKET_X_NAME": "prov-b", "RS_BUCKET_X_QUOTA_TYPE": "HARD",
                         "RS_BUCKET_X_QUOTA_SIZE": "2MB"}, data_path=tmp_path / "d", auth=NO_AUTH)
    doc = settings(proc2.api, "prov-b")
    assert doc["settings"]["quota_type"] == "HARD" and doc["settings"]["quota_size"] == 2_000_000
    assert doc["settings"]["max_block_records"] == 1024  # not set any more: the default
    proc2.stop()

    # No longer configured: the flag goes, and the API may manage the bucket again.
    proc3 = make_server({}, data_path=tmp_path / "d", auth=NO_AUTH)
    assert settings(proc3.api, "prov-b")["info"]["is_provisioned"] is False
    assert requests.delete(f"{proc3.api}/b/prov-b", timeout=10).status_code == 200


@pytest.mark.parametrize("env, variable", [
    ({"RS_BUCKET_P_NAME": "p", "RS_BUCKET_P_QUOTA_TYPE": "SOMETIMES"}, "RS_BUCKET_P_QUOTA_TYPE"),
    ({"RS_BUCKET_P_NAME": "p", "RS_BUCKET_P_QUOTA_SIZE": "12 parsecs"}, "RS_BUCKET_P_QUOTA_SIZE"),
    ({"RS_BUCKET_P_NAME": "no spaces"}, "RS_BUCKET_P_NAME"),
])
def test_bad_value_stops_start_up(make_server, env, variable):
    with pytest.raises(RuntimeError) as info:
        make_server(env, auth=NO_AUTH)
    assert variable in str(info.value)
