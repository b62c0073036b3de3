"""Share links over real HTTP (issue 6): create, download, Range, passwords, limits, management,
uniform answers, .tar bundles, restart persistence and the server key file."""

from __future__ import annotations

import base64
import io
import os
import stat
import tarfile
import time
import urllib.parse

import pytest
import requests
from tests.helpers import NO_AUTH, token_auth

UNIFORM = (404, "Link not found or has expired")
PAYLOAD = bytes(range(256)) * 8          # 2048 bytes, every offset distinguishable


def _err(r: requests.Response) -> tuple[int, str | None]:
    return r.status_code, r.headers.get("x-reduct-error")


def _seed(api: str, bucket: str, headers: dict | None = None, entry: str = "cam") -> None:
    h = headers or {}
    assert requests.post(f"{api}/b/{bucket}", headers=h).status_code == 200
    for i, (ctype, data) in enumerate([("image/png", PAYLOAD), ("text/plain", b"hello"), ("application/json", b"{}")]):
        r = requests.post(f"{api}/b/{bucket}/{entry}?ts={1000 + i}", data=data,
                          headers={**h, "content-type": ctype, "x-reduct-label-n": str(i)})
        assert r.status_code == 200, r.headers


def _create(api: str, bucket: str, file_name: str = "shot.png", headers: dict | None = None,
            entry: str = "cam", ts: int = 1000, **extra) -> requests.Response:
    body = {"bucket": bucket, "entry": entry, "record_entry": entry, "record_timestamp": ts,
            "query": {"query_type": "QUERY", "entries": [entry]}, "expire_at": int(time.time()) + 3600}
    body.update(extra)
    return requests.post(f"{api}/links/{file_name}", json=body, headers=headers or {})


def _link(api, bucket, *a, **kw) -> dict:
    r = _create(api, bucket, *a, **kw)
    assert r.status_code == 200, r.headers
    return r.json()


def _with(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    q.update(params)
    q = {k: v for k, v in q.items() if v is not None}
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


# --- create + plain download ----------------------------------------------------------------------

def test_create_and_download(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    doc = _link(api, bucket_name, file_name='dir/we"ird;name.png')
    assert set(doc) >= {"link", "id", "expire_at"}
    url = doc["link"]
    assert url.startswith(f"{api}/links/dir/we%22ird%3Bname.png?ct=")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert sorted(q) == ["ct", "i", "n", "s"] and q["i"] == ["AUTHENTICATION-DISABLED"]
    assert not any("=" in v[0] for v in q.values())            # base64url without padding
    r = requests.get(url)
    assert r.status_code == 200 and r.content == PAYLOAD
    h = r.headers
    assert h["content-type"] == "image/png" and h["x-reduct-time"] == "1000"
    assert h["x-reduct-entry"] == "cam" and h["x-reduct-label-n"] == "0"
    assert h["content-disposition"] == 'attachment; filename="we_ird_name.png"'
    assert h["cache-control"] == "no-store" and h["referrer-policy"] == "no-referrer"
    assert h["x-content-type-options"] == "nosniff" and h["accept-ranges"] == "bytes"
    assert h["content-length"] == str(len(PAYLOAD))
    head = requests.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PAYLOAD))


