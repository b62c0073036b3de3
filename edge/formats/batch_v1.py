"""Batch protocol v1: the ``x-reduct-time-<ts>`` record headers of one entry (spec §7).

Owns: parsing request record headers (write §7.2, update §7.4, remove §7.5), formatting the
record header of a read response (§7.3) and the per-record error header.
Must not: read bodies, check Content-Length sums, touch the store, import trio/HTTP or anything
beyond ``edge.errors``/``edge.model``/``edge.formats.labels``.

Header grammar::

    name   := "x-reduct-time-" ts                     ts: ASCII decimal u64 (microseconds)
    value  := size "," [content-type] ["," labels]    size: ASCII decimal u64, trimmed
    labels := see edge.formats.labels (k=v, k="v,with,commas", names/values trimmed)
    error  := "x-reduct-error-" ts ": " status "," message

* ``"10"`` (no comma) -> ``Invalid batched header``; a bad size -> ``Invalid content length``;
  a bad ts -> ``Invalid header 'x-reduct-time-<x>': must be an unix timestamp in microseconds``.
* An empty (or blank) content type means ``application/octet-stream``.
* Leftover label text without "=" is ignored, like upstream (so ``k=a,b`` from reduct-py,
  which does not quote values with commas, becomes ``k=a``). An empty value is kept as ``""``
  (for PATCH it means "remove").
* Records come back sorted by ts (stable, so duplicate timestamps keep header order and the
  store reports the second one as a 409).

Read responses (``format_record_header``): ``<size>,<content-type>[,<item>]*`` where the items are
``k=v`` for labels and ``@k=v`` for computed labels, values quoted when they contain a comma,
all items sorted as strings. Labels the grammar cannot carry (``labels.value_ok`` /
``labels.v1_name_ok``: e.g. a value with both '"' and ',') are left out; a content type is cut
at its first comma. Note that reduct-py's own v1 reader does not understand quoted values
(it splits on every comma); upstream sends the same bytes, so that is the client's problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from edge.errors import InvalidInputError
from edge.formats.labels import (
    DEFAULT_CONTENT_TYPE,
    INVALID_BATCHED_HEADER,
    clean_content_type,
    format_value,
    parse_u64,
    split_label_items,
    v1_name_ok,
    value_ok,
)

TIME_PREFIX = "x-reduct-time-"
ERROR_PREFIX = "x-reduct-error-"
INVALID_CONTENT_LENGTH = "Invalid content length"

_EMPTY: Mapping[str, str] = {}


@dataclass(slots=True)
class BatchItem:
    """One record of a v1 batch request (not frozen: a frozen dataclass's ``__init__`` goes
    through ``object.__setattr__`` per field, ~5 % of a 1 KB batch write; nobody changes it)."""

    ts_us: int
    size: int
    content_type: str = DEFAULT_CONTENT_TYPE
    labels: dict[str, str] = field(default_factory=dict)


def time_header_name(ts_us: int) -> str:
    return f"{TIME_PREFIX}{ts_us}"


def error_header_name(ts_us: int) -> str:
    return f"{ERROR_PREFIX}{ts_us}"


def format_error(status: int, message: str) -> str:
    """Value of ``x-reduct-error-<ts>`` (and of v2 error headers): ``<status>,<message>``."""
    return f"{status},{message}"


def _parse_ts(name: str) -> int:
    ts = parse_u64(name[len(TIME_PREFIX) :])
    if ts is None:
        raise InvalidInputError(
            f"Invalid header '{name}': must be an unix timestamp in microseconds"
        )
    return ts


def parse_record_value(value: str) -> tuple[int, str, dict[str, str]]:
    """``<size>,<content-type>[,labels]`` -> (size, content type, labels)."""
    size_text, sep, rest = value.partition(",")
    if not sep:
        raise InvalidInputError(INVALID_BATCHED_HEADER)
    size = parse_u64(size_text.strip())
    if size is None:
        raise InvalidInputError(INVALID_CONTENT_LENGTH)
    content_type, _, label_text = rest.partition(",")
    labels = _plain_labels(label_text) if label_text else {}
    if labels is None:
        labels = dict(split_label_items(label_text, require_eq=False))
    return size, content_type.strip() or DEFAULT_CONTENT_TYPE, labels


def _plain_labels(text: str) -> dict[str, str] | None:
    """``split_label_items``'s fast path as a dict in one loop (no quotes, every part has a
    "="), else None."""
    if '"' in text:
        return None
    labels = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq:
            return None
        labels[name.strip()] = value.strip()
    return labels


def parse_record_headers(headers: Iterable[tuple[str, str]]) -> list[BatchItem]:
    """Every ``x-reduct-time-<ts>`` header as a BatchItem, ascending by ts (write and PATCH)."""
    items: list[BatchItem] = []
    start = len(TIME_PREFIX)
    for name, value in headers:
        if not name.startswith(TIME_PREFIX):
            name = name.lower()
            if not name.startswith(TIME_PREFIX):
                continue
        text = name[start:]
        # parse_u64 inline for the common case; anything else gets its full check and message
        ts = int(text) if text.isdigit() and text.isascii() and len(text) < 20 else _parse_ts(name.lower())
        size, content_type, labels = parse_record_value(value)
        items.append(BatchItem(ts, size, content_type, labels))
    items.sort(key=lambda item: item.ts_us)
    return items


def parse_record_timestamps(headers: Iterable[tuple[str, str]]) -> list[int]:
    """Only the timestamps of the ``x-reduct-time-<ts>`` names, ascending (DELETE: values ignored)."""
    stamps = [
        _parse_ts(name)
        for name, _ in ((n.lower(), v) for n, v in headers)
        if name.startswith(TIME_PREFIX)
    ]
    stamps.sort()
    return stamps


def format_record_header(
    size: int,
    content_type: str,
    labels: Mapping[str, str],
    computed: Mapping[str, str] = _EMPTY,
) -> str:
    """Value of ``x-reduct-time-<ts>`` in a read response: ``10,text/plain,x="[a,b]"``."""
    items = [
        f"{k}={format_value(v)}"
        for k, v in labels.items()
        if v1_name_ok(k) and value_ok(v, allow_empty=True)
    ]
    items += [
        f"@{k}={format_value(v)}"
        for k, v in computed.items()
        if v1_name_ok(k) and value_ok(v, allow_empty=True)
    ]
    head = f"{size},{clean_content_type(content_type)}"
    if not items:
        return head
    items.sort()
    return head + "," + ",".join(items)
