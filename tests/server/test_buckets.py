"""Buckets over real HTTP: create/get/head/update/rename/delete, settings defaults, exact texts."""

from __future__ import annotations

import requests
from tests.helpers import NO_AUTH


def test_create_get_and_defaults(server, bucket_name):
    r = requests.post(f"{server.api}/b/{bucket_name}")
    assert r.status_code == 200 and r.headers["x-reduct-api"] == "1.21"
    doc = requests.get(f"{server.api}/b/{bucket_name}").json()
    # The appliance default: FIFO, sized from the disk at start-up, as /info reports it.
    defaults = requests.get(f"{server.api}/info").json()["defaults"]["bucket"]
    assert defaults["quota_type"] == "FIFO" and defaults["quota_size"] >= 1_000_000
    assert doc["settings"] == {**defaults, "max_block_size": 64000000, "max_block_records": 1024}
    assert doc["info"] == {"name": bucket_name, "entry_count": 0, "size": 0, "oldest_record": 0,
                           "latest_record": 0, "is_provisioned": False, "status": "READY", "disk_usage": 0}
    assert doc["entries"] == []


def test_create_with_nulls_means_defaults(server, bucket_name):
    body = {"max_block_size": None, "max_block_records": 10000, "quota_type": None, "quota_size": None}
    assert requests.post(f"{server.api}/b/{bucket_name}", json=body).status_code == 200
    s = requests.get(f"{server.api}/b/{bucket_name}").json()["settings"]
    defaults = requests.get(f"{server.api}/info").json()["defaults"]["bucket"]
    assert s == {**defaults, "max_block_size": 64000000, "max_block_records": 10000}


def test_upstream_defaults_on_request(make_server, bucket_name):
    """RS_DEFAULTS_BUCKET_QUOTA_TYPE=NONE gives ReductStore's own defaults back."""
    srv = make_server({"RS_DEFAULTS_BUCKET_QUOTA_TYPE": "NONE"}, auth=NO_AUTH)
    assert requests.post(f"{srv.api}/b/{bucket_name}").status_code == 200
    s = requests.get(f"{srv.api}/b/{bucket_name}").json()["settings"]
    assert s == {"quota_type": "NONE", "quota_size": 0, "max_block_size": 64000000, "max_block_records": 1024}
    assert requests.get(f"{srv.api}/info").json()["defaults"]["bucket"]["quota_type"] == "NONE"


def test_create_twice_is_409(server, bucket_name):
    requests.post(f"{server.api}/b/{bucket_name}")
    r = requests.post(f"{server.api}/b/{bucket_name}")
    assert r.status_code == 409
    assert r.headers["x-reduct-error"] == f"Bucket '{bucket_name}' already exists"
    assert r.json() == {"detail": f"Bucket '{bucket_name}' already exists"}


def test_bad_names_and_json(server):
    r = requests.post(f"{server.api}/b/bad.name")
    assert r.status_code == 422
    assert r.headers["x-reduct-error"] == "Bucket or entry name can contain only letters, digests and [-,_] symbols"
    r = requests.post(f"{server.api}/b/okname-json", data=b"{not json")
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid JSON: ")
    r = requests.post(f"{server.api}/b/okname-json", json={"quota_type": "SOMETIMES"})
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid JSON: ")
    assert requests.head(f"{server.api}/b/okname-json").status_code == 404


def test_missing_bucket_404_everywhere(server):
    for method in ("GET", "PUT", "DELETE"):
        r = requests.request(method, f"{server.api}/b/NOTEXIST")
        assert r.status_code == 404, method
        assert r.headers["x-reduct-error"] == "Bucket 'NOTEXIST' is not found"
    assert requests.head(f"{server.api}/b/NOTEXIST").status_code == 404


def test_update_keeps_unmentioned_fields(server, bucket_name):
    requests.post(f"{server.api}/b/{bucket_name}", json={"quota_type": "FIFO", "quota_size": 1000})
    assert requests.put(f"{server.api}/b/{bucket_name}", json={"max_block_records": 7}).status_code == 200
    s = requests.get(f"{server.api}/b/{bucket_name}").json()["settings"]
    assert s == {"quota_type": "FIFO", "quota_size": 1000, "max_block_size": 64000000, "max_block_records": 7}


def test_rename_and_remove(server, bucket_name):
    requests.post(f"{server.api}/b/{bucket_name}")
    requests.post(f"{server.api}/b/{bucket_name}/e?ts=1", data=b"x")
    new = bucket_name + "-renamed"
    r = requests.put(f"{server.api}/b/{bucket_name}/rename", json={"new_name": new})
    assert r.status_code == 200, r.headers.get("x-reduct-error")
    assert requests.get(f"{server.api}/b/{bucket_name}").status_code == 404
    assert requests.get(f"{server.api}/b/{new}/e?ts=1").content == b"x"
    requests.post(f"{server.api}/b/{bucket_name}-other")
    r = requests.put(f"{server.api}/b/{new}/rename", json={"new_name": bucket_name + "-other"})
    assert r.status_code == 409 and r.headers["x-reduct-error"] == f"Bucket '{bucket_name}-other' already exists"
    assert requests.delete(f"{server.api}/b/{new}").status_code == 200
    assert requests.get(f"{server.api}/b/{new}").status_code == 404


def test_list_and_info(server, bucket_name):
    requests.post(f"{server.api}/b/{bucket_name}")
    requests.post(f"{server.api}/b/{bucket_name}/e?ts=5000000", data=b"0123456789A")
    requests.post(f"{server.api}/b/{bucket_name}/e?ts=6000000", data=b"0123456789A")
    names = [b["name"] for b in requests.get(f"{server.api}/list").json()["buckets"]]
    assert bucket_name in names and names == sorted(names)
    info = requests.get(f"{server.api}/b/{bucket_name}").json()["info"]
    assert info["size"] == 88  # spec §5.2: two 11-byte records at 5 s and 6 s
    server_info = requests.get(f"{server.api}/info").json()
    assert server_info["version"] == "1.21.0" and server_info["usage"] >= 88
    assert server_info["defaults"]["bucket"]["max_block_size"] == 64000000


def test_unknown_path_and_method(server):
    r = requests.get(f"{server.api}/NOTEXIST")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == "Not found"
    r = requests.get(f"{server.url}/bad-path/api/v1/info")
    assert r.status_code == 404 and r.headers["x-reduct-api"] == "1.21"
    assert requests.patch(f"{server.api}/info").status_code == 405


def test_cors_preflight_and_origins(make_server):
    srv = make_server({"RS_CORS_ALLOW_ORIGIN": "https://first.example, https://second.example"}, auth=NO_AUTH)
    r = requests.options(f"{srv.api}/info", headers={"Origin": "https://first.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == "*"
    assert r.headers["access-control-allow-headers"] == "*"
    for origin in ("https://first.example", "https://second.example"):
        r = requests.get(f"{srv.api}/info", headers={"Origin": origin})
        assert r.headers["access-control-allow-origin"] == origin
    r = requests.get(f"{srv.api}/info", headers={"Origin": "https://third.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_base_path(make_server):
    srv = make_server({"RS_API_BASE_PATH": "edge"}, auth=NO_AUTH)
    assert requests.get(f"{srv.url}/edge/api/v1/info").status_code == 200
    assert requests.get(f"{srv.url}/api/v1/info").status_code == 404
