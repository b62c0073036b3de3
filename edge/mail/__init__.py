"""Mail: settings, message composition and the durable outbox (the Trio sender is ``edge.services.mail``).

Owns: re-exporting the public API of ``settings`` (EDGE_SMTP_* and share limits), ``compose``
(share and receipt mails, address checks) and ``outbox`` (one JSON file per mail in
``<data>/.edge/outbox/``).
Must not: import trio, edge.http, edge.services or edge.store; talk to an SMTP server (the sender
task in ``edge.services.mail`` does, in a worker thread).
"""

from .compose import (DownloadLine, ShareItem, check_address, check_recipients, human_size,
                      receipt_mail, share_mail)
from .outbox import Mail, Outbox
from .settings import MailSettings

__all__ = ["DownloadLine", "Mail", "MailSettings", "Outbox", "ShareItem", "check_address",
           "check_recipients", "human_size", "receipt_mail", "share_mail"]
