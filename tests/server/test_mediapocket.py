"""Mediapocket shareable links (API v2) over real HTTP: the vendor's examples sent with real curl
(the spec's headers, ``X-API-KEY: YOUR_API_KEY`` being the server's token), and Python
``requests`` scripts written from the spec (``/work/shared/spec/sharing-apis.md`` §1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import requests

from tests.server.test_share_mail import FAST, Sink, relay  # noqa: F401  (relay is a fixture)
from tests.helpers import token_auth

KEY = "YOUR_API_KEY"
HEADERS = {"Content-Type": "application/json", "X-API-KEY": KEY}
ADMIN = {"Authorization": f"Bearer {KEY}"}
UNIFORM = {"error": "Link not found or has expired"}
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl missing (apt-get install -y curl)")


@pytest.fixture(scope="module")
def mp(tmp_path_factory):
    from tests.helpers import EdgeProcess

    proc = EdgeProcess(tmp_path_factory.mktemp("mp") / "data", auth=token_auth(KEY)).start()
    yield proc
    proc.stop()


def _record(srv, bucket: str, entry: str, ts: int, data: bytes, ctype: str = "image/jpeg") -> None:
    requests.post(f"{srv.api}/b/{bucket}", headers=ADMIN, timeout=10)
    r = requests.post(f"{srv.api}/b/{bucket}/{entry}", params={"ts": ts}, data=data,
                      headers={**ADMIN, "Content-Type": ctype}, timeout=10)
    assert r.status_code == 200, r.headers


def curl(method: str, url: str, body: dict | None = None, *extra: str) -> tuple[int, str, str]:
    """(status, headers, body) of one curl call with the spec's two headers."""
    args = ["curl", "-s", "-D", "-", "-X", method, "-H", "Content-Type: application/json", "-H", f"X-API-KEY: {KEY}",
            *extra, url]
    if body is not None:
        args[-1:-1] = ["-d", json.dumps(body, indent=2)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    head, _, text = out.partition("\n\n")                  # text mode turned CRLF into LF
    return int(head.split()[1]), head, text


@needs_curl
def test_spec_examples_with_curl(mp):
    # GET: "Shareable link not found"
    status, _, body = curl("GET", f"{mp.url}/api/v2/shareable_links/invalid_key")
    assert status == 404 and json.loads(body) == UNIFORM
    # POST: "With invalid parameters", verbatim
    status, _, body = curl("POST", f"{mp.url}/api/v2/shareable_links",
                           {"expiry_date": "2023-11-28", "limit": 5,
                            "payload": {"asset_id": "invalid_id", "filename": "test_file", "media_id": 5}})
    assert status == 400 and json.loads(body) == {"error": "asset not found"}
    # POST: "Successful request", with an asset of this server (its id and its number)
    _record(mp, "media", "cam/front", 1700000000000004, b"\xff\xd8\xff" + os.urandom(1000))
    status, _, body = curl("POST", f"{mp.url}/api/v2/shareable_links",
                           {"expiry_date": "2099-11-28", "limit": 5,
                            "payload": {"asset_id": "media/cam/front/1700000000000004", "filename": "test_file",
                                        "media_id": 1700000000000004}})
    assert status == 200, body
    created = json.loads(body)
    assert set(created) == {"id", "url", "filename"} and isinstance(created["id"], int)
    assert created["filename"] == "test_file"
    assert re.fullmatch(re.escape(mp.url) + r"/api/v2/shareable_links/[A-Za-z0-9_-]{22}", created["url"])
    # GET: "Successful request": 302 with the vendor's body, to the download
    status, head, body = curl("GET", created["url"])
    assert status == 302 and re.fullmatch(r'<html><body>You are being <a href="[^"]+">redirected</a>\.</body></html>',
                                          body)
    location = re.search(r"(?im)^location: (\S+)", head).group(1)
    assert body.split('"')[1].replace("&amp;", "&") == location
    # POST share: "With invalid parameters", verbatim (no mail needed to find no link)
    status, _, body = curl("POST", f"{mp.url}/api/v2/shareable_links/share",
                           {"message": "This is an optional test message",
                            "recipients": ["test1@testmail.test", "test2@testmail.test"],
                            "shareable_link_ids": ["invalid_id"]})
    assert status == 400 and json.loads(body) == {"error": "No shareable links found"}


def test_requests_script_from_the_spec(mp):
    """A script that shares an uploaded attachment: media_id alone names it."""
    up = requests.post(f"{mp.url}/link/attachments/upload", params={"filename": "clip.mp4"}, auth=(KEY, "x"),
                       data=b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000), timeout=10).json()["attachment"]
    payload = {"expiry_date": "2099-01-31", "limit": 2, "payload": {"media_id": up["id"], "filename": "clip.mp4"}}
    r = requests.post(f"{mp.url}/api/v2/shareable_links", json=payload, headers=HEADERS, timeout=10)
    assert r.status_code == 200, r.text
    link = r.json()
    same = {**payload, "payload": {**payload["payload"], "asset_id": str(up["id"])}}
    assert requests.post(f"{mp.url}/api/v2/shareable_links", json=same, headers=HEADERS, timeout=10).status_code == 200
    # each GET that redirects uses one of the `limit` downloads; the redirect target serves the file
    for _ in range(2):
        hop = requests.get(link["url"], headers=HEADERS, allow_redirects=False, timeout=10)
        assert hop.status_code == 302
        got = requests.get(hop.headers["location"], timeout=10)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4" and len(got.content) == up["size"]
        assert got.headers["content-disposition"] == 'attachment; filename="clip.mp4"'
        part = requests.get(hop.headers["location"], headers={"Range": "bytes=0-3"}, timeout=10)
        assert part.status_code == 206 and len(part.content) == 4       # the ticket: seeking is free
    r = requests.get(link["url"], headers=HEADERS, allow_redirects=False, timeout=10)
    assert r.status_code == 404 and r.json() == UNIFORM                  # used up
    listed = requests.get(f"{mp.api}/links", headers=ADMIN, timeout=10).json()["links"]
    row = next(x for x in listed if x["serial"] == link["id"])
    assert row["downloads"] == 2 and row["max_downloads"] == 2 and row["origin"] == "mediapocket"


