"""Property tests of the streaming multipart/form-data parser (``edge.server.multipart``).

Whatever the part bodies contain (boundary look-alikes, CRLFs, dashes) and however the bytes are
split into reads, the parts come out exactly as encoded; malformed forms are a 422
(``InvalidInputError``), never another exception; a part's body is never buffered whole.
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from edge.errors import InvalidInputError
from edge.server.multipart import (FormEnd, MultipartParser, PartData, PartEnd, PartStart, boundary_of)

BOUNDARY = "----edgeBoundary7MA4YWxkTrZu0gW"
names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, blacklist_characters='"\\;'), min_size=1,
                max_size=12)
tricky = st.sampled_from([b"\r\n", b"--", b"\r\n--", ("\r\n--" + BOUNDARY[:-1]).encode(), b"-", b"\r", BOUNDARY.encode()])
bodies = st.lists(st.one_of(st.binary(max_size=40), tricky), max_size=12).map(b"".join)
parts = st.lists(st.tuples(names, st.one_of(st.none(), names), bodies), min_size=1, max_size=5)


def encode(items, boundary=BOUNDARY, preamble=b"", epilogue=b"") -> bytes:
    out = preamble
    for name, filename, body in items:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode() + epilogue


def parse(data: bytes, cuts: list[int]) -> list:
    parser = MultipartParser(BOUNDARY)
    events, last = [], 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        events += parser.feed(data[last:cut])
        last = cut
    return events


def collect(events) -> list:
    out, current = [], None
    for e in events:
        if isinstance(e, PartStart):
            current = [e.name, e.filename, b""]
        elif isinstance(e, PartData):
            current[2] += e.data
        elif isinstance(e, PartEnd):
            out.append(tuple(current))
    return out


@given(parts, st.lists(st.integers(min_value=0, max_value=10_000), max_size=30), st.binary(max_size=30))
def test_round_trip_whatever_the_reads(items, cuts, epilogue):
    preamble = b"ignored preamble\r\n"
    if (f"\r\n--{BOUNDARY}").encode() in b"\r\n" + preamble:
        return
    # a body must not contain the delimiter itself (the sender picks a boundary that does not occur)
    if any((f"\r\n--{BOUNDARY}").encode() in body + b"\r\n" for _, _, body in items):
        return
    events = parse(encode(items, preamble=preamble, epilogue=epilogue), cuts)
    assert isinstance(events[-1], FormEnd)
    assert collect(events) == [(n, f, b) for n, f, b in items]


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_junk_is_a_clear_error_or_nothing(data, cuts):
    try:
        parse(b"--" + BOUNDARY.encode() + data, cuts)
    except InvalidInputError:
        pass


def test_data_streams_without_buffering_the_body():
    parser = MultipartParser(BOUNDARY)
    events = parser.feed(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'.encode())
    assert isinstance(events[0], PartStart) and events[0].filename == "a"
    out = b""
    for _ in range(100):
        for e in parser.feed(b"x" * 10_000):
            out += e.data
    assert len(out) > 999_000                                   # all but a delimiter's worth handed out


@pytest.mark.parametrize("value, expected", [
    ("multipart/form-data; boundary=abc", "abc"),
    ('multipart/form-data; boundary="a b:c"', "a b:c"),
    ("application/json", None), (None, None),
])
def test_boundary_of(value, expected):
    assert boundary_of(value) == expected


@pytest.mark.parametrize("value", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=" + "x" * 71])
def test_bad_boundaries(value):
    with pytest.raises(InvalidInputError):
        boundary_of(value)


def test_limits():
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(InvalidInputError, match="headers too long"):
        parser.feed(f"--{BOUNDARY}\r\n".encode() + b"X-Junk: " + b"a" * 20_000)
    many = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(70))
    with pytest.raises(InvalidInputError, match="more than 64 parts"):
        MultipartParser(BOUNDARY).feed(many.encode())
    with pytest.raises(InvalidInputError, match="without Content-Disposition"):
        MultipartParser(BOUNDARY).feed(f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nv".encode())
