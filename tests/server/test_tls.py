"""TLS with ReductStore's ``RS_CERT_PATH`` / ``RS_CERT_KEY_PATH``, against a CA made in the test.

Real clients verify the certificate against that CA and nothing else: reduct-py (aiohttp, in a
subprocess with ``SSL_CERT_FILE``), curl (``--cacert``), Python's ``ssl`` and Debian's Chromium
(headless, with the CA in its own NSS database under a temporary ``HOME``; needs ``certutil``
from libnss3-tools). Also: TLS 1.0/1.1 are refused, share links and upload locations say
``https``, a 10 MB record reads back intact (no sendfile under TLS: the pread path), a
half-open handshake is cut by ``EDGE_TLS_HANDSHAKE_TIMEOUT`` without delaying anyone, and a bad
certificate or key stops start-up with a message naming the variable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from tests.helpers import NO_AUTH, EdgeProcess
from tests.tls_material import make_pki

TIMEOUT = 20
CURL = shutil.which("curl")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CERTUTIL = shutil.which("certutil")


class TlsEdge(EdgeProcess):
    """An EdgeProcess that speaks https (its readiness probe trusts the test CA)."""

    def __init__(self, *args, ca=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ca = ca

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> "TlsEdge":
        import requests as rq

        original = rq.get

        def get(url, **kw):
            kw.setdefault("verify", str(self.ca))
            return original(url, **kw)

        rq.get = get
        try:
            super().start(timeout_s)
        finally:
            rq.get = original
        return self


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory, pki):
    proc = TlsEdge(tmp_path_factory.mktemp("tls") / "data",
                   {"RS_CERT_PATH": str(pki.cert), "RS_CERT_KEY_PATH": str(pki.key),
                    "EDGE_TLS_HANDSHAKE_TIMEOUT": "2"}, ca=pki.ca, auth=NO_AUTH).start()
    yield proc
    proc.kill()


def test_requests_verifies_against_the_test_ca(tls, pki):
    r = requests.get(f"{tls.api}/info", verify=str(pki.ca), timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["bucket_count"] >= 0
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls.api}/info", timeout=TIMEOUT)  # the system store does not know our CA


def test_old_protocol_versions_are_refused(tls, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", tls.port), timeout=TIMEOUT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", tls.port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            assert s.selected_alpn_protocol() in (None, "http/1.1")


def test_reduct_py_writes_and_reads_over_tls(tls, pki):
    script = textwrap.dedent(f"""
        import asyncio
        from reduct import Client

        async def main():
            async with Client("{tls.url}") as client:
                bucket = await client.create_bucket("tlspy", exist_ok=True)
                await bucket.write("e", b"over tls", timestamp=1, labels={{"k": "v"}})
                async with bucket.read("e", timestamp=1) as rec:
                    assert await rec.read_all() == b"over tls" and rec.labels == {{"k": "v"}}
            print("ok")

        asyncio.run(main())
    """)
    env = {**os.environ, "SSL_CERT_FILE": str(pki.ca)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_curl_writes_and_reads_a_10_mb_record(tls, pki, tmp_path):
    payload = os.urandom(10 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(payload)
    base = ["curl", "-sS", "--fail", "--cacert", str(pki.ca), "--max-time", "60"]
    subprocess.run(base + ["-X", "POST", f"{tls.api}/b/tlscurl"], check=True, capture_output=True)
    subprocess.run(base + ["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary",
                           f"@{src}", f"{tls.api}/b/tlscurl/e?ts=1"], check=True, capture_output=True)
    got = subprocess.run(base + [f"{tls.api}/b/tlscurl/e?ts=1"], check=True, capture_output=True).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    # Without the CA curl refuses the certificate.
    refused = subprocess.run(["curl", "-sS", "--max-time", "10", f"{tls.api}/alive"], capture_output=True)
    assert refused.returncode != 0


def test_links_and_upload_locations_say_https(tls, pki):
    v = str(pki.ca)
    assert requests.post(f"{tls.api}/b/tlslinks", verify=v, timeout=TIMEOUT).status_code == 200
    assert requests.post(f"{tls.api}/b/tlslinks/e?ts=1", data=b"x", verify=v, timeout=TIMEOUT).status_code == 200
    r = requests.post(f"{tls.api}/links/x.bin", verify=v, timeout=TIMEOUT, json={
        "bucket": "tlslinks", "entry": "e", "record_entry": "e", "record_timestamp": 1,
        "expire_at": int(time.time()) + 600, "query": {"query_type": "QUERY"}})
    assert r.status_code == 200, r.text
    link = r.json()["link"]
    assert link.startswith("https://"), link
    assert requests.get(link, verify=v, timeout=TIMEOUT).content == b"x"
    r = requests.post(f"{tls.api}/uploads", verify=v, timeout=TIMEOUT, headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": "1",
        "Upload-Metadata": "bucket dGxzbGlua3M=,entry ZQ=="})
    assert r.status_code == 201 and r.headers["location"].startswith("https://"), r.headers


def test_a_half_open_handshake_is_cut_and_delays_no_one(tls, pki):
    silent = [socket.create_connection(("127.0.0.1", tls.port), timeout=TIMEOUT) for _ in range(20)]
    partial = socket.create_connection(("127.0.0.1", tls.port), timeout=TIMEOUT)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
    try:
        t0 = time.monotonic()
        assert requests.get(f"{tls.api}/alive", verify=str(pki.ca), timeout=TIMEOUT).status_code == 200
        assert time.monotonic() - t0 < 1.0
        partial.settimeout(6)
        t0 = time.monotonic()
        try:
            while partial.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        assert time.monotonic() - t0 < 5, "the half-open handshake was not cut"
    finally:
        for s in silent + [partial]:
            s.close()


@pytest.mark.skipif(CHROMIUM is None or CERTUTIL is None,
                    reason="needs chromium and certutil (apt-get install chromium libnss3-tools)")
def test_chromium_trusts_the_server_through_the_test_ca(tls, pki, tmp_path):
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "edge-test-ca", "-i", str(pki.ca)],
                   check=True, capture_output=True)

    def run(url: str, profile: str, home_dir) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / profile}", "--dump-dom", url],
            env={**os.environ, "HOME": str(home_dir)}, capture_output=True, text=True, timeout=90)

    info = run(f"{tls.api}/info", "profile", home)
    assert "instance_name" in info.stdout, (info.stdout[-500:], info.stderr[-2000:])
    console = run(f"{tls.url}/ui/", "profile", home)  # the web console, served over TLS
    assert "<html" in console.stdout.lower() and "<script" in console.stdout.lower(), console.stdout[-500:]
    # Without the CA in its database the same browser refuses the page.
    plain_home = tmp_path / "plain"
    plain_home.mkdir()
    refused = run(f"{tls.api}/info", "profile2", plain_home)
    assert "instance_name" not in refused.stdout


def _start_fails(tmp_path, env: dict[str, str]) -> str:
    with pytest.raises(RuntimeError) as exc:
        EdgeProcess(tmp_path / "data", env, auth=NO_AUTH).start(timeout_s=15)
    return str(exc.value)


def test_bad_certificate_or_key_stops_start_up_naming_the_variable(tmp_path, pki):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    other = make_pki(tmp_path / "other")
    cases = [
        ({"RS_CERT_PATH": str(tmp_path / "missing.pem"), "RS_CERT_KEY_PATH": str(pki.key)}, "RS_CERT_PATH"),
        ({"RS_CERT_PATH": str(junk), "RS_CERT_KEY_PATH": str(pki.key)}, "RS_CERT_PATH"),
        ({"RS_CERT_PATH": str(pki.cert), "RS_CERT_KEY_PATH": str(pki.cert)}, "RS_CERT_KEY_PATH"),
        ({"RS_CERT_PATH": str(pki.cert), "RS_CERT_KEY_PATH": str(other.key)}, "RS_CERT_KEY_PATH"),
        ({"RS_CERT_PATH": str(pki.cert)}, "RS_CERT_KEY_PATH"),
        ({"RS_CERT_KEY_PATH": str(pki.key)}, "RS_CERT_PATH"),
    ]
    for i, (env, variable) in enumerate(cases):
        text = _start_fails(tmp_path / f"c{i}", env)
        assert variable in text, (env, text[-800:])