@pytest.mark.parametrize("body, status, error", [
    ({"limit": 5, "payload": {"media_id": 1, "filename": "f"}}, 422, "Missing parameter 'expiry_date'"),
    ({"expiry_date": "2099-01-01", "payload": {"media_id": 1, "filename": "f"}}, 422, "Missing parameter 'limit'"),
    ({"expiry_date": "2099-01-01", "limit": 5}, 422, "Missing parameter 'payload'"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": {"filename": "f"}}, 422, "Missing parameter 'media_id'"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": {"media_id": 1}}, 422, "Missing parameter 'filename'"),
    ({"expiry_date": "2099-01-01", "limit": "5", "payload": {"media_id": 1, "filename": "f"}}, 422,
     "'limit' must be an integer"),
    ({"expiry_date": "2099-01-01", "limit": 0, "payload": {"media_id": 1, "filename": "f"}}, 422,
     "'limit' must be a positive integer"),
    ({"expiry_date": 20990101, "limit": 5, "payload": {"media_id": 1, "filename": "f"}}, 422,
     "'expiry_date' must be a non-empty string"),
    ({"expiry_date": "01/01/2099", "limit": 5, "payload": {"media_id": 1, "filename": "f"}}, 422,
     "'expiry_date' must be a date YYYY-MM-DD"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": {"media_id": "1", "filename": "f"}}, 422,
     "'payload[media_id]' must be an integer"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": [1]}, 422, "'payload' must be an object"),
    ({"expiry_date": "2099-01-01", "limit": 5, "password": "x", "payload": {"media_id": 1, "filename": "f"}}, 422,
     "Unknown parameter 'password'"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": {"media_id": 1, "filename": "f", "mediaid": 2}}, 422,
     "Unknown parameter 'mediaid' in 'payload'"),
    ({"expiry_date": "2099-01-01", "limit": 5, "payload": {"media_id": 1, "filename": "f"}}, 400, "asset not found"),
])
def test_create_errors(mp, body, status, error):
    r = requests.post(f"{mp.url}/api/v2/shareable_links", json=body, headers=HEADERS, timeout=10)
    assert r.status_code == status and r.json() == {"error": r.json()["error"]} and error in r.json()["error"], r.text


def test_media_id_must_name_the_same_asset(mp):
    _record(mp, "media2", "cam", 5000, b"frame")
    base = {"expiry_date": "2099-01-01", "limit": 1}
    for payload in ({"asset_id": "media2/cam/5000", "media_id": 5001, "filename": "f"},
                    {"asset_id": "media2/cam/5001", "media_id": 5001, "filename": "f"},
                    {"asset_id": "media2/nope/5000", "media_id": 5000, "filename": "f"},
                    {"asset_id": "nope/cam/5000", "media_id": 5000, "filename": "f"},
                    {"asset_id": "media2/cam/", "media_id": 5000, "filename": "f"}):
        r = requests.post(f"{mp.url}/api/v2/shareable_links", json={**base, "payload": payload}, headers=HEADERS,
                          timeout=10)
        assert (r.status_code, r.json()) == (400, {"error": "asset not found"}), payload
    ok = {"asset_id": "media2/cam/5000", "media_id": 5000, "filename": "f"}
    assert requests.post(f"{mp.url}/api/v2/shareable_links", json={**base, "payload": ok}, headers=HEADERS,
                         timeout=10).status_code == 200


