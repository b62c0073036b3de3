"""A streaming ``multipart/form-data`` parser (RFC 7578 over RFC 2046), sans-IO.

Owns: splitting a form body into parts as bytes arrive (``MultipartParser.feed`` returns events),
the part headers (``Content-Disposition`` name / filename, ``Content-Type``), the boundary taken
from the request's ``Content-Type``, and the bounds that keep a hostile form cheap: header bytes
per part, number of parts.
Must not: do I/O, buffer a part's body (data is handed out as it arrives, keeping back only the
few bytes that could start a delimiter), or decide what the fields mean (the LiquidFiles upload
handler does).

Why our own: the standard library has no streaming parser (``email`` parses a whole message in
memory; ``cgi`` is gone in 3.13), and an attachment may be gigabytes. The state machine is the
RFC's grammar: the body is ``CRLF`` + body, so every delimiter, the first included, is
``CRLF--boundary``; after a delimiter come optional linear white space and ``CRLF`` (a part
follows) or ``--`` (the close delimiter; the epilogue is ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInputError

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 64
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@dataclass(frozen=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


@dataclass(frozen=True)
class FormEnd:
    pass


Event = PartStart | PartData | PartEnd | FormEnd


def _params(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="a"; filename="b c"`` -> ("form-data", {"name": "a", "filename": "b c"})."""
    head, _, rest = value.partition(";")
    out: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1
            val = "".join(chars)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if key and key not in out:
            out[key] = val
    return head.strip().lower(), out


def boundary_of(content_type: str | None) -> str | None:
    """The boundary of a ``multipart/form-data`` content type; None for any other type."""
    if not content_type:
        return None
    kind, params = _params(content_type)
    if kind != "multipart/form-data":
        return None
    boundary = params.get("boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise InvalidInputError("Invalid multipart/form-data: missing or malformed boundary")
    return boundary


class MultipartParser:
    def __init__(self, boundary: str):
        self._delim = b"\r\n--" + boundary.encode("ascii")
        self._buf = bytearray(b"\r\n")     # so the first delimiter looks like every other one
        self._state = "preamble"            # preamble | after_delim | headers | body | done
        self._parts = 0

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[Event]:
        """Events for ``data`` (may be empty); raises ``InvalidInputError`` on a malformed form."""
        if self._state == "done":
            return []                        # the epilogue: ignored
        self._buf += data
        events: list[Event] = []
        while True:
            if self._state == "preamble":
                at = self._buf.find(self._delim)
                if at < 0:
                    keep = len(self._delim) - 1
                    del self._buf[:max(0, len(self._buf) - keep)]
                    return events
                del self._buf[:at + len(self._delim)]
                self._state = "after_delim"
            elif self._state == "after_delim":
                stripped = 0
                while stripped < len(self._buf) and self._buf[stripped] in b" \t":
                    stripped += 1
                if stripped > 256:
                    raise InvalidInputError("Invalid multipart/form-data: junk after a boundary")
                rest = self._buf[stripped:]
                if len(rest) < 2:
                    return events
                if rest[:2] == b"--":
                    self._state = "done"
                    self._buf.clear()
                    events.append(FormEnd())
                    return events
                if rest[:2] != b"\r\n":
                    raise InvalidInputError("Invalid multipart/form-data: malformed boundary line")
                del self._buf[:stripped + 2]
                self._state = "headers"
            elif self._state == "headers":
                end = self._buf.find(b"\r\n\r\n")
                blank_first = self._buf[:2] == b"\r\n"
                if end < 0 and not blank_first:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise InvalidInputError("Invalid multipart/form-data: part headers too long")
                    return events
                if blank_first:
                    raw, skip = b"", 2
                else:
                    raw, skip = bytes(self._buf[:end]), end + 4
                if len(raw) > MAX_HEADER_BYTES:
                    raise InvalidInputError("Invalid multipart/form-data: part headers too long")
                del self._buf[:skip]
                self._parts += 1
                if self._parts > MAX_PARTS:
                    raise InvalidInputError(f"Invalid multipart/form-data: more than {MAX_PARTS} parts")
                events.append(self._start(raw))
                self._state = "body"
            elif self._state == "body":
                at = self._buf.find(self._delim)
                if at < 0:
                    safe = len(self._buf) - (len(self._delim) - 1)
                    if safe > 0:
                        events.append(PartData(bytes(self._buf[:safe])))
                        del self._buf[:safe]
                    return events
                if at:
                    events.append(PartData(bytes(self._buf[:at])))
                del self._buf[:at + len(self._delim)]
                events.append(PartEnd())
                self._state = "after_delim"
            else:  # pragma: no cover - "done" returns above
                return events

    @staticmethod
    def _start(raw: bytes) -> PartStart:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError("Invalid multipart/form-data: part headers are not UTF-8") from None
        disposition: str | None = None
        ctype: str | None = None
        for line in text.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise InvalidInputError("Invalid multipart/form-data: malformed part header")
            key = name.strip().lower()
            if key == "content-disposition":
                disposition = value.strip()
            elif key == "content-type":
                ctype = value.strip()
        if disposition is None:
            raise InvalidInputError("Invalid multipart/form-data: a part without Content-Disposition")
        kind, params = _params(disposition)
        if kind != "form-data" or "name" not in params:
            raise InvalidInputError("Invalid multipart/form-data: Content-Disposition must be form-data with a name")
        return PartStart(params["name"], params.get("filename"), ctype)
