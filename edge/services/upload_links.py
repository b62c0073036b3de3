"""The upload-link room: opens the registry and offers the hook the tus handler calls.

Owns: the ``UploadLinkService`` (``AppContext.upload_links``), opened at start-up by the room
starter ``start`` (called from ``edge.main.start_rooms``).
Must not: import ``edge.http``, build responses, or touch uploads/records itself: the tus
service stages and writes, this room only says yes (and counts) or raises.

The tus hook (``edge/http/uploads.py``), for a request carrying ``Upload-Link: <secret>``:

    creation:          grant = links.authorize_upload(secret, metadata, length, client_ip)
                       try: up = await svc.create(...)
                       except BaseException: links.release(grant); raise
                       links.bind(grant, up.id)
    HEAD/PATCH/DELETE: links.check_access(secret, upload_id)

``edge.http.upload_links.create_with_link`` / ``check_link_access`` wrap exactly that.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping


from edge.errors import BadRequestError
from edge.uploadlinks import UploadLinkRegistry
from edge.uploadlinks.registry import Grant
from .. import blocking

if TYPE_CHECKING:
    from pathlib import Path
    from edge.config import Config
    from edge.durable import Damage

log = logging.getLogger("edge.upload_links")

# Metadata an anonymous uploader may send; everything else (ts, label-*) is the link owner's call.
ALLOWED_METADATA = frozenset({"bucket", "entry", "filename", "filetype", "name", "type", "relativePath"})


class UploadLinkService:
    def __init__(self, registry: UploadLinkRegistry):
        self.registry = registry

    def authorize_upload(self, secret: str, metadata: Mapping[str, str], length: int | None, client: str) -> Grant:
        """Raise (404 uniform, 403 scope/limit, 413 size, 400 metadata) or reserve one file."""
        self.registry.resolve(secret)            # unknown/revoked/expired: the uniform 404 first
        extra = sorted(k for k in metadata if k not in ALLOWED_METADATA)
        if extra:
            raise BadRequestError(f"Upload-Metadata key '{extra[0]}' is not accepted through an upload link")
        return self.registry.reserve(secret, bucket=metadata.get("bucket", ""), entry=metadata.get("entry", ""),
                                     length=length, filename=metadata.get("filename", ""), client=client)

    def release(self, grant: Grant) -> None:
        self.registry.release(grant)

    def bind(self, grant: Grant, upload_id: str) -> None:
        self.registry.bind(grant, upload_id)

    def check_access(self, secret: str, upload_id: str) -> None:
        self.registry.check_access(secret, upload_id)

    def statistics(self) -> dict[str, int]:
        return self.registry.statistics()


def _open(data_path: Path, damaged: list[Damage]) -> UploadLinkService:
    registry = UploadLinkRegistry.open(data_path)
    for line in registry.load_report:
        log.warning("%s", line)
    damaged.extend(registry.damaged)
    return UploadLinkService(registry)


async def start(config: Config, damaged: list[Damage]) -> UploadLinkService:
    """Room starter: open the registry before the HTTP front listens; no background task."""
    svc = await blocking.run_disk(_open, config.data_path, damaged)
    log.info("%d upload link(s) loaded", len(svc.registry.list()))
    return svc
