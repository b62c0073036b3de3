"""Mail settings: the SMTP relay, the sender address and the share limits, from the environment.

Owns: every ``EDGE_SMTP_*`` / ``EDGE_SHARE_*`` name, its default and its parsing, the matching
``edge serve`` flags (``add_arguments`` / ``env_from_args``: a flag is written over its variable,
so flags override the environment), and ``describe()`` with the password masked.
Must not: read ``os.environ`` (the caller passes ``Config.env``), do I/O, import trio.

A bad value raises ``ConfigError`` naming the variable, which stops start-up like every other
setting. No host means "mail is off": sharing by mail answers a clear error, nothing else changes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Mapping

from ..envparse import parse_float, parse_int
from ..errors import ConfigError
from .compose import address_problem

SECURITY_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}

# (flag, variable, help): the flags `edge serve` offers; see ``add_arguments``.
FLAGS = [
    ("--smtp-host", "EDGE_SMTP_HOST", "SMTP relay for share mails and receipts (EDGE_SMTP_HOST; empty: mail off)"),
    ("--smtp-port", "EDGE_SMTP_PORT", "SMTP port (EDGE_SMTP_PORT; default 25/587/465 by security)"),
    ("--smtp-user", "EDGE_SMTP_USER", "SMTP AUTH user (EDGE_SMTP_USER; empty: no AUTH)"),
    ("--smtp-password", "EDGE_SMTP_PASSWORD", "SMTP AUTH password (EDGE_SMTP_PASSWORD; prefer the variable)"),
    ("--smtp-security", "EDGE_SMTP_SECURITY", "none, starttls or tls (EDGE_SMTP_SECURITY, default starttls)"),
    ("--smtp-from", "EDGE_SMTP_FROM", "sender address of mails (EDGE_SMTP_FROM)"),
]


@dataclass(frozen=True)
class MailSettings:
    host: str = ""
    port: int = 587
    user: str = ""
    password: str = ""
    security: str = "starttls"
    sender: str = "edge@localhost"        # EDGE_SMTP_FROM, an addr-spec or "Name <addr-spec>"
    ca_file: str = ""                     # EDGE_SMTP_CA_FILE: extra trust anchor (a private CA, tests)
    timeout_s: float = 30.0               # EDGE_SMTP_TIMEOUT: one SMTP conversation step
    max_recipients: int = 20              # EDGE_SHARE_MAX_RECIPIENTS: per share request
    mails_per_hour: int = 100             # EDGE_SHARE_MAILS_PER_HOUR: per token
    receipt_window_s: float = 60.0        # EDGE_SHARE_RECEIPT_WINDOW: downloads summed into one mail
    retry_min_s: float = 5.0              # EDGE_SMTP_RETRY_MIN: first backoff step
    retry_max_s: float = 900.0            # EDGE_SMTP_RETRY_MAX: backoff cap
    give_up_s: float = 3 * 86400.0        # EDGE_SMTP_GIVE_UP: a mail still undelivered after this fails

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def sender_address(self) -> str:
        """The bare addr-spec of ``sender`` (the SMTP envelope sender)."""
        return parseaddr(self.sender)[1]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MailSettings":
        get = lambda name: (env.get(name) or "").strip()  # noqa: E731 - a local shorthand

        def opt_int(var: str, default: int, minimum: int) -> int:
            return parse_int(get(var), var, minimum) if get(var) else default

        def opt_float(var: str, default: float) -> float:
            return parse_float(get(var), var) if get(var) else default

        host = get("EDGE_SMTP_HOST")
        if host and any(c.isspace() or ord(c) < 0x20 for c in host):
            raise ConfigError(f"EDGE_SMTP_HOST: '{host}' is not a host name")
        security = get("EDGE_SMTP_SECURITY").lower() or "starttls"
        if security not in SECURITY_MODES:
            raise ConfigError(f"EDGE_SMTP_SECURITY: '{security}' is not one of {', '.join(SECURITY_MODES)}")
        port = DEFAULT_PORTS[security]
        if get("EDGE_SMTP_PORT"):
            port = parse_int(get("EDGE_SMTP_PORT"), "EDGE_SMTP_PORT", 1)
            if port > 65535:
                raise ConfigError(f"EDGE_SMTP_PORT: {port} is not a TCP port")
        user = env.get("EDGE_SMTP_USER") or ""
        password = env.get("EDGE_SMTP_PASSWORD") or ""
        if password and not user:
            raise ConfigError("EDGE_SMTP_PASSWORD: set without EDGE_SMTP_USER")
        sender = cls.sender
        if get("EDGE_SMTP_FROM"):
            sender = _check_sender(get("EDGE_SMTP_FROM"))
        elif "@" in user and address_problem(user) is None:
            sender = user        # relays often insist on From == login
        ca_file = get("EDGE_SMTP_CA_FILE")
        max_recipients = opt_int("EDGE_SHARE_MAX_RECIPIENTS", cls.max_recipients, 1)
        mails_per_hour = opt_int("EDGE_SHARE_MAILS_PER_HOUR", cls.mails_per_hour, 1)
        timeout_s = opt_float("EDGE_SMTP_TIMEOUT", cls.timeout_s)
        receipt_window_s = opt_float("EDGE_SHARE_RECEIPT_WINDOW", cls.receipt_window_s)
        retry_min_s = opt_float("EDGE_SMTP_RETRY_MIN", cls.retry_min_s)
        retry_max_s = opt_float("EDGE_SMTP_RETRY_MAX", cls.retry_max_s)
        give_up_s = opt_float("EDGE_SMTP_GIVE_UP", cls.give_up_s)
        if timeout_s <= 0:
            raise ConfigError("EDGE_SMTP_TIMEOUT: must be positive")
        if retry_min_s > retry_max_s:
            raise ConfigError("EDGE_SMTP_RETRY_MIN: must not exceed EDGE_SMTP_RETRY_MAX")
        return cls(host=host, port=port, user=user, password=password, security=security, sender=sender,
                   ca_file=ca_file, timeout_s=timeout_s, max_recipients=max_recipients,
                   mails_per_hour=mails_per_hour, receipt_window_s=receipt_window_s, retry_min_s=retry_min_s,
                   retry_max_s=retry_max_s, give_up_s=give_up_s)

    def describe(self) -> list[str]:
        """One line per setting for the start-up log; the password masked."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "password":
                value = "***" if value else "(empty)"
            out.append(f"mail.{f.name} = {value}")
        return out


def _check_sender(text: str) -> str:
    """``addr`` or ``Name <addr>``; the address strict, the name free of line breaks."""
    if any(ord(c) < 0x20 or c in "\x7f\x85\u2028\u2029" for c in text):
        raise ConfigError("EDGE_SMTP_FROM: must not contain control characters")
    name, addr = parseaddr(text)
    problem = address_problem(addr) if addr else "it holds no address"
    if problem:
        raise ConfigError(f"EDGE_SMTP_FROM: '{text}' is not a usable sender address ({problem})")
    try:
        return str(Address(display_name=name, addr_spec=addr)) if name else addr
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"EDGE_SMTP_FROM: '{text}' is not a usable sender address ({exc})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--smtp-*`` flags to ``edge serve``."""
    for flag, _var, help_text in FLAGS:
        parser.add_argument(flag, help=help_text)


def env_from_args(args: argparse.Namespace) -> dict[str, str]:
    """The given flags as variables, to lay over the environment (flags win)."""
    out = {}
    for flag, var, _help in FLAGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            out[var] = str(value)
    return out
