"""The mail room: the outbox, the SMTP sender task, download receipts and the hourly share limit.

Owns: ``start`` (reads ``MailSettings`` from ``Config.env``, opens the outbox, returns the
``MailService`` (``AppContext.mail``), starts the sender in the serving nursery when a host is set),
``MailService.share`` (limit + compose + queue), ``on_download`` (the receipt hook the link
download handler calls after a counted download), the sender loop (SMTP in a worker thread,
none / STARTTLS / implicit TLS, AUTH, retries with capped exponential backoff), and receipt
coalescing.
Must not: import ``edge.http``, log message bodies or link URLs (they are bearer secrets), block
the event loop (SMTP and every outbox write run in worker threads), or lose a queued mail.

Retries: a connection-level failure (refused, timeout, TLS, AUTH, 421, disconnect) backs the
whole relay off (``retry_min_s * 2**(n-1)`` capped at ``retry_max_s``) and counts an attempt on
the mails it held up; a 4xx on one mail retries that mail alone; a 5xx fails it for good. A mail
still undelivered ``give_up_s`` after it was queued fails. State lives in the outbox files, so
retries continue across restarts.

Receipts: ``on_download`` only notes the download in memory (it runs on the request path); the
sender turns all downloads of one link within ``receipt_window_s`` of the first into one mail.
A crash before that loses nothing: the downloads are on the link record, and at start-up every
counted download newer than the link's last receipt mail (``covers_until``, at most a day back)
is mailed.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Callable, Sequence

import trio

from ..errors import BadRequestError, ConfigError, RateLimitedError
from ..mail.compose import (DownloadLine, ShareItem, address_problem, receipt_mail, render,
                            share_mail)
from ..mail.outbox import Mail, Outbox
from ..mail.settings import MailSettings
from ..links import LinkRecord
from .. import blocking

if TYPE_CHECKING:
    from ..config import Config
    from ..durable import Damage
    from ..links import LinkRegistry

log = logging.getLogger("edge.mail")

NOT_CONFIGURED = "Mail is not configured on this server"
HOUR_S = 3600.0
BATCH = 50                     # mails per SMTP connection
MAX_RECEIPT_LINES = 100        # per coalesced receipt; the rest are counted, and listed on the link
RECOVER_RECEIPTS_S = 86400.0   # at start-up, mail un-mailed downloads at most this old
PRUNE_EVERY_S = 3600.0


@dataclass
class _Pending:
    """Downloads of one link waiting for their receipt mail."""
    record: LinkRecord         # the latest one seen
    first_at: float
    lines: list[DownloadLine] = field(default_factory=list)
    dropped: int = 0
    dropped_bytes: int = 0


def backoff(settings: MailSettings, failures: int) -> float:
    return min(settings.retry_max_s, settings.retry_min_s * 2 ** max(0, failures - 1))


def ssl_context(settings: MailSettings) -> ssl.SSLContext:
    """The system's trust store, plus ``EDGE_SMTP_CA_FILE`` when given; hostnames always checked."""
    context = ssl.create_default_context()
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"EDGE_SMTP_CA_FILE: cannot load '{settings.ca_file}': {exc}") from None
    return context


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values()) or "recipients refused"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _RelayDown(Exception):
    """A connection-level failure: back the whole relay off."""


