"""Share by e-mail, download receipts and short links over real HTTP and real SMTP (issue 12).

An aiosmtpd server on a loopback port receives the mails of real ``python -m edge serve``
processes: links in mails are followed and downloaded, AUTH + STARTTLS and implicit TLS use a
CA and certificate made here, receipts are coalesced, the relay goes down and comes back,
edge restarts (and is killed mid-send) with mails queued.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse

import pytest
import requests

from tests.helpers import NO_AUTH, token_auth

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402

UNIFORM = (404, "Link not found or has expired")
PAYLOAD = bytes(range(256)) * 8           # 2048 bytes
FAST = {"EDGE_SMTP_RETRY_MIN": "0.2", "EDGE_SMTP_RETRY_MAX": "0.5", "EDGE_SMTP_TIMEOUT": "5",
        "EDGE_SHARE_RECEIPT_WINDOW": "1.5", "EDGE_SMTP_FROM": "Edge <edge@example.com>"}


# --- the SMTP side ------------------------------------------------------------------------------

class Sink:
    """Collects every message; ``hold`` makes DATA wait (after recording) until released."""

    def __init__(self):
        self.messages: list[dict] = []
        self.hold = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({"rcpt": list(envelope.rcpt_tos), "from": envelope.mail_from,
                                  "msg": email.message_from_bytes(envelope.content, policy=email.policy.default),
                                  "tls": session.ssl is not None, "auth": session.authenticated})
        if self.hold.is_set():
            while not self.released.is_set():
                await asyncio.sleep(0.05)
        return "250 OK"

    def wait(self, n: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} mails, got {len(self.messages)}")


class _BoundController(Controller):
    """An aiosmtpd controller serving on a socket the test bound itself (port 0: never guessed)."""

    def __init__(self, handler, sock: socket.socket, **kwargs):
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)
        self._sock = sock

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def _bind(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Relay:
    """An aiosmtpd controller that can be stopped and started again on the same port.

    The port is bound (port 0) when the relay is made, before it listens: until ``start`` it
    refuses connections, and no other process can take it. ``stop`` closes it; ``start`` binds
    the same port again."""

    def __init__(self, sink: Sink, port: int | None = None, **kwargs):
        self.sink, self.kwargs = sink, kwargs
        self.sock: socket.socket | None = _bind(port or 0)
        self.port: int = self.sock.getsockname()[1]
        self.controller = None

    def start(self) -> "Relay":
        sock, self.sock = self.sock or _bind(self.port), None
        self.controller = _BoundController(self.sink, sock, **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture
def relay():
    started: list[Relay] = []

    def make(sink: Sink, port: int | None = None, start: bool = True, **kwargs) -> Relay:
        r = Relay(sink, port, **kwargs)
        started.append(r)
        return r.start() if start else r

    yield make
    for r in started:
        r.sink.released.set()
        r.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 / localhost, made with `cryptography` (else openssl)."""
    d = tmp_path_factory.mktemp("pki")
    try:
        from cryptography import x509
    except ImportError:
        return _openssl_pki(d)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d


