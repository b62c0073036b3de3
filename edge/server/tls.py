"""TLS for the HTTP front: the server-side ``ssl.SSLContext`` from ``RS_CERT_PATH`` / ``RS_CERT_KEY_PATH``.

Owns: loading and checking the certificate chain and key, the protocol floor (TLS 1.2), the
ALPN offer (``http/1.1``: we speak nothing else), renegotiation off (a client-initiated TLS 1.2
renegotiation is an expensive handshake on demand, and it would make a read wait for a write),
and asking for kernel TLS where Python offers it (``ssl.OP_ENABLE_KTLS``, Python 3.12+; OpenSSL
uses it only where the kernel's ``tls`` module is loaded, else nothing changes).
Must not: touch sockets (``connection.py`` drives each connection as a non-blocking
``ssl.SSLSocket``) or read the environment (``config.py`` does).

A bad file stops start-up with a ``ConfigError`` naming the variable: missing or unreadable,
not PEM, a key that does not match the certificate, or an encrypted key (a service cannot type
a pass phrase; OpenSSL would otherwise prompt on the terminal).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ..errors import ConfigError

CERT_VAR, KEY_VAR = "RS_CERT_PATH", "RS_CERT_KEY_PATH"


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read '{path}': {exc.strerror or exc}") from None


def _no_passphrase() -> str:
    raise ConfigError(f"{KEY_VAR}: the private key is encrypted; give edge an unencrypted key file")


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    cert_text = _read(cert_path, CERT_VAR)
    key_text = _read(key_path, KEY_VAR)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise ConfigError(f"{CERT_VAR}: '{cert_path}' holds no PEM certificate")
    if "PRIVATE KEY-----" not in key_text:
        raise ConfigError(f"{KEY_VAR}: '{key_path}' holds no PEM private key")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cadata=cert_text)  # parses every certificate in the file
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{CERT_VAR}: '{cert_path}' is not a valid PEM certificate ({exc})") from None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_RENEGOTIATION | getattr(ssl, "OP_ENABLE_KTLS", 0)
    try:
        ctx.load_cert_chain(cert_path, key_path, password=_no_passphrase)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise ConfigError(f"{KEY_VAR}: the key in '{key_path}' does not match the certificate "
                              f"in {CERT_VAR} '{cert_path}'") from None
        raise ConfigError(f"{KEY_VAR}: cannot load the key '{key_path}' for the certificate "
                          f"'{cert_path}' ({exc})") from None
    return ctx
