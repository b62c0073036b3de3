"""One link registry under three APIs, and the uniform answer on every link URL.

A link made through our API, the Mediapocket API or the LiquidFiles API shows in ``GET /link``
and in ``GET /api/v1/links`` (what the console lists), downloads through every link URL, and
revoking it through any API revokes it everywhere. A caller who may not use a link cannot tell
it from a missing one: same status, same body, and the same timing class.
"""

from __future__ import annotations

import http.client
import statistics
import time
import urllib.parse

import pytest
import requests
from tests.helpers import token_auth

INIT = "registry-init-secret"
ADMIN = {"Authorization": f"Bearer {INIT}"}
KEY = {"X-API-KEY": INIT}
BASIC = (INIT, "x")
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.helpers import EdgeProcess

    # Wrong passwords feed the auth throttle; this module sends many on purpose.
    proc = EdgeProcess(tmp_path_factory.mktemp("one") / "data", {"EDGE_AUTH_MAX_FAILURES": "100000"},
                       auth=token_auth(INIT)).start()
    requests.post(f"{proc.api}/b/cams", headers=ADMIN, timeout=10)
    for ts in range(1000, 1010):
        r = requests.post(f"{proc.api}/b/cams/gate", params={"ts": ts}, data=f"frame {ts}".encode(),
                          headers={**ADMIN, "Content-Type": "text/plain"}, timeout=10)
        assert r.status_code == 200
    yield proc
    proc.stop()