def _openssl_pki(d):
    """Fallback: one self-signed certificate (CA:TRUE by default) that is its own trust anchor."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("neither `cryptography` nor openssl is available")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    (d / "ca.pem").write_bytes((d / "cert.pem").read_bytes())
    return d


def _server_ssl(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "cert.pem", pki / "key.pem")
    return ctx


def _authenticator(user: bytes, password: bytes):
    def check(server, session, envelope, mechanism, auth_data):
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=auth_data.login == user and auth_data.password == password, handled=False)
    return check


# --- the edge side ------------------------------------------------------------------------------

def _edge_env(relay_port: int, security: str = "none", **extra) -> dict[str, str]:
    return {"EDGE_SMTP_HOST": "127.0.0.1", "EDGE_SMTP_PORT": str(relay_port), "EDGE_SMTP_SECURITY": security,
            **FAST, **extra}


def _seed(api: str, bucket: str, headers: dict | None = None) -> None:
    h = headers or {}
    assert requests.post(f"{api}/b/{bucket}", headers=h).status_code == 200
    r = requests.post(f"{api}/b/{bucket}/cam?ts=1000", data=PAYLOAD, headers={**h, "content-type": "image/png"})
    assert r.status_code == 200


def _link(api: str, bucket: str, headers: dict | None = None, file_name: str = "shot.png",
          expire_in: int = 3600, **extra) -> dict:
    body = {"bucket": bucket, "entry": "cam", "record_entry": "cam", "record_timestamp": 1000,
            "query": {"query_type": "QUERY", "entries": ["cam"]}, "expire_at": int(time.time()) + expire_in, **extra}
    r = requests.post(f"{api}/links/{file_name}", json=body, headers=headers or {})
    assert r.status_code == 200, r.headers
    return r.json()


def _share(api: str, ids: list, recipients: list, message=None, headers=None) -> requests.Response:
    body = {"link_ids": ids, "recipients": recipients}
    if message is not None:
        body["message"] = message
    return requests.post(f"{api}/share", json=body, headers=headers or {})


def _err(r: requests.Response) -> tuple[int, str | None]:
    return r.status_code, r.headers.get("x-reduct-error")


def _text(mail: dict) -> str:
    return mail["msg"].get_body(("plain",)).get_content()


def _html(mail: dict) -> str:
    return mail["msg"].get_body(("html",)).get_content()


def _outbox(api: str, headers=None, state=None) -> list[dict]:
    r = requests.get(f"{api}/share/outbox", params={"state": state} if state else None, headers=headers or {})
    assert r.status_code == 200, r.headers
    return r.json()["mails"]


def _wait_outbox(api: str, pred, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = _outbox(api)
        if pred(mails):
            return mails
        time.sleep(0.1)
    raise AssertionError(f"outbox never matched: {mails}")


# --- tests --------------------------------------------------------------------------------------

def test_share_mail_arrives_with_working_links(make_server, relay):
    sink = Sink()
    smtp = relay(sink)
    edge = make_server(_edge_env(smtp.port), auth=NO_AUTH)
    api = edge.api
    _seed(api, "shared")
    doc = _link(api, "shared")
    assert doc["short_url"] == f"{edge.url}/s/{doc['id']}"
    listed = requests.get(f"{api}/links").json()["links"]
    assert [x["short_url"] for x in listed] == [doc["short_url"]]
    r = _share(api, [doc["id"], "unknown-id-0123456789"], ["ann@example.com", "bob@example.com", "ANN@example.com"],
               message="Here is the <shot>\nfrom line 7")
    assert r.status_code == 200, r.headers
    assert r.json() == {"message": "Shareable links sent", "queued": 2}
    mails = sink.wait(2)
    assert sorted(m["rcpt"][0] for m in mails) == ["ann@example.com", "bob@example.com"]
    for mail in mails:
        msg = mail["msg"]
        assert msg["To"] == mail["rcpt"][0] and mail["from"] == "edge@example.com"
        assert msg["From"] == "Edge <edge@example.com>" and msg["Subject"] == "Shared with you: shot.png"
        text, page = _text(mail), _html(mail)
        assert "shot.png (2.0 KB, expires " in text and "Here is the <shot>" in text
        assert "Here is the &lt;shot&gt;" in page and "<shot>" not in page
        url = re.search(r"https?://\S+/s/[A-Za-z0-9_-]+", text).group(0)
        assert url == doc["short_url"] and f'href="{url}"' in page
        hop = requests.get(url, allow_redirects=False)
        assert hop.status_code == 302 and hop.headers["location"] == f"{edge.url}/link/{doc['id']}"
        assert hop.headers["cache-control"] == "no-store"
        got = requests.get(url)
        assert got.status_code == 200 and got.content == PAYLOAD
    sent = _wait_outbox(api, lambda ms: len(ms) == 2 and all(m["state"] == "sent" for m in ms))
    assert all(m["attempts"] == 1 and m["kind"] == "share" and m["link_ids"] == [doc["id"]] for m in sent)
    assert "raw" not in sent[0] and doc["link"] not in str(sent)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_auth_over_tls(make_server, relay, pki, security):
    sink = Sink()
    # aiosmtpd only knows STARTTLS as "TLS" for auth_require_tls; on an implicit-TLS listener
    # every byte is encrypted anyway, so that check is off there.
    tls = {"tls_context": _server_ssl(pki), "require_starttls": True, "auth_require_tls": True} \
        if security == "starttls" else {"ssl_context": _server_ssl(pki), "server_hostname": "localhost",
                                        "auth_require_tls": False}
    smtp = relay(sink, authenticator=_authenticator(b"mailer", b"s3cret pw"), auth_required=True, **tls)
    edge = make_server(_edge_env(smtp.port, security, EDGE_SMTP_USER="mailer", EDGE_SMTP_PASSWORD="s3cret pw",
                                 EDGE_SMTP_CA_FILE=str(pki / "ca.pem")), auth=NO_AUTH)
    _seed(edge.api, "tls")
    doc = _link(edge.api, "tls")
    assert _share(edge.api, [doc["id"]], ["ann@example.com"]).status_code == 200
    (mail,) = sink.wait(1)
    assert mail["auth"] and (mail["tls"] or security == "tls")
    assert doc["short_url"] in _text(mail)
    assert "s3cret" not in edge.log()


def test_wrong_password_keeps_mail_queued_with_the_error(make_server, relay, pki):
    sink = Sink()
    smtp = relay(sink, authenticator=_authenticator(b"mailer", b"right"), auth_required=True,
                 tls_context=_server_ssl(pki), require_starttls=True)
    edge = make_server(_edge_env(smtp.port, "starttls", EDGE_SMTP_USER="mailer", EDGE_SMTP_PASSWORD="wrong",
                                 EDGE_SMTP_CA_FILE=str(pki / "ca.pem")), auth=NO_AUTH)
    _seed(edge.api, "auth")
    doc = _link(edge.api, "auth")
    assert _share(edge.api, [doc["id"]], ["ann@example.com"]).status_code == 200
    (m,) = _wait_outbox(edge.api, lambda ms: ms and ms[0]["attempts"] >= 2)
    assert m["state"] == "queued" and "535" in m["last_error"] and sink.messages == []


def test_untrusted_certificate_is_refused(make_server, relay, pki):
    sink = Sink()
    smtp = relay(sink, tls_context=_server_ssl(pki), require_starttls=True)
    edge = make_server(_edge_env(smtp.port, "starttls"), auth=NO_AUTH)       # no CA file: the test CA is unknown
    _seed(edge.api, "untrusted")
    doc = _link(edge.api, "untrusted")
    assert _share(edge.api, [doc["id"]], ["ann@example.com"]).status_code == 200
    (m,) = _wait_outbox(edge.api, lambda ms: ms and ms[0]["attempts"] >= 1)
    assert m["state"] == "queued" and "CERTIFICATE_VERIFY_FAILED" in m["last_error"] and sink.messages == []


def test_receipts_arrive_coalesced(make_server, relay):
    sink = Sink()
    smtp = relay(sink)
    edge = make_server(_edge_env(smtp.port), auth=NO_AUTH)
    api = edge.api
    _seed(api, "receipts")
    doc = _link(api, "receipts", receipt_to="owner@example.com")
    plain = _link(api, "receipts", file_name="other.png")
    for _ in range(3):
        assert requests.get(doc["link"]).content == PAYLOAD
    assert requests.get(doc["link"], headers={"Range": "bytes=0-9"}).status_code == 206   # same session: not counted
    assert requests.get(plain["link"]).status_code == 200                                   # no receipt_to
    (mail,) = sink.wait(1)
    assert mail["rcpt"] == ["owner@example.com"]
    assert mail["msg"]["Subject"] == "Download receipt: shot.png (3 downloads)"
    text = _text(mail)
    assert "3 times (6.1 KB in total)" in text and text.count("127.0.0.1") == 3 and doc["id"] in text
    time.sleep(2.5)
    assert len(sink.messages) == 1                       # coalesced: one mail for the three
    assert requests.get(doc["link"]).status_code == 200
    second = sink.wait(2)[1]
    assert second["msg"]["Subject"] == "Download receipt: shot.png"
    shown = requests.get(f"{api}/links/{doc['id']}").json()
    assert len(shown["receipts"]) == 5 and shown["downloads"] == 4
    kinds = [m["kind"] for m in _outbox(api)]
    assert kinds == ["receipt", "receipt"]


def test_receipt_address_is_checked_at_creation(make_server, relay):
    edge = make_server(_edge_env(relay(Sink()).port), auth=NO_AUTH)
    _seed(edge.api, "rcheck")
    body = {"bucket": "rcheck", "entry": "cam", "record_entry": "cam", "record_timestamp": 1000,
            "query": {"query_type": "QUERY"}, "expire_at": int(time.time()) + 60,
            "receipt_to": "owner@example.com\r\nBcc: x@example.com"}
    status, text = _err(requests.post(f"{edge.api}/links/x.png", json=body))
    assert status == 422 and "receipt_to" in text


def test_relay_down_then_up_delivers_queued_mails(make_server, relay):
    sink = Sink()
    smtp = relay(sink, start=False)                      # nothing listens yet
    edge = make_server(_edge_env(smtp.port), auth=NO_AUTH)
    _seed(edge.api, "down")
    doc = _link(edge.api, "down")
    r = _share(edge.api, [doc["id"]], ["ann@example.com", "bob@example.com"])
    assert r.status_code == 200 and r.json()["queued"] == 2           # never blocks on the relay
    mails = _wait_outbox(edge.api, lambda ms: len(ms) == 2 and all(m["attempts"] >= 2 for m in ms))
    assert all(m["state"] == "queued" and m["last_error"] for m in mails)
    assert requests.get(f"{edge.api}/share/outbox").json()["last_error"]
    smtp.start()
    got = sink.wait(2)
    assert sorted(m["rcpt"][0] for m in got) == ["ann@example.com", "bob@example.com"]
    _wait_outbox(edge.api, lambda ms: all(m["state"] == "sent" for m in ms))


def test_restart_with_queued_mails_delivers_each_once(make_server, relay):
    sink = Sink()
    smtp = relay(sink, start=False)
    edge = make_server(_edge_env(smtp.port), auth=NO_AUTH)
    _seed(edge.api, "restart")
    doc = _link(edge.api, "restart")
    assert _share(edge.api, [doc["id"]], ["ann@example.com", "bob@example.com", "cy@example.com"]).json()["queued"] == 3
    _wait_outbox(edge.api, lambda ms: all(m["attempts"] >= 1 for m in ms))
    assert edge.stop() == 0
    smtp.start()
    edge.start()
    sink.wait(3)
    _wait_outbox(edge.api, lambda ms: len(ms) == 3 and all(m["state"] == "sent" for m in ms))
    time.sleep(1.0)
    ids = [m["msg"]["Message-ID"] for m in sink.messages]
    assert len(ids) == 3 and len(set(ids)) == 3
    edge.restart()                                        # sent mails stay sent
    time.sleep(1.0)
    assert len(sink.messages) == 3


def test_kill_mid_send_delivers_at_most_twice(make_server, relay):
    sink = Sink()
    sink.hold.set()                                       # DATA is recorded, then the answer hangs
    smtp = relay(sink)
    edge = make_server(_edge_env(smtp.port), auth=NO_AUTH)
    _seed(edge.api, "crash")
    doc = _link(edge.api, "crash")
    assert _share(edge.api, [doc["id"]], ["ann@example.com"]).status_code == 200
    sink.wait(1)
    time.sleep(0.3)
    edge.kill()                                           # SIGKILL while the mail is `sending`
    sink.hold.clear()
    sink.released.set()
    edge.start()
    _wait_outbox(edge.api, lambda ms: len(ms) == 1 and ms[0]["state"] == "sent")
    time.sleep(1.0)
    got = sink.messages
    assert 1 <= len(got) <= 2 and len({m["msg"]["Message-ID"] for m in got}) == 1


def test_short_links_redirect_or_answer_uniform_404(make_server):
    """A short link redirects every well-formed id to ``/link/<id>``, whether a link has it or not;
    the target's rules (and its uniform answer) apply there."""
    edge = make_server(auth=NO_AUTH)
    api = edge.api
    _seed(api, "short")
    live = _link(api, "short")
    hop = requests.get(live["short_url"], allow_redirects=False)
    assert hop.status_code == 302 and hop.headers["location"] == f"{edge.url}/link/{live['id']}"
    assert requests.head(live["short_url"], allow_redirects=False).status_code == 302
    assert requests.get(live["short_url"]).content == PAYLOAD
    locked = _link(api, "short", file_name="locked.png", password="pw")
    assert _err(requests.get(locked["short_url"])) == UNIFORM              # the target's rules apply
    assert requests.get(locked["short_url"], auth=("x", "pw")).content == PAYLOAD
    revoked = _link(api, "short", file_name="revoked.png")
    assert requests.delete(f"{api}/links/{revoked['id']}").status_code == 200
    used = _link(api, "short", file_name="used.png", max_downloads=1)
    assert requests.get(used["link"]).status_code == 200
    expired = _link(api, "short", file_name="expired.png", expire_in=1)
    time.sleep(2.2)
    missing = f"{edge.url}/s/{'A' * 22}"
    hops = [requests.get(u, allow_redirects=False)
            for u in (revoked["short_url"], used["short_url"], expired["short_url"], missing)]
    assert {h.status_code for h in hops} == {302} and len({h.content for h in hops}) == 1
    for url in (revoked["short_url"], used["short_url"], expired["short_url"], missing):
        assert _err(requests.get(url)) == UNIFORM, url
    for url in (f"{edge.url}/s/x", f"{edge.url}/s/{'%0d%0a' * 8}", f"{edge.url}/s/{'a' * 300}"):
        assert _err(requests.get(url, allow_redirects=False)) == UNIFORM, url


