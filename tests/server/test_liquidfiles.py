"""The LiquidFiles FileLink API over real HTTP: the vendor's shell examples replayed with real
bash + curl + jq (only the server changed; the vendor's example key is the server's token), and
Python ``requests`` scripts written from the spec (``/work/shared/spec/sharing-apis.md`` §2)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import pytest
import requests

from tests.server.sharing_helpers import SPEC_KEY, needs_tools, run_script
from tests.server.test_share_mail import FAST, Sink, relay  # noqa: F401  (relay is a fixture)
from tests.helpers import NO_AUTH, token_auth

AUTH = (SPEC_KEY, "x")
LINK_FIELDS = {"id", "filename", "size", "size_human", "expires_at", "send_download_confirmation",
               "require_authentication", "url", "created_at", "updated_at"}
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
UNIFORM_JSON = {"errors": ["Link not found or has expired"]}
HTML = {"Accept": "text/html,application/xhtml+xml"}

CREATE_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
# Uploading the actual file and get attachment id for the file
attachment_id=`curl -X POST -H "Accept: application/json" --user "$api_key:x" --data-binary @bigfile.zip $server/link/attachments/upload | jq .attachment.id`
# Create the FileLink
cat <<EOF | curl -s -X POST --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" -d @- $server/link
{"link": {"attachment":"$attachment_id"} }
EOF
'''
LIST_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
curl -X GET --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" $server/link?limit=2
'''
DELETE_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
curl -X DELETE --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" $server/link/tzMNVK0sbpXFFlld65s4Ly
'''
UPDATE_AUTH_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
curl -X PUT --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" -d '{"require_authentication":false}' $server/link/tzMNVK0sbpXFFlld65s4Ly/update_authentication
'''
UPDATE_RECEIPT_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
curl -X PUT --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" -d '{"send_download_confirmation":false}' $server/link/tzMNVK0sbpXFFlld65s4Ly/update_download_confirmation
'''
UPDATE_EXPIRY_EXAMPLE = r'''#!/bin/bash
# Some nice variables
api_key="Y9fdTmZdv0THButt5ZONIY"
server="https://liquidfiles.example.com"
curl -X PUT --user "$api_key:x" -H "Accept: application/json" -H "Content-Type: application/json" -d '{"expires_at":"2015-04-18"}' $server/link/tzMNVK0sbpXFFlld65s4Ly/update_expires_at
'''
EXAMPLE_ID = "tzMNVK0sbpXFFlld65s4Ly"


@pytest.fixture(scope="module")
def lf(tmp_path_factory):
    from tests.helpers import EdgeProcess

    proc = EdgeProcess(tmp_path_factory.mktemp("lf") / "data", auth=token_auth(SPEC_KEY)).start()
    yield proc
    proc.stop()


def _upload(srv, data: bytes, **params) -> dict:
    r = requests.post(f"{srv.url}/link/attachments/upload", params=params, data=data, auth=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _link(srv, attachment, **fields) -> dict:
    r = requests.post(f"{srv.url}/link", json={"link": {"attachment": attachment, **fields}}, auth=AUTH,
                      headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["link"]


def _check_link_shape(link: dict) -> None:
    assert set(link) == LINK_FIELDS
    assert isinstance(link["id"], str) and isinstance(link["size"], int)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", link["expires_at"])
    assert ISO_MS.fullmatch(link["created_at"]) and ISO_MS.fullmatch(link["updated_at"])
    assert link["url"].endswith("/link/" + link["id"])


# --- the vendor's shell examples, replayed ---------------------------------------------------------

@needs_tools
def test_spec_shell_examples_with_curl(lf, tmp_path):
    data = b"PK\x03\x04" + os.urandom(300_000)
    (tmp_path / "bigfile.zip").write_bytes(data)
    out = run_script(tmp_path, "create", CREATE_EXAMPLE, server=lf.url)
    link = json.loads(out)["link"]
    _check_link_shape(link)
    assert link["size"] == len(data) and link["size_human"] == "293 KB"
    assert link["send_download_confirmation"] is True and link["require_authentication"] is False
    got = requests.get(link["url"], timeout=10)                       # a script: the file itself
    assert got.status_code == 200 and got.content == data and got.headers["content-type"] == "application/zip"
    second = _link(lf, _upload(lf, b"second")["attachment"]["id"])
    listed = json.loads(run_script(tmp_path, "list", LIST_EXAMPLE, server=lf.url))["links"]
    assert [x["id"] for x in listed] == [second["id"], link["id"]]    # newest first, limit=2
    for x in listed:
        _check_link_shape(x)

    # The update and delete examples name a FileLink id the server has never seen: 404 ...
    for name, example in (("delete", DELETE_EXAMPLE), ("auth", UPDATE_AUTH_EXAMPLE),
                          ("receipt", UPDATE_RECEIPT_EXAMPLE), ("expiry", UPDATE_EXPIRY_EXAMPLE)):
        assert json.loads(run_script(tmp_path, f"{name}-unknown", example, server=lf.url)) == \
            {"errors": [f"FileLink '{EXAMPLE_ID}' not found"]}
    # ... and the same commands for a real id (the only other change) do what they say.
    fresh = _link(lf, _upload(lf, b"third")["attachment"]["id"], require_authentication=True)
    real = lambda ex: ex.replace(EXAMPLE_ID, fresh["id"])  # noqa: E731
    assert json.loads(run_script(tmp_path, "auth", real(UPDATE_AUTH_EXAMPLE), server=lf.url))["link"][
        "require_authentication"] is False
    assert json.loads(run_script(tmp_path, "receipt", real(UPDATE_RECEIPT_EXAMPLE), server=lf.url))["link"][
        "send_download_confirmation"] is False
    updated = json.loads(run_script(tmp_path, "expiry", real(UPDATE_EXPIRY_EXAMPLE), server=lf.url))["link"]
    assert updated["expires_at"] == "2015-04-18" and updated["updated_at"] >= updated["created_at"]
    assert requests.get(fresh["url"], timeout=10).json() == UNIFORM_JSON   # expired now
    run_script(tmp_path, "delete", real(DELETE_EXAMPLE), server=lf.url)
    assert fresh["id"] not in {x["id"] for x in requests.get(f"{lf.url}/link", auth=AUTH, timeout=10).json()["links"]}
    r = requests.delete(f"{lf.url}/link/{fresh['id']}", auth=AUTH, timeout=10)
    assert r.status_code == 404


# --- a requests script written from the spec ---------------------------------------------------------

def test_requests_script_from_the_spec(lf):
    """What a script author does with the vendor page in front of them."""
    api_key, server = SPEC_KEY, lf.url
    data = os.urandom(200_000)
    pieces = [data[:70_000], data[70_000:140_000], data[140_000:]]
    answers = []
    for i, piece in enumerate(pieces):
        r = requests.post(f"{server}/link/attachments/upload",
                          params={"filename": "screenshot.png", "chunks": 3, "chunk": i},
                          data=piece, auth=(api_key, "x"), headers={"Accept": "application/json"}, timeout=30)
        assert r.status_code == 200, r.text
        answers.append(r.json())
    attachment = answers[-1]["attachment"]
    assert set(attachment) == {"id", "filename", "size", "content_type", "checksum", "created_at"}
    assert attachment["filename"] == "screenshot.png" and attachment["size"] == len(data)
    assert attachment["checksum"] == hashlib.sha256(data).hexdigest() and ISO_MS.fullmatch(attachment["created_at"])
    body = {"link": {"attachment": str(attachment["id"]), "expires_at": "2099-01-01", "download_receipt": True,
                     "require_authentication": True}}
    r = requests.post(f"{server}/link", json=body, auth=(api_key, "x"), headers={"Accept": "application/json"},
                      timeout=10)
    assert r.status_code == 200, r.text
    link = r.json()["link"]
    _check_link_shape(link)
    assert link["expires_at"] == "2099-01-01" and link["require_authentication"] is True
    assert link["send_download_confirmation"] is True and link["size_human"] == "195 KB"
    # the link requires authentication: anonymous callers get what a missing link gets
    assert requests.get(link["url"], timeout=10).json() == UNIFORM_JSON
    got = requests.get(link["url"], auth=(api_key, "x"), timeout=10)
    assert got.status_code == 200 and got.content == data
    part = requests.get(link["url"], auth=(api_key, "x"), headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == data[10:20]
    listed = requests.get(f"{server}/link", params={"limit": 1}, auth=(api_key, "x"), timeout=10).json()["links"]
    assert [x["id"] for x in listed] == [link["id"]]
    for path, payload, key in (("update_authentication", {"require_authentication": False}, "require_authentication"),
                               ("update_download_confirmation", {"send_download_confirmation": False},
                                "send_download_confirmation"),
                               ("update_expires_at", {"expires_at": "2098-12-31"}, "expires_at")):
        r = requests.put(f"{server}/link/{link['id']}/{path}", json=payload, auth=(api_key, "x"), timeout=10)
        assert r.status_code == 200 and r.json()["link"][key] == payload[key], r.text
        assert requests.put(f"{server}/link/nope-nope-nope-nope/{path}", json=payload, auth=(api_key, "x"),
                            timeout=10).status_code == 404
        assert requests.put(f"{server}/link/{link['id']}/{path}", json={key: "yes please"}, auth=(api_key, "x"),
                            timeout=10).status_code == 422
    assert requests.get(link["url"], timeout=10).content == data     # public now
    assert requests.delete(f"{server}/link/{link['id']}", auth=(api_key, "x"), timeout=10).status_code == 200
    assert requests.delete(f"{server}/link/{link['id']}", auth=(api_key, "x"), timeout=10).status_code == 404
    assert requests.get(link["url"], timeout=10).json() == UNIFORM_JSON


# --- uploads ----------------------------------------------------------------------------------------

def test_pieces_in_any_order_with_retries(lf):
    data = os.urandom(90_000)
    p = [data[i * 30_000:(i + 1) * 30_000] for i in range(3)]
    up = lambda i, d: _upload(lf, d, filename="mixed.bin", chunks=3, chunk=i)  # noqa: E731
    assert up(2, p[2]) == {"chunk": {"filename": "mixed.bin", "chunk": 2, "chunks": 3, "received": 1}}
    assert up(0, b"garbage that a retry replaces")["chunk"]["received"] == 2
    assert up(0, p[0])["chunk"]["received"] == 2                        # retried piece: replaced
    done = up(1, p[1])["attachment"]
    assert done["size"] == len(data) and done["checksum"] == hashlib.sha256(data).hexdigest()
    again = up(1, p[1])                                                  # the last answer got lost: retry
    assert again["attachment"] == done
    r = requests.get(f"{lf.api}/b/attachments/files", params={"ts": done["id"]},
                     headers={"Authorization": f"Bearer {SPEC_KEY}"}, timeout=10)
    assert r.content == data and r.headers["x-reduct-label-filename"] == "mixed.bin"
    # the same file uploaded again later, differently: a new attachment, never a mix of the two
    other = os.urandom(90_000)
    q = [other[i * 30_000:(i + 1) * 30_000] for i in range(3)]
    up(0, q[0]), up(1, q[1])
    fresh = up(2, q[2])["attachment"]
    assert fresh["id"] != done["id"] and fresh["checksum"] == hashlib.sha256(other).hexdigest()


def test_multipart_and_content_types(lf):
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    r = requests.post(f"{lf.url}/link/attachments/upload", auth=AUTH, timeout=10,
                      files={"file": ("photo.png", png, "application/octet-stream")})
    a = r.json()["attachment"]
    assert a["filename"] == "photo.png" and a["content_type"] == "image/png" and a["size"] == len(png)
    r = requests.post(f"{lf.url}/link/attachments/upload", auth=AUTH, timeout=10,
                      data={"filename": "named.txt", "chunks": "1", "chunk": "0"},
                      files={"file": ("ignored.bin", b"hello", "text/plain")})
    a = r.json()["attachment"]
    assert (a["filename"], a["content_type"]) == ("named.txt", "text/plain")
    # header first, then the parameter, then the bytes
    assert _upload(lf, png, filename="a", content_type="text/csv")["attachment"]["content_type"] == "text/csv"
    r = requests.post(f"{lf.url}/link/attachments/upload", params={"filename": "b", "content_type": "text/csv"},
                      data=png, headers={"Content-Type": "image/x-custom"}, auth=AUTH, timeout=10)
    assert r.json()["attachment"]["content_type"] == "image/x-custom"
    assert _upload(lf, b'{"a": [1, 2]}', filename="c")["attachment"]["content_type"] == "application/json"
    empty = _upload(lf, b"")["attachment"]
    assert (empty["filename"], empty["size"], empty["content_type"]) == ("attachment.bin", 0, "application/x-empty")


@pytest.mark.parametrize("params, status, text", [
    ({"filename": "x", "foo": "1"}, 422, "Unknown parameter 'foo'"),
    ({"chunks": "2"}, 422, "'chunk' is required when 'chunks' is set"),
    ({"chunk": "0"}, 422, "'chunk' needs 'chunks'"),
    ({"chunks": "2", "chunk": "2"}, 422, "'chunk' must be between 0 and 1"),
    ({"chunks": "0", "chunk": "0"}, 422, "'chunks' must be an integer from 1"),
    ({"chunks": "x", "chunk": "0"}, 422, "'chunks' must be an integer"),
    ({"content_type": "not a type"}, 422, "Invalid 'content_type' parameter"),
])
def test_upload_errors_are_clear(lf, params, status, text):
    r = requests.post(f"{lf.url}/link/attachments/upload", params=params, data=b"abc", auth=AUTH, timeout=10)
    assert r.status_code == status and text in r.json()["errors"][0], r.text


def test_authentication_errors(lf):
    for auth in (None, ("wrong-key", "x")):
        for method, path in (("POST", "link"), ("GET", "link"), ("POST", "link/attachments/upload"),
                             ("DELETE", f"link/{EXAMPLE_ID}"), ("PUT", f"link/{EXAMPLE_ID}/update_expires_at")):
            r = requests.request(method, f"{lf.url}/{path}", auth=auth, timeout=10, data=b"{}")
            assert r.status_code == 401 and r.json()["errors"], (method, path, r.text)
            assert r.headers["www-authenticate"].startswith("Basic ")


def test_create_refuses_what_it_cannot_honour(lf, make_server):
    att = _upload(lf, b"payload")["attachment"]["id"]
    post = lambda body: requests.post(f"{lf.url}/link", json=body, auth=AUTH, timeout=10)  # noqa: E731
    for body, text in (({"link": {"attachment": att, "max_downloads": 3}}, "Unknown parameter 'max_downloads'"),
                       ({"link": {"attachment": att}, "limit": 1}, "Unknown parameter 'limit'"),
                       ({"link": {"attachment": "fHbIuSIou38Txc0jVrobEp"}}, "Asset 'fHbIuSIou38Txc0jVrobEp' not found"),
                       ({"link": {"attachment": "999"}}, "Asset '999' not found"),
                       ({"link": {"attachment": att, "expires_at": "2017-13-01"}}, "'expires_at' must be a date"),
                       ({"link": {"attachment": att, "require_authentication": "yes"}}, "'require_authentication'"),
                       ({"link": {"attachment": att, "password": ""}}, "'password' must be a non-empty string"),
                       ({"link": {}}, "Missing parameter 'attachment'"),
                       ({}, "Missing parameter 'link'"),
                       ([1], "Invalid JSON")):
        r = post(body)
        assert r.status_code == 422 and text in r.json()["errors"][0], (body, r.text)
    # the vendor's own example request (an expiry in the past makes an expired link)
    r = post({"link": {"attachment": str(att), "expires_at": "2017-01-01", "download_receipt": True,
                       "require_authentication": True}})
    assert r.status_code == 200 and r.json()["link"]["expires_at"] == "2017-01-01"
    # a server without authentication cannot honour require_authentication: it says so
    open_srv = make_server(auth=NO_AUTH)
    att2 = requests.post(f"{open_srv.url}/link/attachments/upload", data=b"x", timeout=10).json()["attachment"]["id"]
    r = requests.post(f"{open_srv.url}/link", json={"link": {"attachment": att2, "require_authentication": True}},
                      timeout=10)
    assert r.status_code == 422 and "require_authentication" in r.json()["errors"][0]
    link = requests.post(f"{open_srv.url}/link", json={"link": {"attachment": att2}}, timeout=10).json()["link"]
    r = requests.put(f"{open_srv.url}/link/{link['id']}/update_authentication", json={"require_authentication": True},
                     timeout=10)
    assert r.status_code == 422                                   # "not permitted"


def test_any_record_can_be_a_filelink(lf):
    assert requests.post(f"{lf.api}/b/cams", auth=None, headers={"Authorization": f"Bearer {SPEC_KEY}"},
                         timeout=10).status_code == 200
    r = requests.post(f"{lf.api}/b/cams/front/left", params={"ts": 1234}, data=b"frame",
                      headers={"Authorization": f"Bearer {SPEC_KEY}", "Content-Type": "image/jpeg"}, timeout=10)
    assert r.status_code == 200
    link = _link(lf, "cams/front/left/1234")
    assert link["filename"] == "front_left_1234.jpg" and link["size"] == 5
    assert requests.get(link["url"], timeout=10).content == b"frame"


# --- the link URL: page, form, password, authentication -----------------------------------------------

def test_browser_page_form_and_password(lf):
    data = os.urandom(3000)
    link = _link(lf, _upload(lf, data, filename="report.pdf")["attachment"]["id"], password="open sesame")
    missing = f"{lf.url}/link/{'Z' * 22}"
    # no password: exactly what a missing link answers, for a browser and for a script
    for headers in (HTML, {"Accept": "application/json"}):
        a, b = requests.get(link["url"], headers=headers, timeout=10), requests.get(missing, headers=headers, timeout=10)
        assert (a.status_code, a.content, a.headers["content-type"]) == (b.status_code, b.content, b.headers["content-type"])
        assert a.status_code == 404
    page = requests.get(link["url"], headers=HTML, timeout=10).text
    assert 'name="password"' in page and 'method="post"' in page and "report.pdf" not in page
    # the form: a wrong password is the uniform page again, the right one leads to the file
    wrong = requests.post(link["url"], data={"password": "nope"}, headers=HTML, timeout=10, allow_redirects=False)
    assert wrong.status_code == 404 and wrong.content == requests.get(missing, headers=HTML, timeout=10).content
    ok = requests.post(link["url"], data={"password": "open sesame"}, headers=HTML, timeout=10, allow_redirects=False)
    assert ok.status_code == 303 and "?ticket=" in ok.headers["location"] and "sesame" not in ok.headers["location"]
    got = requests.get(ok.headers["location"], timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    # scripts: Basic password, or the password parameter
    assert requests.get(link["url"], auth=("anyone", "open sesame"), timeout=10).content == data
    assert requests.get(link["url"], params={"password": "open sesame"}, timeout=10).content == data
    # a public link: the page names the file and its download button works
    public = _link(lf, _upload(lf, b"public bytes", filename="notes.txt")["attachment"]["id"])
    page = requests.get(public["url"], headers=HTML, timeout=10)
    assert page.status_code == 200 and "notes.txt" in page.text and "default-src 'none'" in page.headers[
        "content-security-policy"]
    href = re.search(r'href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert requests.get(href, timeout=10).content == b"public bytes"
    assert requests.get(public["url"], params={"download": 1}, headers=HTML, timeout=10).content == b"public bytes"
    assert requests.head(public["url"], timeout=10).headers["content-length"] == str(len(b"public bytes"))


def test_require_authentication_needs_a_reader(lf):
    admin = {"Authorization": f"Bearer {SPEC_KEY}"}
    keys = {}
    for name, perms in (("att-reader", {"read": ["attachments"]}), ("cam-only", {"read": ["cams"]})):
        r = requests.post(f"{lf.api}/tokens/{name}", headers=admin, json={"permissions": perms}, timeout=10)
        keys[name] = r.json()["value"]
    link = _link(lf, _upload(lf, b"secret", filename="s.bin")["attachment"]["id"], require_authentication=True)
    missing = f"{lf.url}/link/{'Y' * 22}"
    uniform = requests.get(missing, timeout=10)
    for kwargs in ({}, {"auth": ("not-a-token", "x")}, {"auth": (keys["cam-only"], "x")},
                   {"headers": {"X-API-KEY": "wrong"}}):
        r = requests.get(link["url"], timeout=10, **kwargs)
        assert (r.status_code, r.content) == (uniform.status_code, uniform.content), kwargs
    for kwargs in ({"auth": (keys["att-reader"], "x")}, {"headers": {"X-API-KEY": keys["att-reader"]}},
                   {"headers": {"Authorization": f"Bearer {keys['att-reader']}"}}):
        assert requests.get(link["url"], timeout=10, **kwargs).content == b"secret", kwargs
    form = requests.post(link["url"], data={"api_key": keys["att-reader"]}, headers=HTML, allow_redirects=False,
                         timeout=10)
    assert form.status_code == 303 and requests.get(form.headers["location"], timeout=10).content == b"secret"


def test_receipts_follow_the_switch(make_server, relay):  # noqa: F811
    sink = Sink()
    r = relay(sink)
    srv = make_server({"EDGE_SMTP_HOST": "127.0.0.1", "EDGE_SMTP_PORT": str(r.port),
                       "EDGE_SMTP_SECURITY": "none", "EDGE_RECEIPT_TO": "owner@example.com", **FAST},
                      auth=token_auth(SPEC_KEY))
    on = _link(srv, _upload(srv, b"with receipt", filename="on.txt")["attachment"]["id"])
    off = _link(srv, _upload(srv, b"no receipt", filename="off.txt")["attachment"]["id"], download_receipt=False)
    later = _link(srv, _upload(srv, b"turned off", filename="later.txt")["attachment"]["id"])
    r2 = requests.put(f"{srv.url}/link/{later['id']}/update_download_confirmation",
                      json={"send_download_confirmation": False}, auth=AUTH, timeout=10)
    assert r2.json()["link"]["send_download_confirmation"] is False
    for link in (on, off, later):
        assert requests.get(link["url"], timeout=10).status_code == 200
    mails = sink.wait(1)
    time.sleep(2.5)                                              # the receipt window (1.5 s) twice over
    assert len(sink.messages) == 1 and mails[0]["rcpt"] == ["owner@example.com"]
    assert "on.txt" in mails[0]["msg"]["Subject"]


def test_who_may_see_change_and_delete(lf):
    admin = {"Authorization": f"Bearer {SPEC_KEY}"}
    keys = {}
    for name, perms in (("lf-reader", {"read": ["attachments"]}), ("lf-stranger", {"read": ["elsewhere"]}),
                        ("lf-writer", {"read": ["attachments"], "write": ["attachments"]})):
        keys[name] = (requests.post(f"{lf.api}/tokens/{name}", headers=admin, json={"permissions": perms},
                                    timeout=10).json()["value"], "x")
    r = requests.post(f"{lf.url}/link/attachments/upload", data=b"x", auth=keys["lf-reader"], timeout=10)
    assert r.status_code == 422 and "write access" in r.json()["errors"][0]       # the vendor's "not permitted"
    att = requests.post(f"{lf.url}/link/attachments/upload", data=b"mine", auth=keys["lf-writer"],
                        timeout=10).json()["attachment"]["id"]
    mine = requests.post(f"{lf.url}/link", json={"link": {"attachment": att}}, auth=keys["lf-writer"],
                         timeout=10).json()["link"]
    seen = lambda key: {x["id"] for x in requests.get(f"{lf.url}/link", auth=key, timeout=10).json()["links"]}  # noqa: E731
    assert mine["id"] in seen(keys["lf-reader"]) and mine["id"] not in seen(keys["lf-stranger"])
    assert requests.delete(f"{lf.url}/link/{mine['id']}", auth=keys["lf-stranger"], timeout=10).status_code == 404
    for call in (lambda k: requests.put(f"{lf.url}/link/{mine['id']}/update_expires_at", json={"expires_at": "2099-01-01"},
                                        auth=k, timeout=10),
                 lambda k: requests.delete(f"{lf.url}/link/{mine['id']}", auth=k, timeout=10)):
        r = call(keys["lf-reader"])
        assert r.status_code == 422 and "only its creator" in r.json()["errors"][0]     # "not permitted"
        assert call(keys["lf-writer"]).status_code == 200
    r = requests.post(f"{lf.url}/link", json={"link": {"attachment": att}}, auth=keys["lf-stranger"], timeout=10)
    assert r.status_code == 422 and "read access" in r.json()["errors"][0]
