"""Anonymous share-link downloads: ``GET|HEAD <base>api/v1/links/{file_name+}?ct=&s=&i=&n=[&e=&ts=]``.

Owns: the order of checks for a download, resolving the link's record through its sealed query
(spec §11.2 step 7), the response headers (single-record headers of §6.3, the stored file name in
``Content-Disposition``, no-store / no-referrer / nosniff), Range (single, multiple, suffix, 416,
``If-Range`` with our ETag), ``.tar`` bundles of a whole query result, and recording downloads.
Must not: decide link rules (``edge.links.rules``), persist anything itself (``LinkRegistry``),
or trust the URL path: the file name, the bucket and "is this a .tar link" all come from the
server-side record, so a holder cannot rename a single-record link into a bundle of the query.

Check order (cheap first, links.md §3): missing parameter -> base64 of ct/s/n (both spec 422s)
-> registry lookup by SHA-256(ct) -> AES-SIV unseal (HKDF, microseconds) -> revoked / expired
-> issuer token (exists, lifetime, read access; as upstream step 6) -> used up -> password
(scrypt, in a worker thread) -> the query scan. A forged or tampered link never reaches
anything slower than one HKDF. Revoked, used-up, unknown and forged links get the same
``404 Link not found or has expired``; expired ones keep ReductStore's ``422``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import time
from contextlib import aclosing
from datetime import datetime, timezone
from functools import partial
from typing import Any, AsyncIterator

import trio

from ..auth.policy import Read
from ..auth.tokens import check_lifetime
from ..errors import InvalidInputError, LinkInvalidError, NotFoundError, RangeNotSatisfiableError, UnauthorizedError
from ..links import (Member, RangePlan, Span, TarLayout, check_state, content_disposition, decode_b64,
                     link_not_found, member_name, plan_range)
from ..links.seal import unseal
from ..query.cursor import BUSY, QueryCursor
from ..query.plan import QUERY, plan_from_json
from ..query.select import select_entries
from .context import AppContext, client_ip
from .payload import payload_body
from .records import record_headers
from .types import FileSegment, Request, Response

LINK_PARAMS = ("ct", "s", "n", "i")
SECURITY_HEADERS = [("cache-control", "no-store"), ("referrer-policy", "no-referrer"),
                    ("x-content-type-options", "nosniff"), ("x-robots-tag", "noindex")]
WWW_AUTHENTICATE = 'Basic realm="edge share link", charset="UTF-8"'
SMALL_BODY = 1 << 20          # read (and crc-verify) whole before the status goes out
SMALL_PARTIAL = 64 * 1024     # partial bodies this small are read into memory: no fd juggling
MAX_TAR_MEMBERS = 10_000      # headers are built up front (exact Content-Length); bounds that work
TAR_TYPE = "application/x-tar"


def is_link_request(req: Request) -> bool:
    """A download carries link parameters; ``links/<id>`` without a query string is management."""
    return any(p in req.query for p in LINK_PARAMS) or bool(req.query_items)


def basic_password(req: Request) -> str | None:
    """The password of ``Authorization: Basic`` (the user part is ignored), or None."""
    value = req.headers.get("authorization") or ""
    scheme, _, data = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return password if sep else None


def _override(req: Request) -> tuple[str, int] | None:
    """``e`` + ``ts``: pick another record of the link's query (spec §11.2 step 5)."""
    has_e, has_ts = "e" in req.query, "ts" in req.query
    if not has_e and not has_ts:
        return None
    if has_e != has_ts:
        raise InvalidInputError("Both 'e' and 'ts' parameters must be provided together")
    text = req.query["ts"]
    if not text:
        raise InvalidInputError("Invalid 'ts' parameter: cannot parse integer from empty string")
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**64:
        raise InvalidInputError("Invalid 'ts' parameter: invalid digit found in string")
    return req.query["e"], int(text)


def _check_issuer(ctx: AppContext, issuer: str, bucket: str) -> None:
    """Upstream step 6: a link dies with its issuer token or the token's read access."""
    if not ctx.config.auth_enabled:
        return
    token = ctx.tokens.get(issuer)              # 404 "Token '<i>' doesn't exist"
    check_lifetime(token, datetime.now(timezone.utc))
    Read(bucket).check(token)


