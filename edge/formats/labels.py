"""Label-list grammar shared by the batch header codecs (v1 ``x-reduct-time-*``, v2 ``x-reduct-<i>-<d>``).

Owns: splitting a ``k=v,k="v,w",...`` list into pairs, formatting one item, the rules for which
names/values survive a trip through that grammar, and the RFC 7230 ``tchar`` percent-encoding of
names used by ``x-reduct-entries`` / ``x-reduct-labels``.
Must not: know header names, record sizes or content types (that is ``batch_v1``/``batch_v2``),
import anything but ``edge.errors``, do I/O.

Grammar (spec §7.1, §8.1; the same loop as upstream and reduct-py)::

    list  := item*                        whitespace around the whole list is ignored
    item  := name "=" value
    name  := everything up to the next "=", trimmed (may contain "," and '"')
    value := '"' <anything but '"'> '"' ","*     quoted: may contain commas, no escapes
           | <anything up to the next ","> ","   unquoted
           | <rest of the text>                  last item
    A value is trimmed; quotes are only recognised directly after "=".

Leftover text without "=" is ignored by v1 (upstream loops ``while rest has '='``) and is
``Invalid batched header`` in v2 (``require_eq=True``). An unterminated quote is always
``Invalid batched header``.

Representability. There is no escape mechanism, so an encoder cannot send every string:

* values are trimmed by every parser, so a value with surrounding whitespace cannot be sent;
* a value must be quoted when it contains "," and must not start with '"' when unquoted, and a
  quoted value cannot contain '"': a value containing '"' is sendable only if it has no "," and
  does not start with '"';
* (v1 only) a name must not contain "=", must not start with "," and must be trimmed; v2 sends
  names percent-encoded in ``x-reduct-labels`` and refers to them by index, so any name works;
* (v2 only) an empty value means "remove", so an empty value cannot be sent.

The encoders leave out labels they cannot send (``value_ok``/``v1_name_ok``), so everything a
client decodes is exactly what is stored; the record itself and its single-record read
(``x-reduct-label-*``) are unaffected. Content types cannot contain "," either: the encoders cut
a content type at its first "," (``clean_content_type``).

Percent-encoding (§8.1): every UTF-8 byte that is not a ``tchar`` becomes ``%XX`` (upper-case
hex), so "/" -> "%2F", "@" -> "%40", "$" stays. One deliberate deviation: "%" itself (a tchar) is
written as "%25" so that names containing "%" survive; upstream leaves it raw, which decoders
(ours and reduct-py's) would misread. Entry names never contain "%" (§6.1), so for entries the
output is byte-identical to upstream. Decoding turns ``%XX`` into bytes and leaves every other
character as it is (raw "/" is accepted); the result must be UTF-8.
"""

from __future__ import annotations

import re

from edge.errors import InvalidInputError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
INVALID_BATCHED_HEADER = "Invalid batched header"

_TCHAR_EXTRA = "!#$%&'*+-.^_`|~"
_SAFE = frozenset(
    [chr(c) for c in range(48, 58)]
    + [chr(c) for c in range(65, 91)]
    + [chr(c) for c in range(97, 123)]
    + [c for c in _TCHAR_EXTRA if c != "%"]
)
_ENCODE_TABLE = tuple(chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in range(256))
_HEX = frozenset("0123456789abcdefABCDEF")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what a header value cannot carry (HTAB can)


# ---------------------------------------------------------------------------------------------
# Label lists