def test_api_key_rules(mp):
    body = {"expiry_date": "2099-01-01", "limit": 1, "payload": {"media_id": 1, "filename": "f"}}
    for headers in ({"Content-Type": "application/json"}, {**HEADERS, "X-API-KEY": "wrong"}):
        for method, path, data in (("POST", "api/v2/shareable_links", body),
                                   ("POST", "api/v2/shareable_links/share", {"recipients": ["a@example.com"]})):
            r = requests.request(method, f"{mp.url}/{path}", json=data, headers=headers, timeout=10)
            assert r.status_code == 401 and set(r.json()) == {"error"}, (path, r.text)
    # GET <key>: a wrong key is a 401 whatever the link; no key is an anonymous download
    assert requests.get(f"{mp.url}/api/v2/shareable_links/x", headers={"X-API-KEY": "wrong"},
                        timeout=10).status_code == 401
    reader = requests.post(f"{mp.api}/tokens/media-reader", headers=ADMIN, json={"permissions": {"read": ["other"]}},
                           timeout=10).json()["value"]
    _record(mp, "media3", "cam", 7000, b"frame")
    r = requests.post(f"{mp.url}/api/v2/shareable_links", headers={**HEADERS, "X-API-KEY": reader}, timeout=10,
                      json={"expiry_date": "2099-01-01", "limit": 1,
                            "payload": {"asset_id": "media3/cam/7000", "media_id": 7000, "filename": "f"}})
    assert r.status_code == 403 and "read access" in r.json()["error"]


def test_share_by_mail(make_server, relay):  # noqa: F811
    sink = Sink()
    r = relay(sink)
    srv = make_server({"EDGE_SMTP_HOST": "127.0.0.1", "EDGE_SMTP_PORT": str(r.port),
                       "EDGE_SMTP_SECURITY": "none", **FAST}, auth=token_auth(KEY))
    _record(srv, "media", "cam", 1000, b"jpeg bytes")
    link = requests.post(f"{srv.url}/api/v2/shareable_links", headers=HEADERS, timeout=10, json={
        "expiry_date": "2099-01-01", "limit": 3,
        "payload": {"asset_id": "media/cam/1000", "media_id": 1000, "filename": "photo.jpg"}}).json()
    r = requests.post(f"{srv.url}/api/v2/shareable_links/share", headers=HEADERS, timeout=10, json={
        "message": "This is an optional test message", "recipients": ["test1@testmail.test", "test2@testmail.test"],
        "shareable_link_ids": [link["id"]]})
    assert (r.status_code, r.json()) == (200, {"message": "Shareable links sent"}), r.text
    mails = sink.wait(2)
    assert sorted(m["rcpt"][0] for m in mails) == ["test1@testmail.test", "test2@testmail.test"]
    text = mails[0]["msg"].get_body(("plain",)).get_content()
    assert "photo.jpg" in text and "This is an optional test message" in text
    url = re.search(r"https?://\S+/s/[A-Za-z0-9_-]+", text).group(0)
    assert requests.get(url, timeout=10).content == b"jpeg bytes"
    # without ids: the caller's own live links
    r = requests.post(f"{srv.url}/api/v2/shareable_links/share", headers=HEADERS, timeout=10,
                      json={"recipients": ["test3@testmail.test"]})
    assert r.status_code == 200
    for body, status in (({"shareable_link_ids": [link["id"]]}, 422),                     # recipients missing
                         ({"recipients": "a@b.c", "shareable_link_ids": [link["id"]]}, 422),
                         ({"recipients": ["not an address"], "shareable_link_ids": [link["id"]]}, 422),
                         ({"recipients": ["a@example.com"], "shareable_link_ids": 5}, 422),
                         ({"recipients": ["a@example.com"], "shareable_link_ids": [99999]}, 400),
                         ({"recipients": ["a@example.com"], "cc": ["x@example.com"]}, 422)):
        r = requests.post(f"{srv.url}/api/v2/shareable_links/share", headers=HEADERS, json=body, timeout=10)
        assert r.status_code == status and set(r.json()) == {"error"}, (body, r.text)