def test_short_links_under_a_base_path_and_public_url(make_server):
    edge = make_server({"RS_API_BASE_PATH": "edge", "RS_PUBLIC_URL": "https://files.example.com/edge/"}, auth=NO_AUTH)
    _seed(edge.api, "based")
    doc = _link(edge.api, "based")
    assert doc["short_url"] == f"https://files.example.com/edge/s/{doc['id']}"
    hop = requests.get(f"{edge.url}/edge/s/{doc['id']}", allow_redirects=False)
    assert hop.status_code == 302 and hop.headers["location"] == f"https://files.example.com/edge/link/{doc['id']}"
    assert doc["link"].startswith("https://files.example.com/edge/api/v1/links/shot.png?ct=")


def test_without_a_mail_host_sharing_says_so(make_server):
    edge = make_server(auth=NO_AUTH)
    _seed(edge.api, "nomail")
    doc = _link(edge.api, "nomail", receipt_to="owner@example.com")
    assert _err(_share(edge.api, [doc["id"]], ["ann@example.com"])) == (400, "Mail is not configured on this server")
    assert requests.get(doc["link"]).status_code == 200                     # downloads unaffected
    body = requests.get(f"{edge.api}/share/outbox").json()
    assert body == {"enabled": False, "last_error": None, "mails": []}
    assert not (edge.data_path / ".edge" / "outbox").exists()


