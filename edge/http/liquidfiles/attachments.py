"""LiquidFiles attachment uploads: ``POST <base>link/attachments/upload``.

Owns: the upload's parameters (``filename``, ``chunks``, ``chunk``, ``content_type``: as query
parameters with a raw body, ``--data-binary``; or as fields of a ``multipart/form-data`` body
whose file part follows them), the content-type precedence (the request's ``Content-Type``, else
the parameter, else detected from the bytes; curl's default ``application/x-www-form-urlencoded``
and a multipart part's generic ``application/octet-stream`` count as "not set"), and the
attachment JSON. Every byte of the body streams to disk (``services.attachment_uploads``).
Must not: parse multipart itself (``server/multipart.py``) or write records.

Answers: ``{"attachment": {"id", "filename", "size", "content_type", "checksum", "created_at"}}``
once the attachment exists (a whole upload, or the piece that completes one, in any order); a
piece that leaves the upload incomplete answers ``{"chunk": {"filename", "chunk", "chunks",
"received"}}``. ``id`` is an integer (the record timestamp in the attachments bucket),
``checksum`` the SHA-256 of the bytes, ``created_at`` ISO 8601 UTC with milliseconds.
Unknown parameters are a 422 naming them.
"""

from __future__ import annotations

from collections import deque

from ...attachments.sniff import content_type_or_none
from ...attachments.staging import MAX_CHUNKS
from ...auth.policy import Write
from ...errors import BadRequestError, InvalidInputError, NotReadyError
from ...formats.metadata import check_file_name, sanitize_filename
from ...links.wire import iso_ms
from ...services.attachment_uploads import Attachment, AttachmentUploads, Pending
from ..context import AppContext
from ...server.multipart import Event, FormEnd, MultipartParser, PartData, PartEnd, PartStart, boundary_of
from ..request import json_response
from ..routing import Route
from ...server.types import BodyReads, Request, Response
from .common import answers, api_token

PARAMS = ("filename", "chunks", "chunk", "content_type", "Content-Type")
FORM_FIELDS = PARAMS + ("name",)          # plupload calls the file name "name"
MAX_FIELD_BYTES = 4096
MAX_FILENAME_CHARS = 1024


def attachment_json(a: Attachment) -> dict[str, object]:
    return {"id": a.id, "filename": a.filename, "size": a.size, "content_type": a.content_type,
            "checksum": a.checksum, "created_at": iso_ms(a.id // 1000)}


class FormUpload:
    """A multipart body: the fields before the file part, then the file part as a byte stream."""

    def __init__(self, body: BodyReads, boundary: str):
        self.body = body
        self.parser = MultipartParser(boundary)
        self.events: deque[Event] = deque()
        self.in_file = False

    async def _next(self) -> Event:
        while not self.events:
            data = await self.body.receive_some(1 << 20)
            if not data:
                raise BadRequestError("Invalid multipart/form-data: the body ended before the form did")
            self.events.extend(self.parser.feed(data))
        return self.events.popleft()

    async def fields(self) -> tuple[dict[str, str], PartStart | None]:
        """Fields up to the file part (a part with a file name, or named ``file``)."""
        fields: dict[str, str] = {}
        while True:
            event = await self._next()
            if isinstance(event, FormEnd):
                return fields, None
            if not isinstance(event, PartStart):
                continue
            if event.filename is not None or event.name == "file":
                self.in_file = True
                return fields, event
            if event.name not in FORM_FIELDS:
                raise InvalidInputError(f"Unknown form field '{event.name[:64]}'; known: {', '.join(FORM_FIELDS)}")
            name, value = event.name, b""
            while not isinstance(part := await self._next(), PartEnd):
                if isinstance(part, PartData):
                    value += part.data
                    if len(value) > MAX_FIELD_BYTES:
                        raise InvalidInputError(f"Form field '{name}' is longer than {MAX_FIELD_BYTES} bytes")
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputError(f"Form field '{name}' is not UTF-8") from None

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        """The file part's bytes; b"" at its end."""
        while self.in_file:
            event = await self._next()
            if isinstance(event, PartData):
                return event.data
            if isinstance(event, PartEnd):
                self.in_file = False
        return b""

    async def finish(self) -> None:
        """Read the rest of the form (further parts are ignored) up to its close delimiter."""
        while not self.parser.done:
            await self._next()


def _int(text: str | None, name: str, low: int, high: int) -> int | None:
    if text is None or text == "":
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not low <= int(text) <= high:
        raise InvalidInputError(f"'{name}' must be an integer from {low} to {high}")
    return int(text)


def _service(ctx: AppContext) -> AttachmentUploads:
    return ctx.attachment_uploads


# POST link/attachments/upload[?filename=&chunks=&chunk=&content_type=]
@answers
async def upload(req: Request, ctx: AppContext) -> Response:
    uploads = _service(ctx)
    token = api_token(req, ctx, Write(uploads.bucket))
    for key in req.query:
        if key not in PARAMS:
            raise InvalidInputError(f"Unknown parameter '{key[:64]}'; known: filename, chunks, chunk, content_type")
    params = dict(req.query)
    header_type = req.headers.get("content-type")
    boundary = boundary_of(header_type)
    form: FormUpload | None = None
    file_type: str | None = None
    if boundary is not None:
        form = FormUpload(req.body, boundary)
        fields, part = await form.fields()
        if part is None:
            raise InvalidInputError("Invalid multipart/form-data: no file part")
        for key, value in fields.items():
            params.setdefault("filename" if key == "name" else key, value)
        if part.filename and "filename" not in params:
            params["filename"] = part.filename
        generic = (part.content_type or "").split(";")[0].strip().lower() == "application/octet-stream"
        file_type = None if generic else content_type_or_none(part.content_type, "content type of the file part")
    else:
        file_type = content_type_or_none(header_type, "Content-Type header")
    param_type = params.get("content_type") or params.get("Content-Type")
    content_type = file_type or content_type_or_none(param_type, "'content_type' parameter")
    raw_name = params.get("filename") or ""
    if len(raw_name) > MAX_FILENAME_CHARS:
        raise InvalidInputError(f"'filename' is longer than {MAX_FILENAME_CHARS} characters")
    # A browser may send a path or odd characters: the download-safe form is what is stored, and
    # it obeys the stored-name rule (checked again, so the two can never drift apart).
    filename = sanitize_filename(raw_name, default="") if raw_name else ""
    if filename:
        check_file_name(filename, "'filename'")
    chunks = _int(params.get("chunks"), "chunks", 1, MAX_CHUNKS)
    chunk = _int(params.get("chunk"), "chunk", 0, MAX_CHUNKS - 1)
    if chunks is None and chunk is not None:
        raise InvalidInputError("'chunk' needs 'chunks' (the number of pieces)")
    if chunks is not None and chunk is None:
        raise InvalidInputError("'chunk' is required when 'chunks' is set")
    result = await uploads.upload(token=token.name, filename=filename, chunks=chunks, chunk=chunk,
                                  content_type=content_type, body=form if form is not None else req.body)
    if form is not None:
        await form.finish()
    if isinstance(result, Pending):
        return json_response({"chunk": {"filename": result.filename, "chunk": result.chunk,
                                        "chunks": result.chunks, "received": result.received}})
    return json_response({"attachment": attachment_json(result)})


ROUTES = [
    Route("POST", "link/attachments/upload", upload),
]
