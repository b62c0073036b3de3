"""Shared by the LiquidFiles resources: the API key, the error body, a FileLink's JSON.

Owns: authentication as LiquidFiles does it (HTTP Basic with the API key as user name and any
password; ``Authorization: Bearer`` works too, being edge's own way), the error shape
``{"errors": ["<text>"]}`` with the status of ``edge/http/errors.py`` (or 422 where the vendor
says "anything wrong is a 422"), and the FileLink JSON with exactly the vendor's fields.
Must not: serve files or change links.
"""

from __future__ import annotations

from ...auth.policy import Policy
from ...auth.tokens import Token
from ...errors import (BadRequestError, ConflictError, ForbiddenError, InvalidInputError, NotFoundError,
                      PayloadTooLargeError)
from ...links import LinkRecord
from ...links.wire import expiry_day, iso_ms, size_human
from ..context import AppContext, authorize, authorize_api_key, public_base_url
from ..link_access import basic_credentials
from ..shared_links import json_bytes, served_size, vendor_errors
from ...server.types import Request


def _render(status: int, text: str) -> bytes:
    return json_bytes({"errors": [text]})


# Every error of this API: its own shape; "not permitted" is the vendor's 422, not 403.
answers = vendor_errors(_render, {ForbiddenError: 422})
# Create: "422 Unprocessable Entity if anything went wrong" (401 and 429 stay what they are).
answers_422 = vendor_errors(_render, {ForbiddenError: 422, NotFoundError: 422, BadRequestError: 422,
                                      PayloadTooLargeError: 422, ConflictError: 422})


def api_token(req: Request, ctx: AppContext, policy: Policy | None) -> Token:
    """The caller's token: the user name of Basic (the API key), else a bearer token."""
    basic = basic_credentials(req)
    if basic is not None:
        return authorize_api_key(req, ctx, basic[0] or None, policy)
    return authorize(req, ctx, policy)


def link_url(req: Request, ctx: AppContext, rec: LinkRecord) -> str:
    return f"{public_base_url(req, ctx)}link/{rec.id}"


def link_json(req: Request, ctx: AppContext, rec: LinkRecord) -> dict[str, object]:
    """The vendor's FileLink fields, in the vendor's order, nothing else."""
    size = served_size(ctx, rec)
    return {"id": rec.id, "filename": rec.file_name, "send_download_confirmation": rec.send_receipts,
            "require_authentication": rec.require_authentication, "size": size, "size_human": size_human(size),
            "expires_at": expiry_day(rec.expire_at), "url": link_url(req, ctx, rec),
            "created_at": iso_ms(rec.created_ms or rec.created_at * 1000),
            "updated_at": iso_ms(rec.updated_ms or rec.updated_at * 1000)}


def check_keys(doc: dict[str, object], allowed: tuple[str, ...], where: str) -> None:
    """Never weaker than asked: a key we do not know is a 422 naming it."""
    for key in doc:
        if key not in allowed:
            raise InvalidInputError(f"Unknown parameter '{str(key)[:64]}' in {where}; known: {', '.join(allowed)}")


def flag(doc: dict[str, object], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInputError(f"'{key}' must be true or false")
    return value

