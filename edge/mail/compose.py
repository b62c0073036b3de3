"""Share mails and download receipts as MIME messages (plain text + HTML alternative).

Owns: the strict address check (one bare ``local@domain`` per recipient, ASCII, no quoting, no
comments, no display name), the texts and layout of both mails, human sizes and times.
Must not: do I/O, talk SMTP, know HTTP or link state (callers pass plain values), import trio.

Header injection: every header value that carries user input (subjects built from file names,
recipients) is either refused (addresses: anything outside the strict grammar is a 422 naming
it) or cleaned (file names: control and line-separator characters become spaces, long text is
cut), and the message is rendered under ``email.policy.SMTP``, whose header store refuses CR/LF
on its own: two independent locks. User text (the message, file names) only ever reaches the
HTML part through ``html.escape``. Bodies are quoted-printable, so the stored mail is ASCII.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr
from typing import Iterable, Sequence

from ..errors import InvalidInputError

MAX_ADDRESS = 254          # RFC 5321 forward-path minus the brackets
MAX_LOCAL = 64
MAX_SUBJECT = 150
MAX_MESSAGE = 10_000       # characters of the sender's note

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Characters that end a header line somewhere (RFC 5322, Unicode line separators, NEL).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def address_problem(addr: object) -> str | None:
    """Why ``addr`` is not a bare, deliverable ``local@domain`` address, or None if it is."""
    if not isinstance(addr, str) or not addr:
        return "not a string" if not isinstance(addr, str) else "empty"
    if len(addr) > MAX_ADDRESS:
        return "too long"
    if not addr.isascii() or _BREAKS.search(addr) or any(c.isspace() for c in addr):
        return "only printable ASCII without spaces is accepted"
    # parseaddr must give the very same string back: no display name, comment or route.
    name, parsed = parseaddr(addr)
    if name or parsed != addr:
        return "give a bare address like name@example.com"
    local, sep, domain = addr.rpartition("@")
    if not sep or not local or not domain:
        return "missing '@'"
    if len(local) > MAX_LOCAL or not _LOCAL.fullmatch(local):
        return "bad local part"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels) or labels[-1].isdigit():
        return "bad domain"
    return None


def check_address(addr: object, what: str = "recipient") -> str:
    """The address, or ``InvalidInputError`` (422) naming it."""
    problem = address_problem(addr)
    if problem or not isinstance(addr, str):   # (a problem for every non-string)
        shown = _BREAKS.sub(" ", addr)[:80] if isinstance(addr, str) else repr(addr)[:80]
        raise InvalidInputError(f"Invalid {what} address '{shown}': {problem}")
    return addr


def check_recipients(value: object, max_recipients: int) -> list[str]:
    """A non-empty list of strict addresses, de-duplicated case-insensitively, at most ``max_recipients``."""
    if not isinstance(value, list):
        raise InvalidInputError("'recipients' must be a list of e-mail addresses")
    if not value:
        raise InvalidInputError("'recipients' must not be empty")
    out: list[str] = []
    seen: set[str] = set()
    for item in value:
        addr = check_address(item)
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    if len(out) > max_recipients:
        raise InvalidInputError(f"Too many recipients: at most {max_recipients} per request")
    return out


def clean_text(text: str, limit: int) -> str:
    """One line of header-safe text: line breaks and control characters become spaces."""
    text = " ".join(_BREAKS.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def human_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def human_time(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ShareItem:
    """One shared link as the mail shows it."""
    file_name: str
    size: int | None          # None: unknown (a .tar of a query, a record gone)
    expire_at: int            # unix seconds
    short_url: str


@dataclass(frozen=True)
class DownloadLine:
    """One counted download for a receipt."""
    time: float
    client: str
    bytes: int
    range: str | None


def _message(sender: str, to: str, subject: str, text: str, html_body: str, now: float,
             extra: Iterable[tuple[str, str]] = ()) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = check_address(to)
    msg["Subject"] = clean_text(subject, MAX_SUBJECT)
    msg["Date"] = formatdate(now, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    for name, value in extra:
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html_body, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def render(msg: EmailMessage) -> str:
    """The wire form (CRLF line ends), ASCII because every body part is quoted-printable."""
    return msg.as_bytes(policy=SMTP).decode("ascii")


def _html_page(paragraphs: Sequence[str]) -> str:
    body = "\n".join(paragraphs)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>"
            f"<body style=\"font-family:sans-serif\">\n{body}\n</body></html>\n")


def _html_text(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")


def share_mail(*, sender: str, recipient: str, items: Sequence[ShareItem], message: str | None,
               instance: str = "edge", now: float | None = None) -> EmailMessage:
    """One mail to one recipient listing every shared link (name, size, expiry, short URL, note)."""
    now = time.time() if now is None else now
    if not items:
        raise ValueError("a share mail needs at least one link")
    names = [clean_text(i.file_name, 80) for i in items]
    subject = f"Shared with you: {names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")
    who = clean_text(instance, 60)
    count = "a file" if len(items) == 1 else f"{len(items)} files"
    note = (message or "").strip()
    lines = [f"{who} shared {count} with you.", ""]
    if note:
        lines += ["Message:", *("  " + x for x in note.splitlines()), ""]
    for item, name in zip(items, names):
        lines += [f"{name} ({human_size(item.size)}, expires {human_time(item.expire_at)})",
                  f"  {item.short_url}", ""]
    lines += ["--", "The links work until they expire; anyone holding a link can use it, "
              "so please do not forward this mail."]
    parts = [f"<p>{html.escape(who)} shared {count} with you.</p>"]
    if note:
        parts.append(f"<p><b>Message:</b><br>\n{_html_text(note)}</p>")
    rows = "".join(
        f"<li><a href=\"{html.escape(i.short_url, quote=True)}\">{html.escape(n)}</a> "
        f"({html.escape(human_size(i.size))}, expires {html.escape(human_time(i.expire_at))})</li>\n"
        for i, n in zip(items, names))
    parts += [f"<ul>\n{rows}</ul>", "<p style=\"color:#666\">The links work until they expire; anyone "
              "holding a link can use it, so please do not forward this mail.</p>"]
    return _message(sender, recipient, subject, "\n".join(lines) + "\n", _html_page(parts), now)


def receipt_mail(*, sender: str, recipient: str, file_name: str, link_id: str,
                 downloads: Sequence[DownloadLine], dropped: int = 0, dropped_bytes: int = 0,
                 instance: str = "edge",
                 now: float | None = None) -> EmailMessage:
    """One receipt summing the downloads of one link within the coalescing window."""
    now = time.time() if now is None else now
    if not downloads:
        raise ValueError("a receipt needs at least one download")
    name = clean_text(file_name, 80)
    total = len(downloads) + dropped
    times = "once" if total == 1 else f"{total} times"
    nbytes = sum(d.bytes for d in downloads) + dropped_bytes
    subject = f"Download receipt: {name}" + (f" ({total} downloads)" if total > 1 else "")
    head = f"Your shared file {name} (link {link_id}) on {clean_text(instance, 60)} was downloaded {times}"
    head += f" ({human_size(nbytes)} in total)." if total > 1 else "."
    rows = [(human_time(d.time), clean_text(d.client, 64) or "unknown", human_size(d.bytes),
             clean_text(d.range, 80) if d.range else "whole file") for d in downloads]
    lines = [head, ""] + [f"  {t}  from {c}  {b}  {r}" for t, c, b, r in rows]
    if dropped:
        lines.append(f"  ... and {dropped} more (listed on the link)")
    lines += ["", "--", "You get this mail because the link was created with a download receipt."]
    cells = "".join(f"<tr><td>{html.escape(t)}</td><td>{html.escape(c)}</td><td>{html.escape(b)}</td>"
                    f"<td>{html.escape(r)}</td></tr>\n" for t, c, b, r in rows)
    parts = [f"<p>{html.escape(head)}</p>",
             "<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\">\n"
             f"<tr><th>time</th><th>client</th><th>bytes</th><th>range</th></tr>\n{cells}</table>"]
    if dropped:
        parts.append(f"<p>... and {dropped} more (listed on the link)</p>")
    parts.append("<p style=\"color:#666\">You get this mail because the link was created with a "
                 "download receipt.</p>")
    return _message(sender, recipient, subject, "\n".join(lines) + "\n", _html_page(parts), now,
                    extra=[("Auto-Submitted", "auto-generated")])