def native(srv, ts: int, file_name: str = "gate.txt", headers=ADMIN, **extra) -> dict:
    body = {"bucket": "cams", "entry": "gate", "record_entry": "gate", "record_timestamp": ts,
            "query": {"query_type": "QUERY", "entries": ["gate"]}, "expire_at": int(time.time()) + 3600, **extra}
    r = requests.post(f"{srv.api}/links/{file_name}", json=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.headers
    return r.json()


def mediapocket(srv, ts: int, limit: int = 100) -> dict:
    body = {"expiry_date": "2099-12-31", "limit": limit,
            "payload": {"asset_id": f"cams/gate/{ts}", "media_id": ts, "filename": f"mp-{ts}.txt"}}
    r = requests.post(f"{srv.url}/api/v2/shareable_links", json=body, headers=KEY, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def liquidfiles(srv, ts: int, **fields) -> dict:
    r = requests.post(f"{srv.url}/link", json={"link": {"attachment": f"cams/gate/{ts}", **fields}}, auth=BASIC,
                      timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["link"]


def listed_native(srv) -> dict[str, dict]:
    return {x["id"]: x for x in requests.get(f"{srv.api}/links", headers=ADMIN, timeout=10).json()["links"]}


def listed_lf(srv) -> dict[str, dict]:
    return {x["id"]: x for x in requests.get(f"{srv.url}/link", auth=BASIC, timeout=10).json()["links"]}


def urls(srv, link_id: str) -> list[str]:
    return [f"{srv.url}/link/{link_id}", f"{srv.url}/api/v2/shareable_links/{link_id}", f"{srv.url}/s/{link_id}"]


def test_every_api_sees_every_link_and_revoking_anywhere_revokes_everywhere(srv):
    n = native(srv, 1001)
    m = mediapocket(srv, 1002)
    m_id = m["url"].rsplit("/", 1)[1]
    lf = liquidfiles(srv, 1003)
    ids = {"native": n["id"], "mediapocket": m_id, "liquidfiles": lf["id"]}
    mine = listed_native(srv)
    lfs = listed_lf(srv)
    for origin, link_id in ids.items():
        assert mine[link_id]["origin"] == origin and mine[link_id]["state"] == "active"
        assert lfs[link_id]["url"] == f"{srv.url}/link/{link_id}"
        assert mine[link_id]["short_url"] == f"{srv.url}/s/{link_id}"
    assert mine[m_id]["serial"] == m["id"] and mine[m_id]["max_downloads"] == 100
    # every link through every link URL
    for origin, link_id in ids.items():
        ts = {"native": 1001, "mediapocket": 1002, "liquidfiles": 1003}[origin]
        for url in urls(srv, link_id):
            r = requests.get(url, timeout=10)
            assert r.status_code == 200 and r.content == f"frame {ts}".encode(), (origin, url)
    assert requests.get(n["link"], timeout=10).content == b"frame 1001"
    # revoke each through another API than the one that made it
    assert requests.delete(f"{srv.url}/link/{ids['native']}", auth=BASIC, timeout=10).status_code == 200
    assert requests.delete(f"{srv.api}/links/{ids['liquidfiles']}", headers=ADMIN, timeout=10).status_code == 200
    assert requests.delete(f"{srv.url}/link/{ids['mediapocket']}", auth=BASIC, timeout=10).status_code == 200
    mine, lfs = listed_native(srv), listed_lf(srv)
    for link_id in ids.values():
        assert mine[link_id]["state"] == "revoked" and link_id not in lfs
        for url in urls(srv, link_id):
            assert requests.get(url, timeout=10).status_code == 404, url
    assert requests.get(n["link"], timeout=10).headers["x-reduct-error"] == "Link not found or has expired"
    # Mediapocket's share sees revoked links as gone
    r = requests.post(f"{srv.url}/api/v2/shareable_links/share", headers=KEY, timeout=10,
                      json={"recipients": ["a@example.com"], "shareable_link_ids": [m["id"]]})
    assert (r.status_code, r.json()) == (400, {"error": "No shareable links found"})


def test_native_api_has_the_new_switches(srv):
    doc = native(srv, 1004, require_authentication=True, send_receipts=False)
    row = listed_native(srv)[doc["id"]]
    assert row["require_authentication"] is True and row["send_receipts"] is False
    assert requests.get(doc["link"], timeout=10).status_code == 404
    assert requests.get(doc["link"], headers=ADMIN, timeout=10).content == b"frame 1004"
    r = requests.patch(f"{srv.api}/links/{doc['id']}", headers=ADMIN, timeout=10,
                       json={"require_authentication": False, "send_receipts": True, "receipt_to": "me@example.com"})
    assert r.status_code == 200 and r.json()["send_receipts"] is True and r.json()["receipt_to"] == "me@example.com"
    assert requests.get(doc["link"], timeout=10).content == b"frame 1004"
    # never weaker than asked: keys we do not know are refused, naming them
    for body in ({"limit": 1}, {"require_auth": True}, {"max_download": 2}):
        base = {"bucket": "cams", "entry": "gate", "record_entry": "gate", "record_timestamp": 1004,
                "query": {"query_type": "QUERY"}, "expire_at": int(time.time()) + 60, **body}
        r = requests.post(f"{srv.api}/links/x.txt", json=base, headers=ADMIN, timeout=10)
        key = next(iter(body))
        assert r.status_code == 422 and r.headers["x-reduct-error"].startswith(f"Unknown field '{key}'"), r.headers
        r = requests.patch(f"{srv.api}/links/{doc['id']}", headers=ADMIN, json=body, timeout=10)
        assert r.status_code == 422 and f"'{key}'" in r.headers["x-reduct-error"]
    # ReductStore's documented fields stay accepted (reduct-py sends all of them, index on 1.18)
    legacy = {"bucket": "cams", "entry": "gate", "record_entry": "gate", "record_timestamp": 1004, "index": 0,
              "query": {"query_type": "QUERY", "entries": ["gate"], "start": None, "stop": None, "ttl": None},
              "expire_at": int(time.time()) + 60, "base_url": srv.url + "/"}
    assert requests.post(f"{srv.api}/links/y.txt", json=legacy, headers=ADMIN, timeout=10).status_code == 200
    for bad, text in (({"record_timestamp": 999}, "Record 999 not found in entry cams/gate"),
                      ({"record_entry": "nope"}, "Entry 'nope' not found in bucket 'cams'")):
        r = requests.post(f"{srv.api}/links/z.txt", json={**legacy, **bad}, headers=ADMIN, timeout=10)
        assert (r.status_code, r.headers["x-reduct-error"]) == (404, text)


# --- uniform answers ------------------------------------------------------------------------------

def _dead_links(srv) -> dict[str, str]:
    """One link id per way of being unusable by an anonymous caller (and a missing id)."""
    r = requests.post(f"{srv.api}/tokens/doomed", headers=ADMIN, json={"permissions": {"read": ["cams"]}}, timeout=10)
    doomed = {"Authorization": f"Bearer {r.json()['value']}"}
    out = {"missing": "M" * 22}
    out["revoked"] = native(srv, 1005)["id"]
    requests.delete(f"{srv.api}/links/{out['revoked']}", headers=ADMIN, timeout=10)
    out["expired"] = liquidfiles(srv, 1005, expires_at="2001-01-01")["id"]
    used = mediapocket(srv, 1006, limit=1)
    # used up by somebody else (a client inside its own download session may still fetch): the
    # download comes from another loopback address. 127.0.0.2 is a trusted proxy by default
    # (EDGE_TRUSTED_PROXIES 127.0.0.0/8), but it sends no Forwarded/X-Forwarded-For header, so
    # it is its own client address (client_address.resolve_client), not 127.0.0.1's: sent from
    # 127.0.0.1 instead, this test fails.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10, source_address=("127.0.0.2", 0))
    conn.request("GET", urllib.parse.urlsplit(used["url"]).path)
    assert conn.getresponse().status == 302
    conn.close()
    out["used_up"] = used["url"].rsplit("/", 1)[1]
    out["needs_sign_in"] = liquidfiles(srv, 1007, require_authentication=True)["id"]
    out["password"] = liquidfiles(srv, 1008, password="correct horse")["id"]
    out["issuer_deleted"] = native(srv, 1009, headers=doomed)["id"]
    assert requests.delete(f"{srv.api}/tokens/doomed", headers=ADMIN, timeout=10).status_code == 200
    return out


def _answer(r: requests.Response) -> tuple:
    return r.status_code, r.content, r.headers.get("content-type"), r.headers.get("x-reduct-error")


def test_an_unusable_link_answers_like_a_missing_one(srv):
    dead = _dead_links(srv)
    kinds = [  # (url template, request kwargs)
        ("{u}/link/{id}", {}), ("{u}/link/{id}", {"headers": HTML}), ("{u}/link/{id}?download=1", {}),
        ("{u}/link/{id}", {"auth": ("x", "wrong password")}), ("{u}/link/{id}", {"method": "POST", "headers": HTML,
                                                                                 "data": {"password": "guess"}}),
        ("{u}/link/{id}?ticket=9999999999.0.AAAAAAAAAAAAAAAAAAAAAA", {}),
        ("{u}/api/v2/shareable_links/{id}", {}), ("{u}/api/v2/shareable_links/{id}", {"params": {"password": "x"}}),
        ("{u}/s/{id}", {"allow_redirects": False}), ("{u}/s/{id}", {}),
    ]
    for template, kwargs in kinds:
        kwargs = dict(kwargs)
        method = kwargs.pop("method", "GET")
        answers = {name: _answer(requests.request(method, template.format(u=srv.url, id=link_id), timeout=10, **kwargs))
                   for name, link_id in dead.items()}
        assert len(set(answers.values())) == 1, (template, kwargs, answers)
        assert next(iter(answers.values()))[0] in (302, 404)


def test_native_url_answers_uniformly_too(srv):
    """The native URL of a link whose issuer was deleted, a password link without the password and
    a forged token all say the same (expired ones keep ReductStore's 422: see link_download.py)."""
    r = requests.post(f"{srv.api}/tokens/gone", headers=ADMIN, json={"permissions": {"read": ["cams"]}}, timeout=10)
    gone = native(srv, 1002, headers={"Authorization": f"Bearer {r.json()['value']}"})["link"]
    requests.delete(f"{srv.api}/tokens/gone", headers=ADMIN, timeout=10)
    locked = native(srv, 1003, password="pw")["link"]
    auth_only = native(srv, 1003, require_authentication=True)["link"]
    parts = urllib.parse.urlsplit(locked)
    q = dict(urllib.parse.parse_qsl(parts.query))
    q["ct"] = q["ct"][:-4] + ("AAAA" if not q["ct"].endswith("AAAA") else "BBBB")
    forged = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))
    answers = {_answer(requests.get(u, timeout=10)) for u in (gone, locked, auth_only, forged)}
    answers |= {_answer(requests.get(u, auth=("x", "wrong"), timeout=10)) for u in (gone, locked, auth_only, forged)}
    assert answers == {(404, b'{"detail": "Link not found or has expired"}', "application/json",
                        "Link not found or has expired")}


def _median_ms(url: str, n: int, **kwargs) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        requests.get(url, timeout=10, **kwargs)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


@pytest.mark.serial  # medians of ms-scale requests: neighbours in the parallel pass blur the classes
def test_timing_class_does_not_depend_on_the_link(srv):
    """Medians, interleaved, in one run: without a password every unusable link costs what a
    missing one costs; with a (wrong) password every one costs one scrypt, a missing one too.
    ``bench/sharing.py`` prints the full table."""
    dead = _dead_links(srv)
    for round_ in range(2):                                  # the second round decides (warm caches)
        plain = {k: _median_ms(f"{srv.url}/link/{v}", 9) for k, v in dead.items()}
        hashed = {k: _median_ms(f"{srv.url}/link/{v}", 5, auth=("x", "wrong")) for k, v in dead.items()}
    base, slow = plain["missing"], hashed["missing"]
    assert slow > 3 * base, (plain, hashed)                  # the scrypt class really is a class apart
    for name in dead:
        assert plain[name] < slow / 2, (name, plain, hashed)     # nobody pays a hash without a password
        assert hashed[name] > slow / 2.5, (name, plain, hashed)  # and everybody pays one with a password


def test_wrong_passwords_are_throttled_whatever_the_link(make_server):
    srv = make_server({"EDGE_AUTH_MAX_FAILURES": "3", "EDGE_AUTH_BACKOFF": "30"}, auth=token_auth(INIT))
    requests.post(f"{srv.api}/b/cams", headers=ADMIN, timeout=10)
    requests.post(f"{srv.api}/b/cams/gate", params={"ts": 1}, data=b"x", headers=ADMIN, timeout=10)
    real = liquidfiles(srv, 1, password="right")["id"]
    statuses = [requests.get(f"{srv.url}/link/{link_id}", auth=("x", "guess"), timeout=10).status_code
                for link_id in (real, "Q" * 22, real, "Q" * 22, real)]
    assert statuses[:3] == [404, 404, 404] and statuses[3:] == [429, 429]
    assert requests.get(f"{srv.url}/link/{real}", auth=("x", "right"), timeout=10).status_code == 429
