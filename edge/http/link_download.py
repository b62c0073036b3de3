"""Anonymous share-link downloads: ``GET|HEAD <base>api/v1/links/{file_name+}?ct=&s=&i=&n=[&e=&ts=]``,
and serving any link's file once an id URL admitted the request (``serve_admitted``).

Owns: the order of checks for a native download, resolving the link's record through its sealed
query (spec §11.2 step 7), the response headers (single-record headers of §6.3, the stored file
name in ``Content-Disposition``, no-store / no-referrer / nosniff), Range (single, multiple,
suffix, 416, ``If-Range`` with our ETag), ``.tar`` bundles of a whole query result, and recording
downloads.
Must not: decide link rules (``edge.links.rules``) or who may fetch (``link_access.admit``),
persist anything itself (``LinkRegistry``), or trust the URL path: the file name, the bucket and
"is this a .tar link" all come from the server-side record, so a holder cannot rename a
single-record link into a bundle of the query.

Check order (cheap first, links.md §3): missing parameter -> base64 of ct/s/n (both spec 422s)
-> registry lookup by SHA-256(ct) -> AES-SIV unseal (HKDF, microseconds) -> revoked / expired
-> ``admit`` (issuer token alive, used up, ``require_authentication``, password: one scrypt in
a worker thread, only if the request offers a password) -> the query scan. Every link that may
not be served, and every forged one, gets the same ``404 Link not found or has expired`` in the
same timing class (``link_access``). The one exception is ReductStore's own answer for an
expired link, ``422 Query link has expired``: the official clients expect it, and it is only
reachable with the complete genuine URL (a sealed ``ct`` that authenticates under the server key).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import time
from contextlib import aclosing
from typing import TYPE_CHECKING, AsyncIterator

import trio

from ..errors import InvalidInputError, LinkInvalidError, NotFoundError, RangeNotSatisfiableError, message_of
from ..links import (LinkRecord, Member, RangePlan, Span, TarLayout, check_state, content_disposition,
                     decode_b64, link_not_found, member_name, plan_range)
from ..links.seal import unseal
from ..model import BIG_RECORD_BYTES
from ..query.cursor import BUSY, Match, QueryCursor
from ..query.plan import QUERY, QueryPlan, plan_from_json
from ..query.select import select_entries
from .context import AppContext, client_ip
from .link_access import admit, basic_credentials, offered
from .payload import payload_body
from .records import record_headers
from ..server.types import FileSegment, Request, Response
from .. import blocking

if TYPE_CHECKING:
    from ..store import Bucket, Entry, RecordRef

LINK_PARAMS = ("ct", "s", "n", "i")
SECURITY_HEADERS = [("cache-control", "no-store"), ("referrer-policy", "no-referrer"),
                    ("x-content-type-options", "nosniff"), ("x-robots-tag", "noindex")]
SMALL_PARTIAL = 64 * 1024     # partial bodies this small are read into memory: no fd juggling
MAX_TAR_MEMBERS = 10_000      # headers are built up front (exact Content-Length); bounds that work
TAR_TYPE = "application/x-tar"


def is_link_request(req: Request) -> bool:
    """A download carries link parameters; ``links/<id>`` without a query string is management."""
    return any(p in req.query for p in LINK_PARAMS) or bool(req.query_items)


def basic_password(req: Request) -> str | None:
    """The password of ``Authorization: Basic`` (the user part is ignored), or None."""
    basic = basic_credentials(req)
    return None if basic is None else basic[1]


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


def _plan(payload: dict[str, object]) -> QueryPlan:
    try:
        query = payload["query"]
        if not isinstance(query, dict):
            raise InvalidInputError("query is not an object")
        plan = plan_from_json(query)
    except (KeyError, InvalidInputError) as exc:
        raise LinkInvalidError(f"Failed to parse query: {message_of(exc)}") from None
    entry = payload.get("entry")
    entries = plan.entries or ([entry] if isinstance(entry, str) and entry else None)
    return dataclasses.replace(plan, entries=tuple(entries) if entries else None, continuous=False)


def native_plan(ctx: AppContext, rec: LinkRecord) -> QueryPlan | None:
    """The sealed query of a native link, recovered from the registry's sealed URL parameters.

    None for links of the vendor APIs (they name one record, no query) and for native links whose
    parameters cannot be recovered (created before they were sealed, or under another key).
    """
    room = ctx.link_room
    if rec.origin != "native" or room is None:
        return None
    params = ctx.links.reveal(rec.id)
    if not isinstance(params, dict) or not all(isinstance(params.get(k), str) for k in LINK_PARAMS):
        return None
    try:
        payload = unseal(params["ct"], params["s"], params["n"], room.key.material,
                         associated=params["i"].encode("utf-8", "surrogatepass"))
        return _plan(payload)
    except LinkInvalidError:
        return None


async def download(req: Request, ctx: AppContext, file_name: str) -> Response:
    for name in LINK_PARAMS:
        if name not in req.query:
            raise InvalidInputError(f"Missing '{name}' parameter")
    ct, s, n, issuer = (req.query[p] for p in LINK_PARAMS)
    for name, value in (("ct", ct), ("s", s), ("n", n)):
        decode_b64(value, name)
    target = _override(req)
    offer = offered(req)
    room, reg = ctx.link_room, ctx.links
    rec = reg.find(ct) if room is not None else None
    payload: dict[str, object] | None = None
    lost_key: NotFoundError | None = None
    if rec is not None and room is not None:
        try:
            payload = unseal(ct, s, n, room.key.material, associated=issuer.encode("utf-8", "surrogatepass"))
        except LinkInvalidError:
            payload = None                       # a real ct with forged s/n/i: the uniform answer
            lost_key = room.lost_key_error(rec)  # ... unless sealed under a key since found damaged: say so
        if payload is None or payload.get("id") != rec.id or issuer != rec.creator:
            rec = None
    if rec is not None:
        check_state(revoked=rec.revoked, expire_at_s=rec.expire_at, now_s=time.time())
    admitted = await admit(req, ctx, rec, offer)   # forged ones pay the same work: same timing class
    if admitted is None or payload is None:
        raise lost_key or link_not_found()
    return await serve(req, ctx, admitted, _plan(payload), target)


async def serve_admitted(req: Request, ctx: AppContext, rec: LinkRecord, *, count: bool = True) -> Response:
    """Serve the file of a link an id URL has admitted (``/link/<id>``, Mediapocket tickets).

    A native link still serves only a record of its sealed query (or the whole result for a
    ``.tar``); a vendor link names its record directly. Anything that has vanished since the link
    was made is the caller's uniform not-found (``NotFoundError``).
    """
    plan = native_plan(ctx, rec)
    if plan is None and rec.origin == "native":
        raise link_not_found()               # its query cannot be recovered: nothing to check against
    return await serve(req, ctx, rec, plan, None, count=count)


async def serve(req: Request, ctx: AppContext, rec: LinkRecord, plan: QueryPlan | None,
                target: tuple[str, int] | None, *, count: bool = True) -> Response:
    bucket = ctx.engine.get_bucket(rec.bucket)
    client = client_ip(req)
    if plan is not None and rec.file_name.lower().endswith(".tar"):
        return await _tar(req, ctx, rec, bucket, plan, client, count)
    entry_name, ts = target or (rec.record_entry, rec.record_ts)
    room = ctx.link_room
    if plan is not None and room is not None and not room.is_resolved(rec.id, entry_name, ts):
        if not await _in_result(bucket, plan, entry_name, ts):
            raise NotFoundError(f"Record {entry_name}/{ts} not found in query result")
        room.remember(rec.id, entry_name, ts)
    entry = bucket.get_entry(entry_name)
    ref = entry.get(ts)
    return await _record(req, ctx, rec, entry, entry_name, ref, client, count)


# --- resolving ------------------------------------------------------------------------------------

async def _next(cursor: QueryCursor) -> Match | None:
    while True:
        m = cursor.next()
        if m is not BUSY:
            return m
        await trio.lowlevel.checkpoint()   # a selective `when` over a long entry: stay responsive


async def _in_result(bucket: Bucket, plan: QueryPlan, entry_name: str, ts: int) -> bool:
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


def _etag(*parts: object) -> str:
    return '"' + hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


async def _count(ctx: AppContext, rec: LinkRecord, client: str, req: Request, rp: RangePlan, count: bool) -> None:
    """Record the answer (rules.py: HEAD and 416 never count; Range inside a session counts once).

    ``count=False``: a prepaid ticket (the download was counted when the ticket was issued).
    """
    if req.method == "HEAD" or not count:
        return
    range_text = req.headers.get("range") if rp.partial else None
    await record_download(ctx, rec, client, rp.content_length, range_text, partial=rp.partial)


async def record_download(ctx: AppContext, rec: LinkRecord, client: str, nbytes: int, range_text: str | None,
                          *, partial: bool) -> None:
    """Count and log one download (uniform ``NotFoundError`` if it would exceed the limit), then
    hand a counted one to the receipt hook of the mail room."""
    result = await blocking.run_disk(functools.partial(
        ctx.links.record_download, rec.id, client, nbytes, range_text, partial=partial))
    if result.counted:   # the receipt hook of the mail room (edge.services.mail)
        ctx.mail.on_download(result.record, client, nbytes, range_text, time.time())


def _common_headers(rec: LinkRecord, etag: str, rp: RangePlan) -> list[tuple[str, str]]:
    return ([("accept-ranges", "bytes"), ("etag", etag)] + SECURITY_HEADERS
            + [(k.lower(), v) for k, v in rp.headers])


async def _record(req: Request, ctx: AppContext, rec: LinkRecord, entry: Entry, entry_name: str, ref: RecordRef,
                  client: str, count: bool) -> Response:
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
        if ref.size <= BIG_RECORD_BYTES:
            body = b"".join(entry.read_payload(ref))   # a bad crc is a clean 500, not a cut body
            await _count(ctx, rec, client, req, rp, count)
            return Response(200, headers, body)
        await _count(ctx, rec, client, req, rp, count)
        return Response(200, headers, payload_body(entry, ref), content_length=length)
    # A range of a damaged record must not go out as good bytes either: verify the whole payload
    # first (cheap: one pread pass + a fast crc, off the event loop for big records).
    await _verify_whole(entry, ref)
    await _count(ctx, rec, client, req, rp, count)
    if length <= SMALL_PARTIAL:
        body = b"".join(p if isinstance(p, bytes) else entry.read_range(ref, p.start, p.length)
                        for p in rp.pieces())
        return Response(206, headers, body)
    return Response(206, headers, _spans(entry, ref, rp), content_length=length)


async def _verify_whole(entry: Entry, ref: RecordRef) -> None:
    """CorruptRecordError (a clean 500, before any header) unless the payload matches its crc."""
    if ref.size <= BIG_RECORD_BYTES:
        for _ in entry.read_payload(ref):
            pass
        return
    fd, _ = entry.payload_fd(ref)
    try:
        await blocking.run_disk(entry.verify_payload, fd, ref)
    finally:
        os.close(fd)


async def _spans(entry: Entry, ref: RecordRef, rp: RangePlan) -> AsyncIterator[bytes | FileSegment]:
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

async def _matches(bucket: Bucket, plan: QueryPlan) -> list[Match]:
    names = select_entries(plan.entries, bucket.entry_names(include_meta=True))
    cursor = QueryCursor(bucket, plan, names)
    out: list[Match] = []
    while (m := await _next(cursor)) is not None:
        out.append(m)
        if len(out) > MAX_TAR_MEMBERS:
            raise InvalidInputError(f"A .tar link serves at most {MAX_TAR_MEMBERS} records; narrow the query")
    return out


async def _tar(req: Request, ctx: AppContext, rec: LinkRecord, bucket: Bucket, plan: QueryPlan, client: str,
               count: bool) -> Response:
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
    await _count(ctx, rec, client, req, rp, count)
    entries = {name: bucket.get_entry(name) for name in {m.entry for m in matches}}
    return Response(rp.status, headers, _tar_body(layout, rp, matches, entries),
                    content_length=rp.content_length)


async def _tar_body(layout: TarLayout, rp: RangePlan, matches: list[Match],
                    entries: dict[str, Entry]) -> AsyncIterator[bytes | memoryview | FileSegment]:
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