class MailService:
    def __init__(self, settings: MailSettings, outbox: Outbox, links: "LinkRegistry | None", *,
                 instance: str = "edge", clock: Callable[[], float] = time.time, default_receipt_to: str = ""):
        self.settings = settings
        self.outbox = outbox
        self.links = links                  # LinkRegistry (None when the link room is absent)
        self.instance = instance
        self.default_receipt_to = default_receipt_to   # EDGE_RECEIPT_TO
        self._clock = clock
        self._ssl = ssl_context(settings) if settings.enabled and settings.security != "none" else None
        self._wake = trio.Event()
        self._share_lock = trio.Lock()
        self._pending: dict[str, _Pending] = {}
        self._failures = 0                  # consecutive relay-level failures
        self._relay_retry_at = 0.0
        self._next_prune = 0.0
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # --- the request side ---------------------------------------------------------------------

    def check_rate(self, token: str, count: int) -> None:
        """The hourly limit per token (share mails queued in the last hour, any state)."""
        now = self._clock()
        used = self.outbox.count_since(token, now - HOUR_S)
        limit = self.settings.mails_per_hour
        if used + count > limit:
            mine = sorted(m.created_at for m in self.outbox.list()
                          if m.token == token and m.kind == "share" and m.created_at >= now - HOUR_S)
            free_at = mine[min(len(mine) - 1, max(0, used + count - limit - 1))] + HOUR_S if mine else now
            exc = RateLimitedError(f"Too many mails: token '{token}' may send {limit} share mails per hour"
                                   f" ({used} sent in the last hour)")
            exc.retry_after_s = max(1, int(free_at - now) + 1)
            raise exc

    async def share(self, *, token: str, items: Sequence[ShareItem], link_ids: Sequence[str],
                    recipients: Sequence[str], message: str | None) -> int:
        """Queue one mail per recipient; answers once every mail is on disk."""
        if not self.enabled:
            raise BadRequestError(NOT_CONFIGURED)
        s = self.settings
        async with self._share_lock:        # limit check and queueing are one step
            self.check_rate(token, len(recipients))
            now = self._clock()
            mails = []
            for rcpt in recipients:
                msg = share_mail(sender=s.sender, recipient=rcpt, items=items, message=message,
                                 instance=self.instance, now=now)
                mails.append((rcpt, str(msg["Subject"]), render(msg)))

            def queue() -> None:
                for rcpt, subject, raw in mails:
                    self.outbox.enqueue(kind="share", token=token, sender=s.sender_address, recipients=[rcpt],
                                        subject=subject, raw=raw, link_ids=tuple(link_ids))

            await blocking.run_disk(queue)
        self._wake.set()
        return len(mails)

    def on_download(self, link_record: LinkRecord, client: str, nbytes: int, range_text: str | None,
                    when: float) -> None:
        """Receipt hook: called by the download handler after a counted download. Never raises."""
        try:
            if not self.enabled or self.receipt_address(link_record) is None:
                return
            self._note(link_record, DownloadLine(float(when), str(client), int(nbytes), range_text))
            self._wake.set()
        except Exception:  # a receipt must never break a download
            log.exception("receipt hook failed for link %s", link_record.id)

    def receipt_address(self, link_record: LinkRecord) -> str | None:
        """Where a download receipt of this link goes: None when its switch is off or no address
        is known (its own ``receipt_to``, else the server's ``EDGE_RECEIPT_TO``)."""
        if not link_record.send_receipts:
            return None
        return link_record.receipt_to or self.default_receipt_to or None

    def _note(self, record: LinkRecord, line: DownloadLine) -> None:
        group = self._pending.get(record.id)
        if group is None:
            group = self._pending[record.id] = _Pending(record, line.time)
        group.record = record
        if len(group.lines) < MAX_RECEIPT_LINES:
            group.lines.append(line)
        else:
            group.dropped += 1
            group.dropped_bytes += line.bytes

    def listing(self, state: str | None = None) -> list[dict]:
        return [m.describe() for m in self.outbox.list(state)]

    # --- the sender task ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await blocking.run_disk(self._recover_receipts)
        task_status.started()
        self._next_prune = 0.0
        while True:
            try:
                wake_at = await self._step()
            except Exception:
                # A full disk or a bug must not take the server down with the mail room: the
                # state is on disk, so the next round simply tries again.
                log.exception("mail sender: round failed; retrying in %.0f s", self.settings.retry_min_s)
                wake_at = self._clock() + self.settings.retry_min_s
            if wake_at is not None:
                await self._sleep_until(wake_at)

    async def _step(self) -> float | None:
        """One round: prune, queue ripe receipts, send one batch. Returns when to wake (None: now)."""
        now = self._clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            dropped = await blocking.run_disk(self.outbox.prune)
            if dropped:
                log.info("outbox: forgot %d finished mail(s)", dropped)
        await self._flush_receipts(now)
        if now >= self._relay_retry_at:
            due = self.outbox.due(now, BATCH)
            if due:
                await self._send(due)
                return None
        return self._next_wake(self._next_prune)

    def _next_wake(self, next_prune: float) -> float:
        times = [next_prune]
        times += [g.first_at + self.settings.receipt_window_s for g in self._pending.values()]
        due = self.outbox.next_due_at()
        if due is not None:
            times.append(max(due, self._relay_retry_at))
        return min(times)

    async def _sleep_until(self, at: float) -> None:
        with trio.move_on_after(max(0.0, at - self._clock())):
            await self._wake.wait()
        self._wake = trio.Event()   # the loop re-reads all state after this, so no wake-up is lost

    async def _flush_receipts(self, now: float) -> None:
        ready = [k for k, g in self._pending.items() if g.first_at + self.settings.receipt_window_s <= now]
        for link_id in ready:
            group = self._pending.pop(link_id)
            try:
                await blocking.run_disk(self._queue_receipt, group)
            except BaseException:
                # Not queued (disk full ...): keep the downloads for the next round.
                for line in group.lines:
                    self._note(group.record, line)
                raise

    def _queue_receipt(self, group: _Pending) -> None:
        rec, s = group.record, self.settings
        address = self.receipt_address(rec)
        if address is None:
            return                              # the switch was turned off meanwhile
        problem = address_problem(address)
        if problem:
            log.warning("link %s: receipt address unusable (%s); no receipt mailed", rec.id, problem)
            return
        msg = receipt_mail(sender=s.sender, recipient=address, file_name=rec.file_name, link_id=rec.id,
                           downloads=group.lines, dropped=group.dropped, dropped_bytes=group.dropped_bytes,
                           instance=self.instance, now=self._clock())
        self.outbox.enqueue(kind="receipt", token=rec.creator, sender=s.sender_address,
                            recipients=[address], subject=str(msg["Subject"]), raw=render(msg),
                            link_ids=(rec.id,), covers_until=max(x.time for x in group.lines))

    def _recover_receipts(self) -> None:
        """Counted downloads after the link's last receipt mail (a crash inside a window)."""
        if self.links is None:
            return
        marks = self.outbox.receipt_marks()
        horizon = self._clock() - RECOVER_RECEIPTS_S
        for rec in self.links.list():
            if self.receipt_address(rec) is None:
                continue
            since = max(marks.get(rec.id, 0.0), horizon)
            for r in rec.receipts:
                if r.counted and r.time > since:
                    self._note(rec, DownloadLine(r.time, r.client, r.bytes, r.range))
        if self._pending:
            log.info("mail: %d link(s) have downloads without a receipt mail yet", len(self._pending))

    async def _send(self, mails: list[Mail]) -> None:
        try:
            await blocking.run_net(self._deliver, mails)
        except _RelayDown as down:
            error, blamed, count_attempt = down.args
            self._failures += 1
            self._relay_retry_at = self._clock() + backoff(self.settings, self._failures)
            self.last_error = error
            log.warning("mail relay %s:%d: %s; next try in %.0f s", self.settings.host, self.settings.port,
                        error, self._relay_retry_at - self._clock())
            await blocking.run_disk(partial(self._requeue, blamed, error, self._relay_retry_at,
                                                  count_attempt))
        else:
            self._failures = 0
            self._relay_retry_at = 0.0

    def _requeue(self, ids: list[str], error: str, at: float, count_attempt: bool) -> None:
        for mail_id in ids:
            mail = self.outbox.get(mail_id)
            if self._clock() - mail.created_at > self.settings.give_up_s:
                attempts = mail.attempts + (1 if count_attempt else 0)
                self.outbox.mark_failed(mail_id, f"gave up after {attempts} attempts: {error}",
                                        count_attempt=count_attempt)
            else:
                self.outbox.mark_retry(mail_id, error, at, count_attempt=count_attempt)

    # --- SMTP, in a worker thread ---------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        helo = socket.gethostname() or "localhost"      # getfqdn() may block on DNS
        if s.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, local_hostname=helo, timeout=s.timeout_s,
                                                  context=self._ssl)
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=helo, timeout=s.timeout_s)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                # Raises when the server does not offer STARTTLS: never fall back to clear text.
                smtp.starttls(context=self._ssl)
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, mails: list[Mail]) -> None:
        """Send ``mails`` over one connection, marking each in the outbox as it goes."""
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            raise _RelayDown(_describe(exc), [m.id for m in mails], True) from None
        try:
            for mail in mails:
                self.outbox.mark_sending(mail.id)
                try:
                    smtp.sendmail(mail.sender, list(mail.recipients), mail.raw.encode("ascii"))
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [code for code, _ in exc.recipients.values()]
                    self._bounce(mail, _describe(exc), permanent=all(c >= 500 for c in codes))
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    raise _RelayDown(_describe(exc), [mail.id], False) from None
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code == 421:      # the server is closing: a relay problem, not the mail's
                        raise _RelayDown(_describe(exc), [mail.id], False) from None
                    self._bounce(mail, _describe(exc), permanent=exc.smtp_code >= 500)
                except smtplib.SMTPException as exc:
                    self._bounce(mail, _describe(exc), permanent=False)
                else:
                    self.outbox.mark_sent(mail.id)
                    log.info("mail %s (%s) sent", mail.id, mail.kind)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _bounce(self, mail: Mail, error: str, *, permanent: bool) -> None:
        mail = self.outbox.get(mail.id)
        if permanent or self._clock() - mail.created_at > self.settings.give_up_s:
            self.outbox.mark_failed(mail.id, error)
            log.warning("mail %s failed: %s", mail.id, error)
        else:
            self.outbox.mark_retry(mail.id, error, self._clock() + backoff(self.settings, mail.attempts))