async def download(req: Request, ctx: AppContext, file_name: str) -> Response:
    for name in LINK_PARAMS:
        if name not in req.query:
            raise InvalidInputError(f"Missing '{name}' parameter")
    ct, s, n, issuer = (req.query[p] for p in LINK_PARAMS)
    for name, value in (("ct", ct), ("s", s), ("n", n)):
        decode_b64(value, name)
    target = _override(req)
    room, reg = ctx.services["links"], ctx.links
    rec = reg.find(ct)
    if rec is None:
        raise link_not_found()
    try:
        payload = unseal(ct, s, n, room.key.material, associated=issuer.encode("utf-8", "surrogatepass"))
    except LinkInvalidError:
        raise link_not_found() from None        # a real ct with forged s/n/i: the uniform answer
    if payload.get("id") != rec.id or issuer != rec.creator:
        raise link_not_found()
    check_state(revoked=rec.revoked, expire_at_s=rec.expire_at, now_s=time.time())
    _check_issuer(ctx, issuer, rec.bucket)
    client = client_ip(req)
    password = basic_password(req)
    authorize = partial(reg.authorize, ct, password=password, client=client)
    try:
        # scrypt takes tens of ms: never on the event loop. Links without a password skip the hop.
        rec = await trio.to_thread.run_sync(authorize) if rec.has_password else authorize()
    except UnauthorizedError as exc:
        exc.www_authenticate = WWW_AUTHENTICATE  # type: ignore[attr-defined]
        raise
    try:
        plan = plan_from_json(payload["query"])
    except (KeyError, InvalidInputError) as exc:
        raise LinkInvalidError(f"Failed to parse query: {getattr(exc, 'message', exc)}") from None
    bucket = ctx.engine.get_bucket(rec.bucket)
    entries = plan.entries or ([payload.get("entry")] if payload.get("entry") else None)
    plan = dataclasses.replace(plan, entries=tuple(entries) if entries else None, continuous=False)
    if rec.file_name.lower().endswith(".tar"):
        return await _tar(req, ctx, rec, bucket, plan, client)
    entry_name, ts = target or (rec.record_entry, rec.record_ts)
    if not room.is_resolved(rec.id, entry_name, ts):
        if not await _in_result(bucket, plan, entry_name, ts):
            raise NotFoundError(f"Record {entry_name}/{ts} not found in query result")
        room.remember(rec.id, entry_name, ts)
    entry = bucket.get_entry(entry_name)
    ref = entry.get(ts)
    return await _record(req, ctx, rec, entry, entry_name, ref, client)


# --- resolving ------------------------------------------------------------------------------------

async def _next(cursor: QueryCursor) -> Any:
    while True:
        m = cursor.next()
        if m is not BUSY:
            return m
        await trio.lowlevel.checkpoint()   # a selective `when` over a long entry: stay responsive


async def _in_result(bucket: Any, plan: Any, entry_name: str, ts: int) -> bool:
    """Is record (entry, ts) in the query's result? Scans only that entry, and only up to ``ts``.

    Conditions keep state per entry (``$each_n``, ``$limit``), so the entry is scanned from the
    query's start; other entries cannot change the answer. Records after ``ts`` cannot either,
    except through ``#ctx_before`` (a later match pulls earlier records in), so the stop is only
    narrowed without it.
    """
    if entry_name not in select_entries(plan.entries, bucket.entry_names(include_meta=True)):
        return False
    if not plan.directives.ctx_before:
        stop = ts + 1 if plan.stop_us is None else min(plan.stop_us, ts + 1)
        plan = dataclasses.replace(plan, stop_us=stop)
    cursor = QueryCursor(bucket, plan, [entry_name])
    while (m := await _next(cursor)) is not None:
        if m.ts_us == ts:
            return True
        if m.ts_us > ts:
            return False
    return False


# --- responses --------------------------------------------------------------------------------

def _if_range_ok(req: Request, etag: str) -> bool:
    """RFC 9110 §13.1.5: honour Range only if If-Range names the current (strong) ETag."""
    value = req.headers.get("if-range")
    return value is None or value.strip() == etag


def _etag(*parts: Any) -> str:
    return '"' + hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


async def _count(ctx: AppContext, rec: Any, client: str, req: Request, rp: RangePlan) -> None:
    """Record the answer (rules.py: HEAD and 416 never count; Range inside a session counts once)."""
    if req.method == "HEAD":
        return
    range_text = req.headers.get("range") if rp.partial else None
    result = await trio.to_thread.run_sync(partial(
        ctx.links.record_download, rec.id, client, rp.content_length, range_text, partial=rp.partial))
    mail = ctx.services.get("mail")        # the receipt hook of the mail room (edge.services.mail)
    if result.counted and mail is not None:
        mail.on_download(result.record, client, rp.content_length, range_text, time.time())


def _common_headers(rec: Any, etag: str, rp: RangePlan) -> list[tuple[str, str]]:
    return ([("accept-ranges", "bytes"), ("etag", etag)] + SECURITY_HEADERS
            + [(k.lower(), v) for k, v in rp.headers])


