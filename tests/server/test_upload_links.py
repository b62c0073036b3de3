"""Upload links (file requests) over real HTTP: management, the anonymous page's info, and tus
uploads authorised by the link secret (scope, limits, uniform 404, restart)."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from tests.helpers import token_auth

INIT = "ul-init-token"
AUTH = {"Authorization": f"Bearer {INIT}"}
TUS = {"Tus-Resumable": "1.0.0"}


def meta(**kv: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


@pytest.fixture
def srv(make_server):
    s = make_server(auth=token_auth(INIT))
    assert requests.post(f"{s.api}/b/drop", headers=AUTH).status_code == 200
    return s


def create(srv, headers=AUTH, **body):
    doc = {"bucket": "drop", "entry": "inbox", "expire_at": int(time.time()) + 3600, **body}
    return requests.post(f"{srv.api}/upload-links", json=doc, headers=headers)


def tus_create(srv, secret, data: bytes, **metadata):
    md = {"bucket": "drop", "entry": "inbox", "filename": "a.txt", **metadata}
    headers = {**TUS, "Upload-Link": secret, "Upload-Length": str(len(data)), "Upload-Metadata": meta(**md)}
    return requests.post(f"{srv.api}/uploads", headers=headers)


def tus_upload(srv, secret, data: bytes, **metadata):
    r = tus_create(srv, secret, data, **metadata)
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    p = requests.patch(loc, data=data, headers={**TUS, "Upload-Link": secret, "Upload-Offset": "0",
                                                "Content-Type": "application/offset+octet-stream"})
    assert p.status_code == 204, p.text
    return loc


def test_create_needs_write_access(srv):
    assert create(srv, headers={}).status_code == 401
    reader = requests.post(f"{srv.api}/tokens/reader", json={"permissions": {"read": ["drop"]}}, headers=AUTH).json()
    r = create(srv, headers={"Authorization": f"Bearer {reader['value']}"})
    assert r.status_code == 403
    assert create(srv, bucket="nope").status_code == 404
    assert create(srv, entry="").status_code == 422
    assert create(srv, entry="a/$meta").status_code == 422
    assert create(srv, max_files=0).status_code == 422


def test_secret_shown_once_and_stored_only_as_hash(srv):
    r = create(srv, max_files=3, note="hi")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    doc = r.json()
    secret = doc["secret"]
    assert doc["url"].endswith("/ui/upload.html#" + secret)
    listed = requests.get(f"{srv.api}/upload-links", headers=AUTH).json()["upload_links"]
    assert [l["id"] for l in listed] == [doc["id"]] and "secret" not in listed[0]
    for path in (srv.data_path / ".edge" / "upload_links").iterdir():
        assert secret.encode() not in path.read_bytes()
    info = requests.get(f"{srv.api}/upload-links/self", headers={"Upload-Link": secret}).json()
    assert info["bucket"] == "drop" and info["entry"] == "inbox" and info["files_left"] == 3 and info["note"] == "hi"


def test_uniform_not_found(srv):
    doc = create(srv).json()
    bad = requests.get(f"{srv.api}/upload-links/self", headers={"Upload-Link": "x" * 43})
    missing = requests.get(f"{srv.api}/upload-links/self")
    assert bad.status_code == missing.status_code == 404
    assert bad.headers["x-reduct-error"] == missing.headers["x-reduct-error"] == "Upload link not found or has expired"
    assert requests.delete(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).status_code == 200
    revoked = requests.get(f"{srv.api}/upload-links/self", headers={"Upload-Link": doc["secret"]})
    assert revoked.status_code == 404 and revoked.headers["x-reduct-error"] == bad.headers["x-reduct-error"]
    r = tus_create(srv, doc["secret"], b"abc")
    assert r.status_code == 404 and r.headers["x-reduct-error"] == bad.headers["x-reduct-error"]
    expired = create(srv, expire_at=int(time.time()) - 1).json()
    assert requests.get(f"{srv.api}/upload-links/self", headers={"Upload-Link": expired["secret"]}).status_code == 404


def test_anonymous_tus_upload_into_the_entry(srv):
    doc = create(srv, max_files=2, max_bytes=1000).json()
    secret = doc["secret"]
    loc = tus_upload(srv, secret, b"hello world", filename="greeting.txt", filetype="text/plain")
    head = requests.head(loc, headers={**TUS, "Upload-Link": secret})
    assert head.status_code == 200 and head.headers["upload-offset"] == "11"
    rec = requests.get(f"{srv.api}/b/drop/inbox", headers=AUTH)
    assert rec.content == b"hello world" and rec.headers["x-reduct-label-filename"] == "greeting.txt"
    assert rec.headers["content-type"] == "text/plain"
    shown = requests.get(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).json()
    assert shown["files"] == 1 and shown["bytes"] == 11
    assert shown["received"][0]["filename"] == "greeting.txt" and shown["received"][0]["upload_id"]

    # scope: another entry or bucket, a chosen timestamp or labels are refused before any byte
    assert tus_create(srv, secret, b"x", entry="other").status_code == 403
    assert tus_create(srv, secret, b"x", ts="1000").status_code == 400
    assert tus_create(srv, secret, b"x", **{"label-kind": "evil"}).status_code == 400
    # limits
    assert tus_create(srv, secret, b"x" * 990).status_code == 413
    tus_upload(srv, secret, b"second")
    r = tus_create(srv, secret, b"x")
    assert r.status_code == 403 and "maximum of 2 files" in r.headers["x-reduct-error"]
    assert requests.get(f"{srv.api}/upload-links", headers=AUTH).json()["upload_links"][0]["state"] == "full"


def test_secret_cannot_touch_uploads_it_did_not_create(srv):
    secret = create(srv).json()["secret"]
    r = requests.post(f"{srv.api}/uploads", headers={**TUS, **AUTH, "Upload-Length": "5",
                                                      "Upload-Metadata": meta(bucket="drop", entry="inbox")})
    assert r.status_code == 201
    other = r.headers["location"]
    for method in ("HEAD", "DELETE"):
        assert requests.request(method, other, headers={**TUS, "Upload-Link": secret}).status_code == 404
    p = requests.patch(other, data=b"12345", headers={**TUS, "Upload-Link": secret, "Upload-Offset": "0",
                                                      "Content-Type": "application/offset+octet-stream"})
    assert p.status_code == 404


def test_failed_creation_releases_the_reservation(srv):
    assert requests.put(f"{srv.api}/b/drop", json={"quota_type": "HARD", "quota_size": 600}, headers=AUTH).status_code == 200
    doc = create(srv, max_files=1).json()
    r = tus_create(srv, doc["secret"], b"x" * 500)
    assert r.status_code == 400 and "Quota" in r.headers["x-reduct-error"]
    shown = requests.get(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).json()
    assert shown["files"] == 0 and shown["bytes"] == 0 and shown["received"] == []
    tus_upload(srv, doc["secret"], b"small")


def test_edit_revoke_and_restart(srv):
    doc = create(srv, max_files=1).json()
    r = requests.patch(f"{srv.api}/upload-links/{doc['id']}", json={"max_files": 5, "note": "more"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["max_files"] == 5
    assert requests.patch(f"{srv.api}/upload-links/{doc['id']}", json={}, headers=AUTH).status_code == 422
    tus_upload(srv, doc["secret"], b"kept")
    srv.restart()
    shown = requests.get(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).json()
    assert shown["files"] == 1 and shown["max_files"] == 5 and shown["note"] == "more"
    tus_upload(srv, doc["secret"], b"after restart")
    assert requests.delete(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).status_code == 200
    assert requests.get(f"{srv.api}/upload-links/{doc['id']}", headers=AUTH).json()["state"] == "revoked"
    assert tus_create(srv, doc["secret"], b"x").status_code == 404


def test_only_creator_or_full_access_changes(srv):
    writer = requests.post(f"{srv.api}/tokens/writer", json={"permissions": {"write": ["drop"], "read": ["drop"]}},
                           headers=AUTH).json()["value"]
    other = requests.post(f"{srv.api}/tokens/other", json={"permissions": {"write": ["drop"], "read": ["drop"]}},
                          headers=AUTH).json()["value"]
    doc = create(srv, headers={"Authorization": f"Bearer {writer}"}).json()
    assert doc["creator"] == "writer"
    r = requests.delete(f"{srv.api}/upload-links/{doc['id']}", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 403
    assert requests.delete(f"{srv.api}/upload-links/{doc['id']}", headers={"Authorization": f"Bearer {writer}"}).status_code == 200
