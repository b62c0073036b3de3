"""Batch protocol v2: multi-entry record headers of the io API (spec §8).

Owns: parsing io write/update/remove request headers (§8.1-§8.4), encoding io read responses
(§8.6) incrementally and the ordering rule that keeps them readable by reduct-py, the client-side
decoder of read responses (tests, replication), entry-name percent-encoding and the
``x-reduct-error-<i>-<d>`` names.
Must not: read bodies, check Content-Length sums, touch the store, import trio/HTTP or anything
beyond ``edge.errors``/``edge.model``/``edge.formats.labels``.

Headers::

    x-reduct-entries  := name ("," name)*     percent-encoded (labels.encode_name); position = index
    x-reduct-start-ts := u64                  every record ts = start-ts + delta
    x-reduct-labels   := name ("," name)*     optional, percent-encoded label names; position = index
    x-reduct-<i>-<d>  := size                          same content type and labels as before
                       | size "," ct                   new content type (empty = unchanged)
                       | size "," [ct] "," delta       label delta: k=v | k= (remove) | k="v,w"
    x-reduct-error-<i>-<d> := status "," message       responses only

A delta key is a label index when ``x-reduct-labels`` is present and the key is ASCII digits,
else a literal name (a literal name starting with "@" is refused). Records of an entry are read
relative to the previous record of the same entry *index*, in (entry index, ts) order, which is
also the body order of writes.

Server side (requests): any ``x-reduct-<a>-<b>`` whose ``<b>`` is all digits is a record header
and ``<a>`` must be an entry index. ``parse_write_headers`` gives every record its resolved
labels (write) and its accumulated update map (PATCH §8.3: the sets and removals of this and all
earlier records of the entry, removals as ``""``). ``parse_remove_headers`` ignores the values.
An empty ``x-reduct-entries`` with no record header is a valid empty batch (reduct-py sends it);
index-named labels resolving to "@..." are refused for writes like literal ones.

Server side (reads, ``ReadBatchEncoder``): entries indexed by first appearance, label indices
always used, the first record of an entry carries its content type and all labels, later records
only the changes (``idx=`` removes), computed labels (``@name`` in ``x-reduct-labels``) are sent
in full on every record. v2 cannot send an empty label value (it means "remove") nor the values
of ``labels.value_ok``, and an empty label name cannot be listed in ``x-reduct-labels``; such
labels are left out. A stored label literally named "@x" would
collide with computed "x"; the computed one wins.

Ordering rule (§8.6). reduct-py sorts record headers by (delta, entry index) and consumes the
body in that order; upstream writes the body in (entry index, ts) order. Both agree iff records
are added in non-decreasing ts order and every entry's records form one contiguous run. The
encoder therefore takes records in body order and refuses (``ValueError``, a bug in the caller)
a record whose entry already appeared but is not the entry of the previous record: the batch
filler must check ``can_append`` first and close the batch when it is False. The body is the
payloads in the order the records were added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from edge.errors import InvalidInputError
from edge.formats.labels import (
    DEFAULT_CONTENT_TYPE,
    clean_content_type,
    decode_name,
    encode_name,
    format_value,
    parse_u64,
    split_label_items,
    value_ok,
)

PREFIX = "x-reduct-"
ERROR_PREFIX = "x-reduct-error-"
ENTRIES_HEADER = "x-reduct-entries"
START_TS_HEADER = "x-reduct-start-ts"
LABELS_HEADER = "x-reduct-labels"

FIRST_RECORD_NEEDS_META = "Content-type and labels must be provided for the first record of an entry"
RESERVED_LABEL = "Label names must not start with '@': reserved for computed labels"

_EMPTY: Mapping[str, str] = {}


def encode_entry_name(name: str) -> str:
    """``a/x/y/$meta`` -> ``a%2Fx%2Fy%2F$meta`` (see ``labels.encode_name``)."""
    return encode_name(name)


def decode_entry_name(encoded: str) -> str:
    """Inverse of ``encode_entry_name``; ``InvalidInputError`` with the spec texts."""
    return decode_name(encoded)


def record_header_name(entry_index: int, ts_offset: int) -> str:
    return f"{PREFIX}{entry_index}-{ts_offset}"


def error_header_name(entry_index: int, ts_offset: int) -> str:
    """``x-reduct-error-<entry index>-<ts - start ts>``; the value is ``batch_v1.format_error``."""
    return f"{ERROR_PREFIX}{entry_index}-{ts_offset}"


# ---------------------------------------------------------------------------------------------
# Requests (server side)


@dataclass(frozen=True, slots=True)
class V2Item:
    """One record of an io write/update/remove request."""

    entry_index: int
    entry: str
    ts_us: int
    ts_offset: int  # ts_us - start_ts: the <d> of x-reduct-<i>-<d> and of its error header
    size: int
    content_type: str
    labels: dict[str, str]  # resolved full labels (write)
    delta: dict[str, str]  # accumulated update map, "" = remove (PATCH)


@dataclass(frozen=True, slots=True)
class V2Batch:
    start_ts: int
    entries: list[str]
    records: list[V2Item]  # body order: entry index, then ts
    label_names: list[str] | None = None

    @property
    def total_size(self) -> int:
        return sum(r.size for r in self.records)

    def echo_headers(self) -> list[tuple[str, str]]:
        """``x-reduct-entries`` (re-encoded) and ``x-reduct-start-ts`` for the 200 response."""
        return [
            (ENTRIES_HEADER, ",".join(encode_name(e) for e in self.entries)),
            (START_TS_HEADER, str(self.start_ts)),
        ]


def _first(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Lower-case names; the first value of each special header; the candidate record headers."""
    special: dict[str, str] = {}
    others: list[tuple[str, str]] = []
    for name, value in headers:
        name = name.lower()
        if not name.startswith(PREFIX):
            continue
        if name in (ENTRIES_HEADER, START_TS_HEADER, LABELS_HEADER):
            special.setdefault(name, value)
        else:
            others.append((name, value))
    return special, others