async def start(nursery: trio.Nursery, config: Config, links: LinkRegistry, damaged: list[Damage]) -> MailService:
    """Room starter (``edge.main.start_rooms``): the mail service.

    Always present (the outbox listing works without a relay); the sender task runs only when
    ``EDGE_SMTP_HOST`` is set. Bad settings raise ``ConfigError`` and stop start-up.
    """
    settings = config.mail
    outbox = await blocking.run_disk(Outbox.open, config.data_path)
    for line in outbox.load_report:
        log.warning("outbox: %s", line)
    damaged.extend(outbox.damaged)
    if config.receipt_to:
        problem = address_problem(config.receipt_to)
        if problem:
            raise ConfigError(f"EDGE_RECEIPT_TO: '{config.receipt_to}' is not a usable address: {problem}")
    service = MailService(settings, outbox, links, instance=config.instance_name,
                          default_receipt_to=config.receipt_to)
    for line in settings.describe():
        log.debug("setting %s", line)
    waiting = len(outbox.list("queued"))
    if not settings.enabled:
        if waiting:
            log.warning("mail is off (no EDGE_SMTP_HOST) but %d mail(s) wait in the outbox", waiting)
        return service
    log.info("mail via %s:%d (%s)%s, %d mail(s) queued", settings.host, settings.port, settings.security,
             " with AUTH" if settings.user else "", waiting)
    await nursery.start(service.run)
    return service
