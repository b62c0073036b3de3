"""tus 1.0 over raw HTTP against a real `edge serve`: every refusal has its status and text, none is a 500."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
import requests
from tests.helpers import NO_AUTH, token_auth

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def meta(**pairs: str) -> str:
    return ",".join(f"{k.replace('_', '-')} {b64(v)}" for k, v in pairs.items())


def check(resp: requests.Response, status: int, text: str | None = None) -> requests.Response:
    assert resp.status_code != 500, resp.headers
    assert resp.status_code == status, (resp.status_code, resp.headers.get("x-reduct-error"))
    if text is not None:
        assert text in resp.headers.get("x-reduct-error", ""), resp.headers.get("x-reduct-error")
    return resp


def make_bucket(srv, name, **settings):
    check(requests.post(f"{srv.api}/b/{name}", json=settings), 200)


def create(srv, bucket, length, headers=None, data=None, **metadata) -> requests.Response:
    metadata = {"bucket": bucket, "entry": "files", **metadata}
    h = {**TUS, "Upload-Length": str(length), "Upload-Metadata": meta(**metadata), **(headers or {})}
    return requests.post(f"{srv.api}/uploads", headers=h, data=data)


def patch(url, offset, data, headers=None) -> requests.Response:
    return requests.patch(url, headers={**TUS, **OCTET, "Upload-Offset": str(offset), **(headers or {})}, data=data)


def head(url, headers=None) -> requests.Response:
    return requests.head(url, headers={**TUS, **(headers or {})})


def test_options_discovery_needs_no_token(server):
    r = check(requests.options(f"{server.api}/uploads"), 204)
    assert r.headers["Tus-Version"] == "1.0.0" and r.headers["Tus-Resumable"] == "1.0.0"
    assert r.headers["Tus-Extension"] == "creation,creation-with-upload,termination,expiration,checksum"
    assert int(r.headers["Tus-Max-Size"]) > 1 << 30
    assert r.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"


def test_upload_in_chunks_becomes_one_record(server, bucket_name):
    make_bucket(server, bucket_name)
    payload = bytes(range(256)) * 10_000
    r = check(create(server, bucket_name, len(payload), ts="1000", filetype="video/mp4", filename="clip.mp4",
                     label_camera="front"), 201)
    url = r.headers["Location"]
    assert url.startswith(f"{server.api}/uploads/") and r.headers["Upload-Offset"] == "0"
    assert "GMT" in r.headers["Upload-Expires"] and r.headers["Tus-Resumable"] == "1.0.0"
    offset = 0
    for start in range(0, len(payload), 1_000_000):
        chunk = payload[start:start + 1_000_000]
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        r = check(patch(url, offset, chunk, {"Upload-Checksum": f"sha256 {digest}"}), 204)
        offset = int(r.headers["Upload-Offset"])
        if offset < len(payload):   # nothing visible before the last byte
            check(requests.get(f"{server.api}/b/{bucket_name}/files?ts=1000"), 404)
    assert offset == len(payload)
    r = check(head(url), 200)
    assert r.headers["Upload-Offset"] == r.headers["Upload-Length"] == str(len(payload))
    assert r.headers["Cache-Control"] == "no-store"
    rec = check(requests.get(f"{server.api}/b/{bucket_name}/files?ts=1000"), 200)
    assert rec.content == payload and rec.headers["Content-Type"] == "video/mp4"
    assert rec.headers["x-reduct-label-filename"] == "clip.mp4" and rec.headers["x-reduct-label-camera"] == "front"


def test_creation_with_upload(server, bucket_name):
    make_bucket(server, bucket_name)
    r = check(create(server, bucket_name, 5, headers=OCTET, data=b"hello", ts="7"), 201)
    assert r.headers["Upload-Offset"] == "5"
    assert check(requests.get(f"{server.api}/b/{bucket_name}/files?ts=7"), 200).content == b"hello"
    # Partial first chunk: the client continues with PATCH at the reported offset.
    r = check(create(server, bucket_name, 10, headers=OCTET, data=b"hello", ts="8"), 201)
    assert r.headers["Upload-Offset"] == "5"
    check(patch(r.headers["Location"], 5, b"world"), 204)
    assert check(requests.get(f"{server.api}/b/{bucket_name}/files?ts=8"), 200).content == b"helloworld"


def test_default_ts_is_creation_time(server, bucket_name):
    make_bucket(server, bucket_name)
    before = time.time_ns() // 1000
    url = check(create(server, bucket_name, 3), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    rec = check(requests.get(f"{server.api}/b/{bucket_name}/files"), 200)
    assert before <= int(rec.headers["x-reduct-time"]) <= time.time_ns() // 1000


def test_checksum_mismatch_is_460_and_keeps_nothing(server, bucket_name):
    make_bucket(server, bucket_name)
    url = check(create(server, bucket_name, 10), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    wrong = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    check(patch(url, 3, b"defg", {"Upload-Checksum": f"sha1 {wrong}"}), 460,
          "Upload-Checksum (sha1) does not match the chunk")
    assert check(head(url), 200).headers["Upload-Offset"] == "3"
    check(patch(url, 3, b"defg", {"Upload-Checksum": "md5 AAAA"}), 400, "algorithm 'md5' is not supported")
    check(patch(url, 3, b"defghij"), 204)
    assert check(requests.get(f"{server.api}/b/{bucket_name}/files"), 200).content == b"abcdefghij"


def test_wrong_offset_is_409(server, bucket_name):
    make_bucket(server, bucket_name)
    url = check(create(server, bucket_name, 10), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    check(patch(url, 0, b"abc"), 409, "Upload-Offset 0 does not match the upload's offset 3")
    check(patch(url, 5, b"abc"), 409, "Upload-Offset 5 does not match the upload's offset 3")
    check(patch(url, 3, b"x" * 8), 400, "Upload-Length of 10 bytes exceeded")
    assert check(head(url), 200).headers["Upload-Offset"] == "3"


def test_protocol_refusals(server, bucket_name):
    make_bucket(server, bucket_name, quota_type="NONE")  # else 1 << 62 bytes is first "larger than the quota"
    url = check(create(server, bucket_name, 10), 201).headers["Location"]
    r = check(requests.head(url), 412)
    assert r.headers["Tus-Version"] == "1.0.0"
    check(requests.patch(url, headers={"Tus-Resumable": "0.2.2", **OCTET, "Upload-Offset": "0"}, data=b"a"), 412,
          "Tus-Resumable '0.2.2' is not supported")
    check(patch(url, 0, b"a", {"Content-Type": "application/octet-stream"}), 415,
          "Content-Type must be application/offset+octet-stream")
    check(patch(url, "-1", b"a"), 400, "Upload-Offset header must be a non-negative integer")
    check(requests.post(f"{server.api}/uploads", headers={**TUS, "Upload-Metadata": meta(bucket=bucket_name, entry="e")}),
          400, "Upload-Length header is required")
    check(create(server, bucket_name, 10, headers={"Upload-Defer-Length": "1", "Upload-Length": None}), 400,
          "Upload-Defer-Length is not supported")
    check(create(server, bucket_name, 1 << 62), 413, "exceeds the largest upload")


def test_method_override(server, bucket_name):
    make_bucket(server, bucket_name)
    url = check(create(server, bucket_name, 3), 201).headers["Location"]
    r = requests.post(url, data=b"abc", headers={**TUS, **OCTET, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"})
    assert check(r, 204).headers["Upload-Offset"] == "3"
    check(requests.post(url, headers={**TUS, "X-HTTP-Method-Override": "PUT"}), 405)
    url = check(create(server, bucket_name, 3), 201).headers["Location"]
    check(requests.post(url, headers={**TUS, "X-HTTP-Method-Override": "DELETE"}), 204)
    check(head(url), 404)


def test_unknown_upload_is_404(server):
    for url in (f"{server.api}/uploads/{'0' * 32}", f"{server.api}/uploads/not-an-id"):
        assert check(head(url), 404).headers["Tus-Resumable"] == "1.0.0"
        check(patch(url, 0, b"abc"), 404, "is not found")
        check(requests.delete(url, headers=TUS), 404, "is not found")


def test_termination(server, bucket_name):
    make_bucket(server, bucket_name)
    url = check(create(server, bucket_name, 10), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    check(requests.delete(url, headers=TUS), 204)
    check(head(url), 404)
    check(patch(url, 3, b"def"), 404)
    folder = server.data_path / ".edge" / "uploads" / url.rsplit("/", 1)[1]
    assert not folder.exists()
    check(requests.get(f"{server.api}/b/{bucket_name}/files"), 404)


@pytest.mark.parametrize("metadata,status,text", [
    ({"entry": "e"}, 400, "Upload-Metadata must contain 'bucket'"),
    ({"bucket": "BUCKET"}, 400, "Upload-Metadata must contain 'entry'"),
    ({"bucket": "BUCKET", "entry": "e", "ts": "noon"}, 400, "'ts' must be an unix timestamp in microseconds"),
    # what every stored record must satisfy (formats/metadata.py): 422 naming the key
    ({"bucket": "BUCKET", "entry": "bad entry"}, 422, "Upload-Metadata 'entry'"),
    ({"bucket": "BUCKET", "entry": "e", "label-a/b": "x"}, 422, "label name must be"),
    ({"bucket": "BUCKET", "entry": "e", "label-a": "x\r\ny"}, 422, "Upload-Metadata 'label-a'"),
    ({"bucket": "BUCKET", "entry": "e", "filetype": "text/\x00"}, 422, "Upload-Metadata 'filetype'"),
])
def test_bad_metadata_is_400_or_422(server, bucket_name, metadata, status, text):
    make_bucket(server, bucket_name)
    metadata = {k: v.replace("BUCKET", bucket_name) for k, v in metadata.items()}
    h = {**TUS, "Upload-Length": "3", "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in metadata.items())}
    check(requests.post(f"{server.api}/uploads", headers=h), status, text)


def test_bad_metadata_encoding_is_400(server):
    h = {**TUS, "Upload-Length": "3", "Upload-Metadata": "bucket %%%"}
    check(requests.post(f"{server.api}/uploads", headers=h), 400, "value of 'bucket' is not base64 of UTF-8 text")
    h["Upload-Metadata"] = "bucket YQ==,bucket YQ=="
    check(requests.post(f"{server.api}/uploads", headers=h), 400, "key 'bucket' appears twice")


def test_upload_into_a_meta_entry_follows_the_attachment_rules(server, bucket_name):
    """The $meta rules of every write (services/attachments.py): a key label, no remove=true
    (refused at creation, before a byte), and a second upload with the same key replaces the first."""
    make_bucket(server, bucket_name)
    check(create(server, bucket_name, 3, entry="e/$meta"), 422, "must contain label 'key'")
    check(create(server, bucket_name, 3, entry="e/$meta", label_key="k", label_remove="true"), 422,
          "label 'remove=true'")
    for ts, body in (("1", b"one"), ("2", b"two")):
        check(create(server, bucket_name, 3, headers=OCTET, data=body, entry="e/$meta", ts=ts, label_key="k"), 201)
    check(requests.get(f"{server.api}/b/{bucket_name}/e/$meta?ts=1"), 404)
    rec = check(requests.get(f"{server.api}/b/{bucket_name}/e/$meta?ts=2"), 200)
    assert rec.content == b"two" and rec.headers["x-reduct-label-key"] == "k"


def test_unknown_bucket_and_taken_timestamp(server, bucket_name):
    check(create(server, "no-such-bucket", 3), 404, "Bucket 'no-such-bucket' is not found")
    make_bucket(server, bucket_name)
    check(requests.post(f"{server.api}/b/{bucket_name}/files?ts=5", data=b"x"), 200)
    check(create(server, bucket_name, 3, ts="5"), 409, "A record with timestamp 5 already exists")


def test_quota_refusal_on_hard_bucket(server, bucket_name):
    make_bucket(server, bucket_name, quota_type="HARD", quota_size=10_000)
    check(create(server, bucket_name, 20_000), 400, f"Quota of '{bucket_name}' exceeded")
    url = check(create(server, bucket_name, 5_000, ts="1"), 201).headers["Location"]
    check(patch(url, 0, b"x" * 5_000), 204)
    check(create(server, bucket_name, 6_000, ts="2"), 400, f"Quota of '{bucket_name}' exceeded")


def test_cors_exposes_tus_headers(make_server):
    srv = make_server({"RS_CORS_ALLOW_ORIGIN": "https://app.example"}, auth=NO_AUTH)
    make_bucket(srv, "b")
    r = check(create(srv, "b", 3, headers={"Origin": "https://app.example"}), 201)
    exposed = ",".join(r.headers.get("Access-Control-Expose-Headers", "").split(", "))
    for name in ("Upload-Offset", "Location", "Upload-Length", "Tus-Version", "Tus-Resumable", "Tus-Max-Size",
                 "Tus-Extension", "Upload-Metadata", "Upload-Expires"):
        assert name in exposed
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    # A browser's pre-flight is answered by the app, not as tus discovery.
    pre = requests.options(f"{srv.api}/uploads", headers={"Origin": "https://app.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and "Tus-Version" not in pre.headers


def test_base_path_in_location(make_server):
    srv = make_server({"RS_API_BASE_PATH": "/edge"}, auth=NO_AUTH)
    make_bucket(srv, "b")
    url = check(create(srv, "b", 3), 201).headers["Location"]
    assert url.startswith(f"{srv.url}/edge/api/v1/uploads/")
    check(patch(url, 0, b"abc"), 204)


def test_expiry_by_the_reaper(make_server):
    srv = make_server({"EDGE_UPLOAD_EXPIRE_S": "1"}, auth=NO_AUTH)
    make_bucket(srv, "b")
    url = check(create(srv, "b", 10), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    folder = srv.data_path / ".edge" / "uploads" / url.rsplit("/", 1)[1]
    assert folder.exists()
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:   # nobody asks: only the reaper can delete it
        time.sleep(0.1)
    assert not folder.exists()
    check(head(url), 404, "is not found")


def test_limits_from_settings(make_server):
    srv = make_server({"EDGE_UPLOADS_MAX_ACTIVE": "1", "EDGE_UPLOAD_MAX_BYTES": "100"}, auth=NO_AUTH)
    make_bucket(srv, "b")
    assert check(requests.options(f"{srv.api}/uploads"), 204).headers["Tus-Max-Size"] == "100"
    check(create(srv, "b", 101), 413, "exceeds the largest upload of 100 bytes")
    check(create(srv, "b", 10, ts="1"), 201)
    check(create(srv, "b", 10, ts="2"), 429, "Too many uploads in progress (1)")


def test_permissions(make_server):
    srv = make_server(auth=token_auth("root-secret"))
    root = {"Authorization": "Bearer root-secret"}
    check(requests.post(f"{srv.api}/b/b", headers=root), 200)
    reader = check(requests.post(f"{srv.api}/tokens/reader", headers=root,
                                 json={"full_access": False, "read": ["b"], "write": []}), 200).json()["value"]
    writer = check(requests.post(f"{srv.api}/tokens/writer", headers=root,
                                 json={"full_access": False, "read": [], "write": ["b"]}), 200).json()["value"]
    # The same texts as the record API.
    rec_401 = requests.post(f"{srv.api}/b/b/e?ts=1", data=b"x").headers["x-reduct-error"]
    rec_403 = requests.post(f"{srv.api}/b/b/e?ts=1", data=b"x",
                            headers={"Authorization": f"Bearer {reader}"}).headers["x-reduct-error"]
    check(create(srv, "b", 3), 401, rec_401)
    check(create(srv, "b", 3, headers={"Authorization": "Bearer wrong"}), 401, "Invalid token")
    check(create(srv, "b", 3, headers={"Authorization": f"Bearer {reader}"}), 403, rec_403)
    url = check(create(srv, "b", 3, headers={"Authorization": f"Bearer {writer}"}), 201).headers["Location"]
    check(head(url), 401, rec_401)
    check(head(url, {"Authorization": f"Bearer {reader}"}), 403, rec_403)
    check(patch(url, 0, b"abc", {"Authorization": f"Bearer {reader}"}), 403, rec_403)
    check(requests.delete(url, headers={**TUS, "Authorization": f"Bearer {reader}"}), 403, rec_403)
    check(patch(url, 0, b"abc", {"Authorization": f"Bearer {writer}"}), 204)
    rec = check(requests.get(f"{srv.api}/b/b/files", headers={"Authorization": f"Bearer {reader}"}), 200)
    assert rec.content == b"abc"


def test_partial_upload_survives_restart(make_server, tmp_path):
    srv = make_server(auth=NO_AUTH)
    make_bucket(srv, "b")
    url = check(create(srv, "b", 6, ts="3", filename="f.bin"), 201).headers["Location"]
    check(patch(url, 0, b"abc"), 204)
    srv.kill()
    srv.start()
    assert check(head(url), 200).headers["Upload-Offset"] == "3"
    check(patch(url, 3, b"def"), 204)
    rec = check(requests.get(f"{srv.api}/b/b/files?ts=3"), 200)
    assert rec.content == b"abcdef" and rec.headers["x-reduct-label-filename"] == "f.bin"


def test_finished_upload_names_its_record(server, bucket_name):
    """The upload's last PATCH and a later HEAD say which record it became (the server chose the
    timestamp, so the client would otherwise have to query for it)."""
    api = server.api
    h = {"Tus-Resumable": "1.0.0"}
    assert requests.post(f"{api}/b/{bucket_name}").status_code == 200

    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"bucket": bucket_name, "entry": "drop"}.items())
    r = requests.post(f"{api}/uploads", headers={**h, "Upload-Length": "10", "Upload-Metadata": meta})
    assert r.status_code == 201
    loc = r.headers["location"]
    r = requests.patch(loc, data=b"01234", headers={**h, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and "x-reduct-time" not in r.headers           # not finished yet
    r = requests.patch(loc, data=b"56789", headers={**h, "Upload-Offset": "5", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204
    ts = r.headers["x-reduct-time"]
    assert r.headers["x-reduct-entry"] == "drop" and r.headers["x-reduct-bucket"] == bucket_name
    got = requests.get(f"{api}/b/{bucket_name}/drop?ts={ts}")
    assert got.content == b"0123456789"
    head = requests.head(loc, headers=h)
    assert head.headers["x-reduct-time"] == ts and head.headers["x-reduct-entry"] == "drop"
    # cross-origin tus clients (tus-js-client, Uppy) may read them
    r = requests.head(loc, headers={**h, "Origin": "http://example.com"})
    assert "x-reduct-time" in r.headers["access-control-expose-headers"].lower()