def test_bad_inputs_are_4xx_never_500(make_server, relay):
    sink = Sink()
    edge = make_server(_edge_env(relay(sink).port, EDGE_SHARE_MAX_RECIPIENTS="3"), auth=NO_AUTH)
    api = edge.api
    _seed(api, "bad")
    live = _link(api, "bad")["id"]
    dead = _link(api, "bad", file_name="dead.png")["id"]
    requests.delete(f"{api}/links/{dead}")
    ok = ["a@example.com"]
    cases = [
        (b"not json", 422, None), (b"[]", 422, None), (b"{}", 422, "link_ids"),
        ({"link_ids": live, "recipients": ok}, 422, "link_ids"),
        ({"link_ids": [], "recipients": ok}, 422, "'link_ids' must not be empty"),
        ({"link_ids": [1, 2], "recipients": ok}, 422, "link_ids"),
        ({"link_ids": [live]}, 422, "recipients"),
        ({"link_ids": [live], "recipients": []}, 422, "'recipients' must not be empty"),
        ({"link_ids": [live], "recipients": "a@example.com"}, 422, "recipients"),
        ({"link_ids": [live], "recipients": ["a@example.com", "nope"]}, 422, "'nope'"),
        ({"link_ids": [live], "recipients": ["a@example.com\r\nBcc: v@example.com"]}, 422, "Invalid recipient"),
        ({"link_ids": [live], "recipients": ["Ann <a@example.com>"]}, 422, "Ann <a@example.com>"),
        ({"link_ids": [live], "recipients": [None]}, 422, "Invalid recipient"),
        ({"link_ids": [live], "recipients": [f"{c}@example.com" for c in "abcd"]}, 422, "at most 3"),
        ({"link_ids": [live], "recipients": ok, "message": 5}, 422, "message"),
        ({"link_ids": [live], "recipients": ok, "message": "x" * 10_001}, 422, "message"),
        ({"link_ids": ["unknown-0123456789abc", "../../etc", "x" * 500], "recipients": ok}, 400,
         "No shareable links found"),
        ({"link_ids": [dead], "recipients": ok}, 400, "No shareable links found"),
    ]
    for body, status, needle in cases:
        r = requests.post(f"{api}/share", data=body) if isinstance(body, bytes) else requests.post(f"{api}/share", json=body)
        assert r.status_code == status, (body, r.headers)
        if needle:
            assert needle in r.headers["x-reduct-error"], (body, r.headers)
    assert _err(requests.get(f"{api}/share/outbox?state=bogus"))[0] == 422
    assert requests.put(f"{api}/share").status_code == 405
    assert _outbox(api) == [] and sink.messages == []


