"""Fuzzing the sharing APIs over HTTP: random bodies, parameters and headers at every Mediapocket
and LiquidFiles endpoint of a real server (auth on) never get a 500 and never kill it.

Bounded: a fixed number of requests from a seeded generator (the seed is printed on failure),
each with a timeout; the server log must hold no traceback at the end.
"""

from __future__ import annotations

import os
import random

import requests

from tests.helpers import EdgeProcess, token_auth

REQUESTS = 300
KEY = "fuzz-key"


def _junk(rnd: random.Random) -> object:
    return rnd.choice(["", "\x00", "../..", "a" * 5000, "%0d%0a", "ü", "1" * 30, "-1", "null", "{}", "[]",
                       "cams/gate/1", "0", 1, -5, 2**70, True, None, [], {}, [1, "x"], {"a": 1}, 1.5])


def _text(rnd: random.Random) -> str:
    value = _junk(rnd)
    return value if isinstance(value, str) else str(value)


def _one(rnd: random.Random, srv: EdgeProcess) -> requests.Response:
    kind = rnd.randrange(8)
    basic = (KEY, "x")
    if kind == 0:
        params = {rnd.choice(["filename", "chunks", "chunk", "content_type", "x"]): _text(rnd) for _ in range(3)}
        return requests.post(f"{srv.url}/link/attachments/upload", params=params, data=os.urandom(rnd.randrange(200)),
                             auth=basic, headers={"Content-Type": _text(rnd).replace("\x00", "")}, timeout=10)
    if kind == 1:
        fields = ["attachment", "expires_at", "password", "download_receipt", "require_authentication", "receipt_to"]
        body = {"link": {rnd.choice(fields): _junk(rnd) for _ in range(3)}} if rnd.random() < 0.8 else _junk(rnd)
        return requests.post(f"{srv.url}/link", json=body, auth=basic, timeout=10)
    if kind == 2:
        payload = {"media_id": _junk(rnd), "filename": _junk(rnd), "asset_id": _junk(rnd)}
        body = {k: rnd.choice([_junk(rnd), payload]) for k in ("expiry_date", "limit", "payload")}
        return requests.post(f"{srv.url}/api/v2/shareable_links", json=body, headers={"X-API-KEY": KEY}, timeout=10)
    if kind == 3:
        return requests.get(f"{srv.url}/link/{_text(rnd) or 'x'}", timeout=10,
                            params={rnd.choice(["ticket", "password", "download"]): _text(rnd)},
                            headers={"Accept": rnd.choice(["text/html", "*/*"]), "Range": f"bytes={_text(rnd)}"[:50]})
    if kind == 4:
        what = rnd.choice(["update_expires_at", "update_authentication", "update_download_confirmation"])
        return requests.put(f"{srv.url}/link/{_text(rnd) or 'x'}/{what}", data=_text(rnd).encode(), auth=basic,
                            timeout=10)
    if kind == 5:
        boundary = rnd.choice(["b", "xyz", "----x"])
        body = f"--{boundary}\r\n".encode() + os.urandom(rnd.randrange(300))
        if rnd.random() < 0.5:
            body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{_text(rnd)[:20]}"\r\n\r\n'
                    f'{_text(rnd)[:50]}\r\n--{boundary}--\r\n').encode()
        return requests.post(f"{srv.url}/link/attachments/upload", data=body, auth=basic, timeout=10,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    if kind == 6:
        body = {"recipients": rnd.choice([_junk(rnd), [_junk(rnd)], ["a@example.com"]]),
                "shareable_link_ids": rnd.choice([_junk(rnd), [1, _junk(rnd)], None]), "message": _junk(rnd)}
        return requests.post(f"{srv.url}/api/v2/shareable_links/share", json=body, headers={"X-API-KEY": KEY},
                             timeout=10)
    return requests.post(f"{srv.url}/link/{_text(rnd) or 'x'}", data={"password": _text(rnd), "api_key": _text(rnd)},
                         headers={"Accept": "text/html"}, timeout=10)


def test_sharing_endpoints_never_answer_500(tmp_path):
    seed = random.randrange(2**32)
    rnd = random.Random(seed)
    srv = EdgeProcess(tmp_path / "data", {"EDGE_AUTH_MAX_FAILURES": "100000"}, auth=token_auth(KEY)).start()
    try:
        requests.post(f"{srv.api}/b/cams", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        requests.post(f"{srv.api}/b/cams/gate?ts=1", data=b"x", headers={"Authorization": f"Bearer {KEY}"},
                      timeout=10)
        statuses = []
        for _ in range(REQUESTS):
            try:
                r = _one(rnd, srv)
            except (requests.exceptions.InvalidHeader, ValueError):
                continue                    # the client itself refused to send it
            statuses.append(r.status_code)
            assert r.status_code < 500, (seed, r.request.method, r.request.url, r.status_code, r.text[:300])
        assert requests.get(f"{srv.api}/alive", timeout=5).status_code == 200
        assert len(statuses) > REQUESTS // 2 and "Traceback" not in srv.log_path.read_text(errors="replace"), seed
    finally:
        srv.stop()
