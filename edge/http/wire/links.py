"""The share-link resource's JSON (``<base>api/v1/links``): the create and PATCH bodies, a link, the list.

Owns: the fields a create body may carry (ReductStore's, the legacy ``index`` included, plus our
``max_downloads``, ``password``, ``receipt_to``, ``send_receipts``, ``require_authentication``)
and a PATCH body's, their types and their 422 texts (``link_create_from_wire`` in the order the
handler has always checked them, ``link_changes_from_wire``), a link's shape for ``GET links[/id]``
and PATCH (``link_to_wire``: no hash, no token, no password), the create answer and the list.
Must not: do I/O, authorise, look up buckets or records, or decide link rules (edge/links/rules.py);
``edge/http/links.py`` does those in between (the 403 on the bucket comes before any other field).
The vendor APIs' link shapes are their own (liquidfiles/common.py, mediapocket.py).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass
from typing import Mapping, TypedDict

from ...errors import InvalidInputError
from ...links.registry import LinkRecord
from ...mail.compose import check_address
from ...query.plan import QUERY, U64_MAX, plan_from_json

MAX_RECEIPT_TO = 320   # an e-mail address (RFC 5321 path limit); only stored for the mail room
REDUCT_FIELDS = ("bucket", "entry", "record_entry", "record_timestamp", "query", "expire_at", "base_url", "index")
EDGE_FIELDS = ("max_downloads", "password", "receipt_to", "send_receipts", "require_authentication")
PATCH_FIELDS = ("expire_at", "max_downloads", "password", "receipt_to", "send_receipts", "require_authentication")


class LinkChanges(TypedDict, total=False):
    """A PATCH body's changes (``LinkRegistry.update``'s arguments); expire_at and max_downloads
    as sent: the registry checks them, with its texts."""
    expire_at: object
    max_downloads: object
    password: str | None
    receipt_to: str | None
    send_receipts: bool
    require_authentication: bool


@dataclass(frozen=True)
class LinkCreate:
    """A create body, checked (what the handler still checks: the bucket and record exist)."""

    bucket: str
    entry: str
    record_entry: str
    record_ts: int
    record_given: bool            # record_entry was in the body (a .tar bundle may omit it)
    query: dict[str, object]
    expire_at: int
    base_url: str
    max_downloads: int | None
    password: str | None
    receipt_to: str | None
    send_receipts: bool
    require_authentication: bool


def check_fields(doc: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key in doc:
        if key not in allowed:
            raise InvalidInputError(f"Unknown field '{str(key)[:64]}' in the link body; this server knows "
                                    + ", ".join(allowed))


def link_bucket_from_wire(doc: Mapping[str, object]) -> str:
    """The first step of a create body: only known fields, and the bucket (checked for access
    by the handler before anything else is looked at)."""
    check_fields(doc, REDUCT_FIELDS + EDGE_FIELDS)
    if "bucket" not in doc:
        raise _missing("bucket")
    bucket = doc["bucket"]
    if not isinstance(bucket, str):
        raise InvalidInputError("Invalid JSON: invalid type for `bucket`, expected a string")
    return bucket


def link_create_from_wire(doc: Mapping[str, object], bucket: str, file_name: str, default_base: str) -> LinkCreate:
    """The rest of a create body (after ``link_bucket_from_wire`` and the handler's 403)."""
    for field in ("query", "expire_at"):
        if field not in doc:
            raise _missing(field)
    query = doc["query"]
    if not isinstance(query, dict) or query.get("query_type") != QUERY:
        raise InvalidInputError("Only 'Query' type is supported for query links")
    plan_from_json(query)                       # a bad query is a 422 now, not at download
    entry = doc.get("entry") or ""
    if not isinstance(entry, str):
        raise InvalidInputError("Invalid JSON: invalid type for `entry`, expected a string")
    record_entry, record_ts = doc.get("record_entry"), doc.get("record_timestamp")
    if record_entry is None or record_ts is None:
        if not file_name.lower().endswith(".tar"):  # a bundle serves the whole result: no record needed
            raise InvalidInputError("Both 'record_entry' and 'record_timestamp' must be provided in payload")
        record_entry, record_ts = record_entry or "", record_ts or 0
    if not isinstance(record_entry, str):
        raise InvalidInputError("Invalid JSON: invalid type for `record_entry`, expected a string")
    if isinstance(record_ts, bool) or not isinstance(record_ts, int) or not 0 <= record_ts <= U64_MAX:
        raise InvalidInputError("Invalid JSON: invalid type for `record_timestamp`, expected u64")
    expire_at = doc["expire_at"]
    if isinstance(expire_at, bool) or not isinstance(expire_at, int) or expire_at < 0:
        raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
    base = base_url_from_wire(doc.get("base_url"), default_base)
    max_downloads = _opt_int(doc, "max_downloads")
    password = _opt_str(doc, "password")
    receipt_to = _opt_str(doc, "receipt_to", MAX_RECEIPT_TO)
    if receipt_to is not None:
        check_address(receipt_to, "receipt_to")   # 422 naming it: a receipt must be deliverable
    send_receipts = _opt_bool(doc, "send_receipts", receipt_to is not None)
    require_auth = _opt_bool(doc, "require_authentication", False)
    return LinkCreate(bucket, entry, record_entry, record_ts, doc.get("record_entry") is not None, query,
                      expire_at, base, max_downloads, password, receipt_to, send_receipts, require_auth)


def link_changes_from_wire(doc: Mapping[str, object]) -> LinkChanges:
    """A PATCH body's changes, checked: any of PATCH_FIELDS (null clears max_downloads, password,
    receipt_to); the handler checks that require_authentication can be honoured."""
    check_fields(doc, PATCH_FIELDS)
    if not any(k in doc for k in PATCH_FIELDS):
        raise InvalidInputError("Nothing to update: give one of " + ", ".join(PATCH_FIELDS))
    changes: LinkChanges = {}
    if "expire_at" in doc:
        if doc["expire_at"] is None:
            raise InvalidInputError("'expire_at' must be a UNIX time in seconds")
        changes["expire_at"] = doc["expire_at"]
    if "max_downloads" in doc:
        changes["max_downloads"] = doc["max_downloads"]
    if "password" in doc:
        changes["password"] = _opt_str(doc, "password")
    if "receipt_to" in doc:
        receipt_to = changes["receipt_to"] = _opt_str(doc, "receipt_to", MAX_RECEIPT_TO)
        if receipt_to is not None:
            check_address(receipt_to, "receipt_to")
    if "send_receipts" in doc:
        changes["send_receipts"] = _opt_bool(doc, "send_receipts", False)
    if "require_authentication" in doc:
        changes["require_authentication"] = _opt_bool(doc, "require_authentication", False)
    return changes


def base_url_from_wire(value: object, default: str) -> str:
    """``base_url`` must be absolute with a host; a ``/`` is appended (spec §11.1)."""
    if value is None:
        return default
    prefix = "Invalid base_url provided for query link: "
    if not isinstance(value, str):
        raise InvalidInputError(prefix + "expected a string")
    try:
        parts = urllib.parse.urlsplit(value.strip())
        host = parts.hostname
        parts.port                                   # raises on a bad port
    except ValueError as exc:
        raise InvalidInputError(prefix + str(exc)) from None
    if not parts.scheme:
        raise InvalidInputError(prefix + "relative URL without a base")
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInputError(prefix + "missing host")
    url = value.strip()
    return url if url.endswith("/") else url + "/"


def link_to_wire(rec: LinkRecord, now: float, *, with_receipts: bool = False,
                 short_url: str | None = None) -> dict[str, object]:
    """A link for ``GET /api/v1/links[/:id]`` and PATCH: no hash, no token, no password (the
    list adds ``short_url``, the details the receipts)."""
    out: dict[str, object] = {
        "id": rec.id, "file_name": rec.file_name, "bucket": rec.bucket, "entry": rec.entry,
        "record_entry": rec.record_entry, "record_timestamp": rec.record_ts,
        "created_at": rec.created_at, "expire_at": rec.expire_at, "downloads": rec.downloads,
        "max_downloads": rec.max_downloads, "has_password": rec.has_password,
        "revoked": rec.revoked, "creator": rec.creator, "receipt_to": rec.receipt_to,
        "state": rec.state(now), "serial": rec.serial,
        "require_authentication": rec.require_authentication, "send_receipts": rec.send_receipts,
        "origin": rec.origin,
    }
    if with_receipts:
        out["receipts"] = [dataclasses.asdict(r) for r in rec.receipts]
    if short_url is not None:
        out["short_url"] = short_url
    return out


def link_created_to_wire(url: str, rec: LinkRecord, short_url: str) -> dict[str, object]:
    """The create answer: the URL to hand out (ReductStore's ``link``) and our id, expiry, short URL."""
    return {"link": url, "id": rec.id, "expire_at": rec.expire_at, "short_url": short_url}


def links_to_wire(links: list[dict[str, object]]) -> dict[str, object]:
    return {"links": links}


def _opt_bool(doc: Mapping[str, object], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInputError(f"'{key}' must be true or false")
    return value


def _missing(field: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid JSON: missing field `{field}`")


def _opt_int(doc: Mapping[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInputError(f"'{key}' must be an integer")
    return value


def _opt_str(doc: Mapping[str, object], key: str, limit: int | None = None) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"'{key}' must be a string")
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidInputError(f"'{key}' is longer than {limit} characters")
    if value == "":
        raise InvalidInputError(f"'{key}' must not be empty (use null to clear it)")
    return value
