"""Hypothesis round-trips for edge/server/protocol.py: whatever a client serializer writes, the
reader gives back, however the bytes are cut into receives."""

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.server.protocol import ChunkedDecoder, HeadReader, encode_chunked

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~", min_size=1, max_size=20)
# Visible latin-1 and inner spaces; leading/trailing whitespace is not part of a value.
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                       blacklist_characters="\x7f"), max_size=40).map(str.strip)
FRAMING = {"content-length", "transfer-encoding", "connection", "expect", "host"}
HEADERS = st.lists(st.tuples(TOKEN, VALUE).filter(lambda h: h[0].lower() not in FRAMING), max_size=30)
PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-._~%=&?", max_size=40).map(lambda p: "/" + p)


def serialize_request(method, target, headers, body=b""):
    lines = [f"{method} {target} HTTP/1.1", "Host: t"] + [f"{n}: {v}" for n, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def feed_in_cuts(wire: bytes, cuts: list[int]):
    """Feed ``wire`` in pieces at the given cut points; collect every head and the rest."""
    reader, buf, heads = HeadReader(), bytearray(), []
    points = sorted({c % (len(wire) + 1) for c in cuts}) + [len(wire)]
    pos = 0
    for p in points:
        buf += wire[pos:p]
        pos = p
        # Bodies are left in the buffer: callers only pipeline body-less requests.
        while (not heads or heads[-1].content_length == 0) and (head := reader(buf)) is not None:
            heads.append(head)
    return heads, bytes(buf)


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "HEAD", "DELETE", "PATCH"]), target=PATH,
       headers=HEADERS, body=st.binary(max_size=50), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_headers_round_trip(method, target, headers, body, cuts):
    wire = serialize_request(method, target, headers, body)
    heads, rest = feed_in_cuts(wire, cuts)
    assert len(heads) == 1
    head = heads[0]
    assert (head.method, head.target) == (method, target)
    assert head.headers[1:-1] == [(n.lower(), v) for n, v in headers]
    assert head.content_length == len(body) and rest == body


@settings(max_examples=100, deadline=None)
@given(requests=st.lists(st.tuples(PATH, HEADERS), min_size=1, max_size=5),
       cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_pipelined_heads_come_out_in_order(requests, cuts):
    wire = b"".join(serialize_request("GET", t, h) for t, h in requests)
    heads, rest = feed_in_cuts(wire, cuts)
    assert [h.target for h in heads] == [t for t, _ in requests] and rest == b""


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), max_size=10),
       cuts=st.lists(st.integers(0, 10_000), max_size=10), max_bytes=st.integers(1, 5000))
def test_chunked_round_trip(payload, sizes, cuts, max_bytes):
    wire = encode_chunked(payload, sizes) + b"NEXT"
    dec, buf, out = ChunkedDecoder(), bytearray(), []
    points = sorted({c % (len(wire) + 1) for c in cuts}) + [len(wire)]
    pos, finished = 0, False
    for p in points:
        buf += wire[pos:p]
        pos = p
        while not finished and (data := dec.next_data(buf, max_bytes)) is not None:
            if data == b"":
                finished = True
                break
            assert len(data) <= max_bytes
            out.append(data)
    assert finished and b"".join(out) == payload and bytes(buf) == b"NEXT"