def test_hourly_limit_per_token(make_server, relay):
    sink = Sink()
    edge = make_server(_edge_env(relay(sink).port, EDGE_SHARE_MAILS_PER_HOUR="3"), auth=NO_AUTH)
    _seed(edge.api, "limit")
    doc = _link(edge.api, "limit")
    assert _share(edge.api, [doc["id"]], ["a@example.com", "b@example.com"]).json()["queued"] == 2
    r = _share(edge.api, [doc["id"]], ["c@example.com", "d@example.com"])
    assert r.status_code == 429 and "3 share mails per hour" in r.headers["x-reduct-error"]
    assert int(r.headers["retry-after"]) > 3000
    assert _share(edge.api, [doc["id"]], ["c@example.com"]).status_code == 200
    sink.wait(3)


def test_permissions(make_server, relay):
    init = {"Authorization": "Bearer share-init"}
    edge = make_server(_edge_env(relay(Sink()).port), auth=token_auth("share-init"))
    api = edge.api
    _seed(api, "perm", init)
    tokens = {}
    for name, perms in {"reader": {"full_access": False, "read": ["perm"]},
                        "other": {"full_access": False, "read": ["perm"]},
                        "stranger": {"full_access": False, "read": ["elsewhere"]}}.items():
        r = requests.post(f"{api}/tokens/{name}", headers=init, json={"permissions": perms})
        tokens[name] = {"Authorization": f"Bearer {r.json()['value']}"}
    mine = _link(api, "perm", tokens["reader"])["id"]
    assert _share(api, [mine], ["a@example.com"]).status_code == 401
    assert _share(api, [mine], ["a@example.com"], headers=tokens["stranger"]).status_code == 403
    assert _share(api, [mine], ["a@example.com"], headers=tokens["other"]).status_code == 403
    assert _share(api, [mine], ["a@example.com"], headers=tokens["reader"]).status_code == 200
    assert _share(api, [mine], ["a@example.com"], headers=init).status_code == 200
    assert requests.get(f"{api}/share/outbox", headers=tokens["reader"]).status_code == 403
    mails = _outbox(api, init)
    assert [m["token"] for m in mails] == ["reader", "init-token"]
    short = urllib.parse.urlsplit(_link(api, "perm", init)["short_url"]).path
    assert requests.get(f"{edge.url}{short}", allow_redirects=False).status_code == 302   # anonymous, like the link