def _parse_start_ts(special: dict[str, str]) -> int:
    raw = special.get(START_TS_HEADER)
    if raw is None or not raw.strip():
        raise InvalidInputError(f"{START_TS_HEADER} header is required")
    start = parse_u64(raw.strip())
    if start is None:
        raise InvalidInputError(f"Invalid {START_TS_HEADER} header")
    return start


def _parse_name_list(raw: str, empty_message: str) -> list[str]:
    names = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            raise InvalidInputError(empty_message)
        names.append(decode_name(part))
    return names


def _parse_labels_header(special: dict[str, str]) -> list[str] | None:
    raw = special.get(LABELS_HEADER)
    if raw is None or not raw.strip():
        return None
    return _parse_name_list(raw, "x-reduct-labels header must not contain empty label names")


def _request_record_headers(others: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(name, index text, delta text, value) for every x-reduct-<a>-<digits> header."""
    found = []
    for name, value in others:
        head, sep, tail = name[len(PREFIX) :].rpartition("-")
        if sep and tail.isascii() and tail.isdigit():
            found.append((name, head, tail, value))
    return found


def _index_and_ts(
    name: str, index_text: str, delta_text: str, start: int, n_entries: int
) -> tuple[int, int]:
    index = parse_u64(index_text)
    if index is None:
        raise InvalidInputError(f"Invalid header '{name}': entry index must be a number")
    if index >= n_entries:
        raise InvalidInputError(f"Invalid header '{name}': entry index out of range")
    delta = parse_u64(delta_text)
    if delta is None or start + delta >= 1 << 64:
        raise InvalidInputError(f"Invalid header '{name}': must be an unix timestamp in microseconds")
    return index, delta


class _EntryState:
    __slots__ = ("content_type", "labels", "acc")

    def __init__(self, content_type: str, labels: dict[str, str], acc: dict[str, str]):
        self.content_type = content_type
        self.labels = labels
        self.acc = acc


def _resolve_key(key: str, label_names: list[str] | None, allow_computed: bool) -> str:
    if label_names is not None and key.isascii() and key.isdigit():
        index = int(key)
        if index >= len(label_names):
            raise InvalidInputError(f"Label index '{key}' is out of range")
        name = label_names[index]
        if name.startswith("@") and not allow_computed:
            raise InvalidInputError(RESERVED_LABEL)
        return name
    if key.startswith("@"):
        raise InvalidInputError(RESERVED_LABEL)
    return key


def _next_state(
    value: str, prev: _EntryState | None, label_names: list[str] | None, allow_computed: bool
) -> tuple[int, _EntryState]:
    """Apply one record header value to the previous state of its entry."""
    size_text, sep, rest = value.partition(",")
    size = parse_u64(size_text.strip())
    if size is None:
        raise InvalidInputError("Invalid content length")
    if not sep:
        if prev is None:
            raise InvalidInputError(FIRST_RECORD_NEEDS_META)
        return size, prev
    ct_text, sep, label_text = rest.partition(",")
    content_type = ct_text.strip() or (prev.content_type if prev else DEFAULT_CONTENT_TYPE)
    labels = dict(prev.labels) if prev else {}
    acc = dict(prev.acc) if prev else {}
    if sep:
        for key, val in split_label_items(label_text, require_eq=True):
            name = _resolve_key(key, label_names, allow_computed)
            acc[name] = val
            if val:
                labels[name] = val
            else:
                labels.pop(name, None)
    return size, _EntryState(content_type, labels, acc)


def _parse_request(headers: Iterable[tuple[str, str]], with_values: bool) -> V2Batch:
    special, others = _first(headers)
    start = _parse_start_ts(special)
    raw_entries = special.get(ENTRIES_HEADER)
    found = _request_record_headers(others)
    if raw_entries is None or (not raw_entries.strip() and found):
        raise InvalidInputError(f"{ENTRIES_HEADER} header is required")
    if not raw_entries.strip():
        return V2Batch(start, [], [])
    entries = _parse_name_list(raw_entries, f"{ENTRIES_HEADER} header must not contain empty entry names")
    label_names = _parse_labels_header(special) if with_values else None

    keyed = []
    for name, index_text, delta_text, value in found:
        index, delta = _index_and_ts(name, index_text, delta_text, start, len(entries))
        keyed.append((index, delta, value))
    keyed.sort(key=lambda k: (k[0], k[1]))

    records: list[V2Item] = []
    states: dict[int, _EntryState] = {}
    for index, delta, value in keyed:
        if with_values:
            size, state = _next_state(value, states.get(index), label_names, False)
            states[index] = state
            records.append(
                V2Item(index, entries[index], start + delta, delta, size,
                       state.content_type, dict(state.labels), dict(state.acc))
            )
        else:
            records.append(V2Item(index, entries[index], start + delta, delta, 0, "", {}, {}))
    return V2Batch(start, entries, records, label_names)


def parse_write_headers(headers: Iterable[tuple[str, str]]) -> V2Batch:
    """Headers of ``POST /io/{b}/write`` or ``PATCH /io/{b}/update`` (use ``.labels`` / ``.delta``)."""
    return _parse_request(headers, with_values=True)


parse_update_headers = parse_write_headers


def parse_remove_headers(headers: Iterable[tuple[str, str]]) -> V2Batch:
    """Headers of ``DELETE /io/{b}/remove``: only names count (sizes 0, no labels)."""
    return _parse_request(headers, with_values=False)


# ---------------------------------------------------------------------------------------------
# Read responses (server side)


class ReadRecord(NamedTuple):
    """A record as a v2 read batch carries it (also what ``parse_read_batch`` returns)."""

    entry: str
    ts_us: int
    size: int
    content_type: str
    labels: Mapping[str, str]
    computed: Mapping[str, str] = _EMPTY


def can_append(records: Sequence[Sequence[object]], entry: str) -> bool:
    """May a record of ``entry`` follow ``records`` (tuples starting with the entry name)? §8.6."""
    if not records or records[-1][0] == entry:
        return True
    return all(r[0] != entry for r in records)


class ReadBatchEncoder:
    """Builds the headers of one io read batch, record by record, in body order.

    ``add`` returns the metadata bytes of the record header (``len(name) + len(value) + 2``, the
    §9.6 ``batch_max_metadata_size`` measure) so a filler can stop at its limit.
    """

    def __init__(self) -> None:
        self._entries: list[str] = []
        self._entry_index: dict[str, int] = {}
        self._label_names: list[str] = []
        self._label_index: dict[str, int] = {}
        self._sent: dict[int, tuple[str, dict[str, str]]] = {}
        self._records: list[tuple[str, str]] = []
        self._start: int | None = None
        self._last: tuple[str, int] | None = None

    def __len__(self) -> int:
        return len(self._records)

    @property
    def entries(self) -> list[str]:
        return list(self._entries)

    @property
    def start_ts(self) -> int:
        return 0 if self._start is None else self._start

    def can_append(self, entry: str, ts_us: int | None = None) -> bool:
        if self._last is None:
            return True
        last_entry, last_ts = self._last
        if ts_us is not None and (ts_us < last_ts or (ts_us == last_ts and entry == last_entry)):
            return False
        return entry == last_entry or entry not in self._entry_index

    def _label(self, name: str) -> int:
        index = self._label_index.get(name)
        if index is None:
            index = self._label_index[name] = len(self._label_names)
            self._label_names.append(name)
        return index

    def add(
        self,
        entry: str,
        ts_us: int,
        size: int,
        content_type: str,
        labels: Mapping[str, str],
        computed: Mapping[str, str] = _EMPTY,
    ) -> int:
        if not self.can_append(entry, ts_us):
            raise ValueError(f"record {entry}@{ts_us} breaks the v2 batch order (see can_append)")
        if self._start is None:
            self._start = ts_us
        index = self._entry_index.get(entry)
        if index is None:
            index = self._entry_index[entry] = len(self._entries)
            self._entries.append(entry)
        self._last = (entry, ts_us)

        content_type = clean_content_type(content_type)
        want = {k: v for k, v in labels.items() if k and value_ok(v, allow_empty=False)}
        want.update((f"@{k}", v) for k, v in computed.items() if value_ok(v, allow_empty=False))
        previous = self._sent.get(index)
        ops: list[str] = []
        if previous is None:
            ct_part = content_type
            for name in sorted(want):
                ops.append(f"{self._label(name)}={format_value(want[name])}")
        else:
            prev_ct, prev_labels = previous
            ct_part = "" if content_type == prev_ct else content_type
            for name in sorted(want.keys() | prev_labels.keys()):
                value = want.get(name)
                if value is None:
                    ops.append(f"{self._label(name)}=")
                elif value != prev_labels.get(name) or name.startswith("@"):
                    ops.append(f"{self._label(name)}={format_value(value)}")
        self._sent[index] = (content_type, want)

        if ops:
            value = f"{size},{ct_part}," + ",".join(ops)
        elif ct_part:
            value = f"{size},{ct_part}"
        else:
            value = str(size)
        name = record_header_name(index, ts_us - self._start)
        self._records.append((name, value))
        return len(name) + len(value) + 2

    def headers(self) -> list[tuple[str, str]]:
        """entries, start-ts, labels (if any), then the record headers in body order."""
        out = [
            (ENTRIES_HEADER, ",".join(encode_name(e) for e in self._entries)),
            (START_TS_HEADER, str(self.start_ts)),
        ]
        if self._label_names:
            out.append((LABELS_HEADER, ",".join(encode_name(n) for n in self._label_names)))
        out.extend(self._records)
        return out


def encode_read_batch(records: Iterable[Sequence]) -> list[tuple[str, str]]:
    """Headers of a read batch for ``(entry, ts_us, size, content_type, labels[, computed])``
    given in body order (``ValueError`` if they break the §8.6 rule)."""
    encoder = ReadBatchEncoder()
    for record in records:
        encoder.add(*record)
    return encoder.headers()


# ---------------------------------------------------------------------------------------------
# Read responses (client side)


def parse_read_batch(headers: Iterable[tuple[str, str]]) -> list[ReadRecord]:
    """Decode a read batch like reduct-py does: records in (delta, entry index) order, computed
    labels (``@name``) split out of the labels. Errors are ``InvalidInputError``."""
    special, others = _first(headers)
    start = _parse_start_ts(special)
    raw_entries = special.get(ENTRIES_HEADER, "")
    entries = (
        _parse_name_list(raw_entries, f"{ENTRIES_HEADER} header must not contain empty entry names")
        if raw_entries.strip()
        else []
    )
    label_names = _parse_labels_header(special)

    keyed = []
    for name, index_text, delta_text, value in _request_record_headers(others):
        if name.startswith(ERROR_PREFIX) or not (index_text.isascii() and index_text.isdigit()):
            continue
        index, delta = _index_and_ts(name, index_text, delta_text, start, len(entries))
        keyed.append((delta, index, value))
    keyed.sort(key=lambda k: (k[0], k[1]))

    out: list[ReadRecord] = []
    states: dict[int, _EntryState] = {}
    for delta, index, value in keyed:
        size, state = _next_state(value, states.get(index), label_names, True)
        states[index] = state
        labels = {k: v for k, v in state.labels.items() if not k.startswith("@")}
        computed = {k[1:]: v for k, v in state.labels.items() if k.startswith("@")}
        out.append(ReadRecord(entries[index], start + delta, size, state.content_type, labels, computed))
    return out


def parse_error_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, int, int, str]]:
    """Client side of write/update/remove responses: ``(entry, ts_us, status, message)``."""
    special, others = _first(headers)
    start = _parse_start_ts(special)
    raw_entries = special.get(ENTRIES_HEADER, "")
    entries = (
        _parse_name_list(raw_entries, f"{ENTRIES_HEADER} header must not contain empty entry names")
        if raw_entries.strip()
        else []
    )
    out = []
    for name, value in others:
        if not name.startswith(ERROR_PREFIX):
            continue
        index_text, sep, delta_text = name[len(ERROR_PREFIX) :].rpartition("-")
        if not sep:
            raise InvalidInputError(f"Invalid error header '{name}'")
        index, delta = _index_and_ts(name, index_text, delta_text, start, len(entries))
        status_text, _, message = value.partition(",")
        status = parse_u64(status_text.strip())
        if status is None:
            raise InvalidInputError(f"Invalid error header '{name}'")
        out.append((entries[index], start + delta, status, message))
    return out