def test_create_errors(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    r = _create(api, bucket_name, query={"query_type": "REMOVE", "start": 1})
    assert _err(r) == (422, "Only 'Query' type is supported for query links")
    r = _create(api, bucket_name, record_entry=None)
    assert _err(r) == (422, "Both 'record_entry' and 'record_timestamp' must be provided in payload")
    r = _create(api, bucket_name, base_url="not a url")
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid base_url provided for query link")
    r = _create(api, bucket_name, base_url="http://")
    assert _err(r) == (422, "Invalid base_url provided for query link: missing host")
    r = requests.post(f"{api}/links/x.bin", data=b"{nope")
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid JSON: ")
    r = _create(api, bucket_name, max_downloads=0)
    assert r.status_code == 422
    doc = _link(api, bucket_name, base_url="https://share.example.com/edge")
    assert doc["link"].startswith("https://share.example.com/edge/api/v1/links/shot.png?ct=")


def test_download_parameter_errors(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    url = _link(api, bucket_name)["link"]
    for name in ("ct", "s", "n", "i"):
        assert _err(requests.get(_with(url, **{name: None}))) == (422, f"Missing '{name}' parameter")
    r = requests.get(_with(url, s="a+b/"))
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid base64 in 's' parameter")
    assert _err(requests.get(_with(url, e="cam"))) == (422, "Both 'e' and 'ts' parameters must be provided together")
    r = requests.get(_with(url, e="cam", ts="x"))
    assert r.status_code == 422 and r.headers["x-reduct-error"].startswith("Invalid 'ts' parameter")


def test_record_override_and_query_scope(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    url = _link(api, bucket_name, query={"query_type": "QUERY", "entries": ["cam"], "start": 1000, "stop": 1002})["link"]
    r = requests.get(_with(url, e="cam", ts="1001"))
    assert r.status_code == 200 and r.content == b"hello" and r.headers["x-reduct-time"] == "1001"
    assert _err(requests.get(_with(url, e="cam", ts="1002"))) == (404, "Record cam/1002 not found in query result")
    # a link to a record that does not exist is refused at creation, naming it
    assert _err(_create(api, bucket_name, ts=999)) == (404, f"Record 999 not found in entry {bucket_name}/cam")
    assert _err(_create(api, bucket_name, entry="nope")) == (404, f"Entry 'nope' not found in bucket '{bucket_name}'")
    # one that exists but is outside the link's query is refused at download
    outside = _link(api, bucket_name, ts=1002, query={"query_type": "QUERY", "entries": ["cam"], "stop": 1002})
    assert _err(requests.get(outside["link"])) == (404, "Record cam/1002 not found in query result")


# --- Range ----------------------------------------------------------------------------------------

def test_ranges(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    url = _link(api, bucket_name)["link"]
    total = len(PAYLOAD)
    r = requests.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == PAYLOAD[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{total}" and r.headers["content-length"] == "10"
    r = requests.get(url, headers={"Range": "bytes=2000-"})
    assert r.status_code == 206 and r.content == PAYLOAD[2000:]
    r = requests.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == PAYLOAD[-5:]
    assert r.headers["content-range"] == f"bytes {total - 5}-{total - 1}/{total}"
    r = requests.get(url, headers={"Range": "bytes=0-1,100-101"})
    assert r.status_code == 206
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1]
    parts = [p for p in r.content.split(f"--{boundary}".encode()) if p.strip(b"\r\n-")]
    assert len(parts) == 2 and int(r.headers["content-length"]) == len(r.content)
    assert b"Content-Range: bytes 0-1/2048\r\n\r\n\x00\x01\r\n" in parts[0]
    assert b"Content-Range: bytes 100-101/2048\r\n\r\nde\r\n" in parts[1]
    r = requests.get(url, headers={"Range": f"bytes={total}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{total}"
    r = requests.get(url, headers={"Range": "lines=1-2"})           # not bytes: ignored
    assert r.status_code == 200 and r.content == PAYLOAD
    etag = r.headers["etag"]
    r = requests.get(url, headers={"Range": "bytes=0-0", "If-Range": etag})
    assert r.status_code == 206 and r.content == b"\x00"
    r = requests.get(url, headers={"Range": "bytes=0-0", "If-Range": '"other"'})
    assert r.status_code == 200


# --- passwords, limits, uniform answers ----------------------------------------------------------

def test_password_basic_auth(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    doc = _link(api, bucket_name, password="s3cret pass")
    url = doc["link"]
    # without (or with a wrong) password: the answer of a link that does not exist
    assert _err(requests.get(url)) == UNIFORM
    assert _err(requests.get(url, auth=("anyone", "wrong"))) == UNIFORM
    assert requests.get(url).content == requests.get(_with(url, ct="A" * 22)).content
    r = requests.get(url, auth=("", "s3cret pass"))
    assert r.status_code == 200 and r.content == PAYLOAD
    assert requests.get(_with(url, password="s3cret pass")).content == PAYLOAD
    shown = requests.get(f"{api}/links/{doc['id']}").json()
    assert shown["has_password"] is True and "s3cret" not in str(shown)


def test_max_downloads_and_range_sessions(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    doc = _link(api, bucket_name, max_downloads=1)
    url = doc["link"]
    assert requests.get(url, headers={"Range": "bytes=0-99"}).status_code == 206   # starts the download
    for i in range(5):                                                            # seeking: same download
        assert requests.get(url, headers={"Range": f"bytes={i * 100}-{i * 100 + 9}"}).status_code == 206
    assert requests.head(url).status_code == 200                                  # HEAD never counts
    shown = requests.get(f"{api}/links/{doc['id']}").json()
    assert shown["downloads"] == 1 and len(shown["receipts"]) == 6
    assert {"time", "client", "bytes", "range"} <= set(shown["receipts"][0])
    assert shown["receipts"][0]["range"] == "bytes=0-99" and shown["receipts"][0]["bytes"] == 100
    assert _err(requests.get(url)) == UNIFORM                                     # a full body counts: used up
    assert requests.get(f"{api}/links/{doc['id']}").json()["state"] == "used_up"


def test_uniform_answers_and_expiry(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    revoked = _link(api, bucket_name)
    assert requests.delete(f"{api}/links/{revoked['id']}").status_code == 200
    used = _link(api, bucket_name, max_downloads=1)
    assert requests.get(used["link"]).status_code == 200
    live = _link(api, bucket_name)["link"]
    ct = urllib.parse.parse_qs(urllib.parse.urlsplit(live).query)["ct"][0]
    tampered_ct = ct[:10] + ("A" if ct[10] != "A" else "B") + ct[11:]
    answers = [
        requests.get(revoked["link"]),
        requests.get(used["link"], headers={"X-Forwarded-For": "10.9.9.9"}),   # another client
        requests.get(_with(live, ct=tampered_ct)),
        requests.get(_with(live, i="someone-else")),                            # real ct, forged issuer
        requests.get(_with(live, n=base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode())),
        requests.get(_with(live, ct=base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode())),
    ]
    assert [_err(r) for r in answers] == [UNIFORM] * len(answers)
    assert len({r.content for r in answers}) == 1
    expired = _link(api, bucket_name, expire_at=int(time.time()) - 10)["link"]
    assert _err(requests.get(expired)) == (422, "Query link has expired")


# --- management -----------------------------------------------------------------------------------

def test_list_show_patch_revoke(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    doc = _link(api, bucket_name)
    listed = requests.get(f"{api}/links", params={"bucket": bucket_name}).json()["links"]
    assert [x["id"] for x in listed] == [doc["id"]]
    row = listed[0]
    for key in ("id", "file_name", "bucket", "entry", "record_entry", "created_at", "expire_at",
                "downloads", "max_downloads", "has_password", "revoked"):
        assert key in row
    ct = urllib.parse.parse_qs(urllib.parse.urlsplit(doc["link"]).query)["ct"][0]
    assert ct not in str(row) and row["file_name"] == "shot.png"
    r = requests.patch(f"{api}/links/{doc['id']}", json={"max_downloads": 3, "expire_at": doc["expire_at"] + 60,
                                                         "password": "pw"})
    assert r.status_code == 200, r.headers
    assert r.json()["max_downloads"] == 3 and r.json()["has_password"] is True
    assert _err(requests.get(doc["link"])) == UNIFORM
    r = requests.patch(f"{api}/links/{doc['id']}", json={"password": None, "max_downloads": None})
    assert r.json()["has_password"] is False and r.json()["max_downloads"] is None
    assert requests.get(doc["link"]).status_code == 200
    assert requests.patch(f"{api}/links/{doc['id']}", json={"expire_at": "soon"}).status_code == 422
    assert requests.patch(f"{api}/links/{doc['id']}", json={"password": ""}).status_code == 422
    assert requests.delete(f"{api}/links/{doc['id']}").status_code == 200
    assert requests.get(f"{api}/links/{doc['id']}").json()["revoked"] is True
    assert _err(requests.get(doc["link"])) == UNIFORM
    assert requests.get(f"{api}/links/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_management_permissions(make_server):
    init = {"Authorization": "Bearer init-secret"}
    srv = make_server(auth=token_auth("init-secret"))
    api = srv.api
    _seed(api, "mine", init)
    _seed(api, "theirs", init)
    tokens = {}
    for name, perms in (("reader", {"read": ["mine"]}), ("reader2", {"read": ["mine"]}), ("other", {"read": ["theirs"]})):
        r = requests.post(f"{api}/tokens/{name}", headers=init, json={"permissions": perms})
        tokens[name] = {"Authorization": f"Bearer {r.json()['value']}"}
    r = _create(api, "theirs", headers=tokens["reader"])
    assert _err(r) == (403, "Token 'reader' doesn't have read access to bucket 'theirs'")
    assert requests.post(f"{api}/links/x.bin", json={"bucket": "mine"}).status_code == 401
    mine = _link(api, "mine", headers=tokens["reader"])
    assert "i=reader&" in mine["link"]
    theirs = _link(api, "theirs", headers=tokens["other"])
    assert requests.get(mine["link"]).status_code == 200                         # download: anonymous
    ids = lambda h: {x["id"] for x in requests.get(f"{api}/links", headers=h).json()["links"]}  # noqa: E731
    assert ids(tokens["reader"]) == {mine["id"]} and ids(init) == {mine["id"], theirs["id"]}
    assert requests.get(f"{api}/links").status_code == 401
    assert requests.get(f"{api}/links/{theirs['id']}", headers=tokens["reader"]).status_code == 403
    assert requests.get(f"{api}/links/{mine['id']}", headers=tokens["reader2"]).status_code == 200
    assert requests.delete(f"{api}/links/{mine['id']}", headers=tokens["reader2"]).status_code == 403
    assert requests.patch(f"{api}/links/{mine['id']}", headers=tokens["reader"], json={"max_downloads": 5}).status_code == 200
    assert requests.delete(f"{api}/links/{theirs['id']}", headers=init).status_code == 200
    # the issuer token goes away: so do its links (as upstream)
    assert requests.delete(f"{api}/tokens/reader", headers=init).status_code == 200
    # ... and their answer is the uniform one: it neither confirms the link nor names the token
    assert _err(requests.get(mine["link"])) == UNIFORM


# --- bundles --------------------------------------------------------------------------------------

def test_tar_bundle(server, bucket_name):
    api = server.api
    _seed(api, bucket_name)
    requests.post(f"{api}/b/{bucket_name}/cam/sub?ts=5", data=b"nested", headers={"content-type": "text/csv"})
    doc = _link(api, bucket_name, file_name="all.tar", record_entry=None, record_timestamp=None,
                query={"query_type": "QUERY", "entries": ["cam", "cam/sub"]})
    r = requests.get(doc["link"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["content-disposition"] == 'attachment; filename="all.tar"'
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        names = tar.getnames()
        assert names == ["cam/sub/5.csv", "cam/1000.png", "cam/1001.txt", "cam/1002.json"]
        assert tar.extractfile("cam/1000.png").read() == PAYLOAD
        assert tar.extractfile("cam/sub/5.csv").read() == b"nested"
    whole = r.content
    r = requests.get(doc["link"], headers={"Range": "bytes=700-2999"})
    assert r.status_code == 206 and r.content == whole[700:3000]
    r = requests.get(doc["link"], headers={"Range": f"bytes=-{len(whole) - 10}"})
    assert r.content == whole[10:]


# --- persistence and the key ----------------------------------------------------------------------

def test_restart_keeps_links_counters_and_key(make_server, tmp_path):
    data = tmp_path / "persist"
    srv = make_server(data_path=data, auth=NO_AUTH)
    key_file = data / ".edge" / "link.key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    api = srv.api
    _seed(api, "keep")
    doc = _link(api, "keep", max_downloads=2)
    assert requests.get(doc["link"]).status_code == 200
    srv.stop()
    srv.start()
    assert key_file.read_bytes() == key
    shown = requests.get(f"{srv.api}/links/{doc['id']}").json()
    assert shown["downloads"] == 1 and len(shown["receipts"]) == 1
    assert requests.get(doc["link"]).status_code == 200
    assert _err(requests.get(doc["link"])) == UNIFORM
    srv.stop()
    log = srv.log_path.read_bytes()
    for form in (key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")):
        assert form not in log
    ct = urllib.parse.parse_qs(urllib.parse.urlsplit(doc["link"]).query)["ct"][0]
    assert ct.encode() not in log
    for path in (data / ".edge" / "links").iterdir():
        assert ct.encode() not in path.read_bytes()


@pytest.mark.parametrize("bad", [b"short", b"x" * 33, "flip"])
def test_damaged_key_is_set_aside_and_old_links_say_so(make_server, tmp_path, bad):
    data = tmp_path / "bad"
    srv = make_server(data_path=data, auth=NO_AUTH)
    _seed(srv.api, "k")
    doc = _link(srv.api, "k")
    assert requests.get(doc["link"]).status_code == 200
    srv.stop()
    key_file = data / ".edge" / "link.key"
    if bad == "flip":
        raw = bytearray(key_file.read_bytes())
        raw[-3] ^= 0x10
        bad = bytes(raw)
    key_file.write_bytes(bad)
    srv.start()                                          # never kept down by a damaged key
    r = requests.get(doc["link"])
    assert r.status_code == 404 and "key found damaged" in r.headers["x-reduct-error"]
    new = _link(srv.api, "k")                            # new links work under the new key
    assert requests.get(new["link"]).status_code == 200
    kept = [p for p in key_file.parent.iterdir() if p.name.startswith("link.key.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == bad
    assert "link.key" in srv.log() and "damaged" in srv.log()