def split_label_items(text: str, *, require_eq: bool) -> list[tuple[str, str]]:
    """Split a label list into ``(name, value)`` pairs, names and values trimmed, in text order.

    ``require_eq``: leftover text without "=" raises ``Invalid batched header`` (v2) instead of
    being ignored (v1). Values are returned as written (an empty value stays ``""``).
    """
    if '"' not in text:
        # Fast path (no quoting; every comma-separated part has a "="): the loop below gives
        # exactly these pairs, and split/partition run in C (~3x cheaper per batch header).
        pairs = [part.partition("=") for part in text.strip().split(",")]
        if all(eq for _, eq, _ in pairs):
            return [(name.strip(), value.strip()) for name, _, value in pairs]
    items: list[tuple[str, str]] = []
    rest = text.strip()
    while rest:
        eq = rest.find("=")
        if eq < 0:
            if require_eq:
                raise InvalidInputError(INVALID_BATCHED_HEADER)
            break
        name = rest[:eq].strip()
        after = rest[eq + 1 :]
        if after.startswith('"'):
            close = after.find('"', 1)
            if close < 0:
                raise InvalidInputError(INVALID_BATCHED_HEADER)
            value = after[1:close]
            rest = after[close + 1 :].lstrip(",").strip()
        else:
            comma = after.find(",")
            if comma < 0:
                value, rest = after, ""
            else:
                value, rest = after[:comma], after[comma + 1 :].strip()
        items.append((name, value.strip()))
    return items


def format_value(value: str) -> str:
    """A value as it goes on the wire: quoted when it contains a comma (check ``value_ok`` first)."""
    return f'"{value}"' if "," in value else value


def value_ok(value: str, *, allow_empty: bool) -> bool:
    """True if ``split_label_items`` gives ``value`` back from ``format_value(value)``, and it
    can travel inside a header value at all (no control characters: records stored before
    ``formats/metadata.py`` checked labels may hold them)."""
    if not value:
        return allow_empty
    if value != value.strip() or not _header_safe(value):
        return False
    if '"' in value and ("," in value or value[0] == '"'):
        return False
    return True


def v1_name_ok(name: str) -> bool:
    """True if a literal (v1) label name survives the grammar (and a header value)."""
    return "=" not in name and not name.startswith(",") and name == name.strip() and _header_safe(name)


def clean_content_type(content_type: str) -> str:
    """The content type an encoder sends: cut at the first ",", trimmed, empty (or holding a
    control character) -> octet-stream."""
    if "," in content_type:
        content_type = content_type.split(",", 1)[0]
    content_type = content_type.strip()
    return content_type if content_type and _header_safe(content_type) else DEFAULT_CONTENT_TYPE


def _header_safe(text: str) -> bool:
    return text.isprintable() or not _CTL_RE.search(text)


# ---------------------------------------------------------------------------------------------
# Digits


def parse_u64(text: str) -> int | None:
    """A plain ASCII decimal u64 (no sign, "_" or spaces), else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value < 1 << 64 else None


# ---------------------------------------------------------------------------------------------
# Percent-encoding of names (x-reduct-entries, x-reduct-labels)


def encode_name(name: str) -> str:
    """Percent-encode every byte that is not a tchar (and "%"), upper-case hex."""
    if all(c in _SAFE for c in name):
        return name
    return "".join([_ENCODE_TABLE[b] for b in name.encode("utf-8", "surrogatepass")])


def decode_name(encoded: str) -> str:
    """Inverse of ``encode_name``; raw characters pass through. Errors quote ``encoded``."""
    if "%" not in encoded:
        try:
            encoded.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"Entry name is not valid UTF-8 in header '{encoded}'") from None
        return encoded
    raw = encoded.encode("utf-8", "surrogatepass")
    out = bytearray()
    pos, n = 0, len(raw)
    while pos < n:
        pct = raw.find(b"%", pos)
        if pct < 0:
            out += raw[pos:]
            break
        out += raw[pos:pct]
        hexpair = raw[pct + 1 : pct + 3]
        if len(hexpair) != 2 or not all(chr(b) in _HEX for b in hexpair):
            raise InvalidInputError(f"Invalid entry encoding in header name: '{encoded}'")
        out.append(int(hexpair, 16))
        pos = pct + 3
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"Entry name is not valid UTF-8 in header '{encoded}'") from None
