"""Reading untrusted request parts: timestamps, numbers, labels, JSON bodies.

Owns: ``parse_*`` helpers that turn request text into values or raise ``InvalidInputError`` with
the spec's texts, and the JSON response helper.
Must not: authorise, touch storage, or build error responses (``errors.py`` does).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidInputError
from ..server.types import Request, Response

MAX_JSON_BODY_BYTES = 1024 * 1024  # settings, queries, tokens: small documents
U64_MAX = 2**64 - 1


def parse_u64(text: str | None, error: str) -> int:
    if text is None:
        raise InvalidInputError(error)
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise InvalidInputError(error)
    value = int(text)
    if value > U64_MAX:
        raise InvalidInputError(error)
    return value


def parse_ts(req: Request, name: str = "ts") -> int:
    ts = parse_ts_optional(req, name)
    if ts is None:
        raise InvalidInputError(f"'{name}' parameter is required")
    return ts


def parse_ts_optional(req: Request, name: str = "ts") -> int | None:
    text = req.query.get(name)
    if text is None:
        return None
    return parse_u64(text, f"'{name}' must be an unix timestamp in microseconds")


def content_length(req: Request) -> int:
    """Record writes: ``Content-Length`` or ``x-reduct-content-length`` (spec §1.5, §6.2)."""
    text = req.headers.get("x-reduct-content-length")
    if text is None:
        text = req.headers.get("content-length")
    if text is None:
        if req.body.length is not None:
            return req.body.length
        raise InvalidInputError("content-length header is required")
    return parse_u64(text, "content-length header must be a number")


def labels_from_headers(req: Request) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name, value in req.headers.items():
        if name.startswith("x-reduct-label-"):
            label = name[len("x-reduct-label-"):]
            if not label:
                raise InvalidInputError(f"Label name of header '{name}' must not be empty")
            try:
                # Header values arrive latin-1 decoded; labels are UTF-8 on the wire.
                value = value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise InvalidInputError(f"Label values for {name} must be valid UTF-8 strings") from None
            labels[label] = value
    return labels


async def read_json(req: Request, *, allow_empty: bool = False, error_prefix: str = "Invalid JSON: ") -> Any:
    raw = await req.body.read_all(MAX_JSON_BODY_BYTES)
    if not raw.strip():
        if allow_empty:
            return None
        raise InvalidInputError(f"{error_prefix}EOF while parsing a value at line 1 column 0")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{error_prefix}{exc}") from None


async def read_mode(req: Request, modes: tuple[str, ...]) -> str:
    """The ``{"mode": ...}`` body of ``PATCH <resource>/{name}/mode``, one of ``modes`` (422 otherwise)."""
    doc = await read_json(req)
    if not isinstance(doc, dict) or "mode" not in doc:
        raise InvalidInputError("Invalid JSON: missing field `mode`")
    mode = doc["mode"]
    if mode not in modes:
        expected = ", ".join(f"`{m}`" for m in modes[:-1]) + f" or `{modes[-1]}`"
        raise InvalidInputError(f"Invalid JSON: unknown variant `{mode}`, expected {expected}")
    return mode


def json_object(doc: object) -> dict:
    """``doc`` if it is a JSON object, else the 422 every object-shaped body gives."""
    if not isinstance(doc, dict):
        raise InvalidInputError("Invalid JSON: expected a JSON object")
    return doc


async def read_json_object(req: Request) -> dict:
    return json_object(await read_json(req))


def json_response(doc: object, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, [("content-type", "application/json")] + (headers or []), body)


def encoded_json_response(body: bytes, status: int = 200) -> Response:
    """A JSON answer its wire module encoded already (as ``json_response`` would have)."""
    return Response(status, [("content-type", "application/json")], body)


def empty_response(status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, list(headers or []), b"")