async def _record(req: Request, ctx: AppContext, rec: Any, entry: Any, entry_name: str, ref: Any,
                  client: str) -> Response:
    etag = _etag(rec.id, entry_name, ref.ts_us, ref.size, ref.content_type)
    rp = plan_range(req.headers.get("range"), ref.size, content_type=ref.content_type,
                    honour=_if_range_ok(req, etag))
    if rp.status == 416:
        raise RangeNotSatisfiableError("The requested range is not satisfiable", ref.size)
    multipart = rp.boundary is not None
    headers = [(k, v) for k, v in record_headers(entry_name, ref)
               if k != "content-disposition" and not (multipart and k == "content-type")]
    headers.append(("content-disposition", content_disposition(rec.file_name)))
    headers += _common_headers(rec, etag, rp)
    length = rp.content_length
    if req.method == "HEAD":
        return Response(rp.status, headers, b"", content_length=length)
    if not rp.partial:
        if ref.size <= SMALL_BODY:
            body = b"".join(entry.read_payload(ref))   # a bad crc is a clean 500, not a cut body
            await _count(ctx, rec, client, req, rp)
            return Response(200, headers, body)
        await _count(ctx, rec, client, req, rp)
        return Response(200, headers, payload_body(entry, ref), content_length=length)
    # A range of a damaged record must not go out as good bytes either: verify the whole payload
    # first (cheap: one pread pass + a fast crc, off the event loop for big records).
    await _verify_whole(entry, ref)
    await _count(ctx, rec, client, req, rp)
    if length <= SMALL_PARTIAL:
        body = b"".join(p if isinstance(p, bytes) else entry.read_range(ref, p.start, p.length)
                        for p in rp.pieces())
        return Response(206, headers, body)
    return Response(206, headers, _spans(entry, ref, rp), content_length=length)


async def _verify_whole(entry: Any, ref: Any) -> None:
    """CorruptRecordError (a clean 500, before any header) unless the payload matches its crc."""
    if ref.size <= SMALL_BODY:
        for _ in entry.read_payload(ref):
            pass
        return
    fd, _ = entry.payload_fd(ref)
    try:
        await trio.to_thread.run_sync(entry.verify_payload, fd, ref)
    finally:
        os.close(fd)


async def _spans(entry: Any, ref: Any, rp: RangePlan) -> AsyncIterator[bytes | FileSegment]:
    """Ranges straight from the block file (sendfile); the whole payload was verified first."""
    fd = None
    try:
        for piece in rp.pieces():
            if isinstance(piece, bytes):
                yield piece
                continue
            if fd is None:
                fd, base = entry.payload_fd(ref)
            yield FileSegment(fd, base + piece.start, piece.length)
    finally:
        if fd is not None:
            os.close(fd)


# --- .tar bundles ---------------------------------------------------------------------------------

async def _matches(bucket: Any, plan: Any) -> list[Any]:
    names = select_entries(plan.entries, bucket.entry_names(include_meta=True))
    cursor = QueryCursor(bucket, plan, names)
    out: list[Any] = []
    while (m := await _next(cursor)) is not None:
        out.append(m)
        if len(out) > MAX_TAR_MEMBERS:
            raise InvalidInputError(f"A .tar link serves at most {MAX_TAR_MEMBERS} records; narrow the query")
    return out


async def _tar(req: Request, ctx: AppContext, rec: Any, bucket: Any, plan: Any, client: str) -> Response:
    if plan.kind != QUERY:  # pragma: no cover - refused at creation
        raise link_not_found()
    matches = await _matches(bucket, plan)
    members = [Member(member_name(m.entry, m.ts_us, m.content_type), m.size, m.ts_us // 1_000_000)
               for m in matches]
    layout = TarLayout(members)
    etag = _etag(rec.id, *(f"{m.name}:{m.size}" for m in members))
    rp = plan_range(req.headers.get("range"), layout.total, content_type=TAR_TYPE,
                    honour=_if_range_ok(req, etag))
    if rp.status == 416:
        raise RangeNotSatisfiableError("The requested range is not satisfiable", layout.total)
    headers = [] if rp.boundary is not None else [("content-type", TAR_TYPE)]
    headers.append(("content-disposition", content_disposition(rec.file_name)))
    headers += _common_headers(rec, etag, rp)
    if req.method == "HEAD":
        return Response(rp.status, headers, b"", content_length=rp.content_length)
    await _count(ctx, rec, client, req, rp)
    entries = {name: bucket.get_entry(name) for name in {m.entry for m in matches}}
    return Response(rp.status, headers, _tar_body(layout, rp, matches, entries),
                    content_length=rp.content_length)


async def _tar_body(layout: TarLayout, rp: RangePlan, matches: list[Any],
                    entries: dict[str, Any]) -> AsyncIterator[bytes | FileSegment]:
    for piece in rp.pieces():
        if isinstance(piece, bytes):
            yield piece
            continue
        assert isinstance(piece, Span)
        for part in layout.slice(piece.start, piece.end):
            if isinstance(part, bytes):
                yield part
                continue
            m = matches[part.index]
            entry = entries[m.entry]
            if part.offset == 0 and part.length == m.size:
                async with aclosing(payload_body(entry, m.ref)) as parts:  # whole member: crc-verified
                    async for chunk in parts:
                        yield chunk
            else:
                fd, base = entry.payload_fd(m.ref)
                try:
                    yield FileSegment(fd, base + part.offset, part.length)
                finally:
                    os.close(fd)
