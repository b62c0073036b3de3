"""edge/server/protocol.py: heads, limits, chunked framing, response heads. Pure, no trio.

Every incremental reader is fed three ways, as h11 does: whole, byte by byte, and followed by
junk / a pipelined request that must stay in the buffer.
"""

import pytest

from edge.server.protocol import (
    ChunkedDecoder, HeadReader, ProtocolError, encode_chunked, parse_query,
    serialize_response_head, split_target,
)

GET = b"GET /api/v1/b/x?q=1 HTTP/1.1\r\nHost: a\r\nX-Reduct-Time-1: 5,text/plain\r\n\r\n"


def read_whole(wire: bytes, **limits):
    buf = bytearray(wire)
    return HeadReader(**limits)(buf), bytes(buf)


def read_dribble(wire: bytes, **limits):
    reader = HeadReader(**limits)
    buf = bytearray()
    for i in range(len(wire)):
        buf.append(wire[i])
        head = reader(buf)
        if head is not None:
            return head, bytes(buf) + wire[i + 1:]
    return None, bytes(buf)


def check_head(wire: bytes, expect):
    """Whole, byte by byte, and with a pipelined request after it."""
    for head, rest in (read_whole(wire), read_dribble(wire)):
        assert head is not None and rest == b""
        expect(head)
    head, rest = read_whole(wire + GET)
    expect(head)
    assert rest == GET
    head, rest = read_whole(wire + b"junk")
    expect(head)
    assert rest == b"junk"


def test_simple_get():
    def expect(h):
        assert (h.method, h.target, h.version) == ("GET", "/api/v1/b/x?q=1", "HTTP/1.1")
        assert h.headers == [("host", "a"), ("x-reduct-time-1", "5,text/plain")]
        assert h.content_length == 0 and not h.chunked and h.keep_alive and not h.expect_continue
    check_head(GET, expect)


def test_content_length_body_stays_in_buffer():
    wire = b"POST /w HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
    head, rest = read_whole(wire + b"hello")
    assert head.content_length == 5 and rest == b"hello"
    check_head(wire, lambda h: h.content_length == 5 or pytest.fail())


def test_values_are_stripped_and_latin1():
    wire = b"GET / HTTP/1.1\r\nHost: t\r\nX-A:   v a l  \t\r\nX-B:\xe9t\xe9\r\nX-Empty:\r\n\r\n"
    check_head(wire, lambda h: h.headers[1:] == [("x-a", "v a l"), ("x-b", "\xe9t\xe9"), ("x-empty", "")]
               or pytest.fail(repr(h.headers)))


def test_connection_and_expect():
    head, _ = read_whole(b"PUT / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
    assert not head.keep_alive and head.expect_continue
    head, _ = read_whole(b"GET / HTTP/1.0\r\n\r\n")
    assert not head.keep_alive
    head, _ = read_whole(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nExpect: 100-continue\r\n\r\n")
    assert head.keep_alive and not head.expect_continue  # 1.0 clients cannot ask for 100


def test_chunked_and_te_rules():
    head, _ = read_whole(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n")
    assert head.chunked and head.content_length is None
    with pytest.raises(ProtocolError) as e:
        read_whole(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    assert e.value.status_hint == 501
    with pytest.raises(ProtocolError) as e:
        read_whole(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
    assert e.value.status_hint == 400


def test_leading_blank_lines_are_ignored():
    head, rest = read_whole(b"\r\n\r\n" + GET)
    assert head.target == "/api/v1/b/x?q=1" and rest == b""
    head, rest = read_dribble(b"\r\n" + GET)
    assert head.method == "GET"


@pytest.mark.parametrize("wire,status", [
    (b"GET /\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / FOO\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \x00\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: \xb2\r\n\r\n", 400),
])
def test_malformed_heads(wire, status):
    for read in (read_whole, read_dribble):
        with pytest.raises(ProtocolError) as e:
            read(wire)
        assert e.value.status_hint == status


def test_duplicate_equal_content_length_is_fine():
    head, _ = read_whole(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab")
    assert head.content_length == 2


def test_header_limits():
    many = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(120)) + b"\r\n"
    head, _ = read_whole(many)  # ReductStore batches need ~100 headers
    assert len(head.headers) == 121
    with pytest.raises(ProtocolError) as e:
        read_whole(many, max_header_count=100)
    assert e.value.status_hint == 431
    big = b"GET / HTTP/1.1\r\nHost: t\r\nx-big: " + b"a" * 600_000 + b"\r\n\r\n"
    with pytest.raises(ProtocolError) as e:
        read_whole(big)
    assert e.value.status_hint == 431
    # An incomplete head over the limit fails without waiting for its end.
    with pytest.raises(ProtocolError) as e:
        HeadReader(max_header_bytes=1000)(bytearray(b"GET / HTTP/1.1\r\nHost: t\r\nx: " + b"a" * 2000))
    assert e.value.status_hint == 431


def test_header_block_of_500k_is_accepted():
    wire = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"x-reduct-time-%d: %s\r\n" % (i, b"l" * 4900) for i in range(100)) + b"\r\n"
    assert len(wire) < 512_000
    head, _ = read_whole(wire)
    assert len(head.headers) == 101


def test_long_request_line_is_414():
    with pytest.raises(ProtocolError) as e:
        HeadReader(max_request_line=100)(bytearray(b"GET /" + b"a" * 200))
    assert e.value.status_hint == 414
    with pytest.raises(ProtocolError) as e:
        read_whole(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: t\r\n\r\n", max_request_line=100)
    assert e.value.status_hint == 414


def test_reader_resets_between_heads():
    reader = HeadReader()
    buf = bytearray(GET[:10])
    assert reader(buf) is None and reader.started
    buf += GET[10:] + GET
    assert reader(buf).method == "GET"
    assert reader(buf).method == "GET"
    assert buf == b"" and not reader.started


# --- targets and queries


@pytest.mark.parametrize("target,path,query", [
    ("/api/v1/b/x", "/api/v1/b/x", ""),
    ("/a%20b/c%2Fd?x=1&y", "/a b/c/d", "x=1&y"),
    ("http://host:8383/api/v1/info?x=1", "/api/v1/info", "x=1"),
    ("http://host", "/", ""),
    ("*", "*", ""),
    ("/caf\xc3\xa9", "/café", ""),  # raw UTF-8 bytes, latin-1 decoded by the head parser
])
def test_split_target(target, path, query):
    assert split_target(target) == (path, query)


def test_split_target_rejects_garbage():
    with pytest.raises(ProtocolError):
        split_target("api/v1")


def test_parse_query():
    first, items = parse_query("a=1&b=&a=2&c&d=x+y%21")
    assert first == {"a": "1", "b": "", "c": "", "d": "x y!"}
    assert items == [("a", "1"), ("b", ""), ("a", "2"), ("c", ""), ("d", "x y!")]
    assert parse_query("") == ({}, [])


# --- chunked bodies


def decode_whole(wire: bytes):
    dec, buf, out = ChunkedDecoder(), bytearray(wire), []
    while (data := dec.next_data(buf)) is not None:
        if data == b"":
            return b"".join(out), bytes(buf)
        out.append(data)
    return None, bytes(buf)


def decode_dribble(wire: bytes):
    dec, buf, out = ChunkedDecoder(), bytearray(), []
    for i in range(len(wire)):
        buf.append(wire[i])
        while (data := dec.next_data(buf)) is not None:
            if data == b"":
                return b"".join(out), bytes(buf) + wire[i + 1:]
            out.append(data)
    return None, bytes(buf)


@pytest.mark.parametrize("wire,payload", [
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"0\r\n\r\n", b""),
    (b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde"),
    (b"A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n", b"0123456789"),
    (encode_chunked(b"x" * 1000, [1, 10, 100, 889]), b"x" * 1000),
])
def test_chunked_three_ways(wire, payload):
    assert decode_whole(wire) == (payload, b"")
    assert decode_dribble(wire) == (payload, b"")
    assert decode_whole(wire + GET) == (payload, GET)


def test_chunked_respects_max_bytes_and_direct_reads():
    dec, buf = ChunkedDecoder(), bytearray(b"a\r\n0123")
    assert dec.next_data(buf, 2) == b"01"
    assert dec.next_data(buf) == b"23"
    assert dec.in_data and dec.chunk_left == 6 and dec.next_data(buf) is None
    dec.consumed_direct(6)  # the caller received "456789" straight from the socket
    buf += b"\r\n0\r\n\r\n"
    assert dec.next_data(buf) == b"" and dec.done


@pytest.mark.parametrize("wire", [
    b"zz\r\nab\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"1_0\r\n",
    b"5\r\nhelloXX0\r\n\r\n",
    b"-5\r\n",
    b"f" * 5000,
])
def test_chunked_malformed(wire):
    with pytest.raises(ProtocolError):
        decode_whole(wire)


# --- response heads


def test_serialize_response_head():
    head = serialize_response_head(200, [("x-reduct-api", "1.21"), ("Content-Length", "99")], 5)
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK" and b"x-reduct-api: 1.21" in lines
    assert b"content-length: 5" in lines and b"Content-Length: 99" not in lines
    assert head.endswith(b"\r\n\r\n") and b"connection" not in head
    assert b"connection: close" in serialize_response_head(404, [], 0, close=True)
    assert b"connection: keep-alive" in serialize_response_head(200, [], 0, keep_alive_1_0=True)
    assert b"content-length" not in serialize_response_head(204, [], 0)
    assert serialize_response_head(599, [], 0).startswith(b"HTTP/1.1 599 Unknown\r\n")


def test_serialize_refuses_header_injection():
    with pytest.raises(ValueError):
        serialize_response_head(200, [("x-a", "v\r\nSet-Cookie: evil")], 0)
    with pytest.raises(ValueError):
        serialize_response_head(200, [("x-a", "v\nb")], 0)


def test_serialize_non_latin1_falls_back_to_utf8():
    head = serialize_response_head(404, [("x-reduct-error", "Bucket 'Ω' is not found")], 0)
    assert "Ω".encode() in head


def test_serialized_head_parses_back_as_request_headers():
    head = serialize_response_head(200, [("x-a", "1"), ("x-b", "two words")], 3)
    # Reuse the request parser on the header lines by swapping the status line.
    wire = b"GET / HTTP/1.1\r\nHost: t" + head[head.index(b"\r\n"):]
    parsed, _ = read_whole(wire)
    assert ("x-a", "1") in parsed.headers and ("x-b", "two words") in parsed.headers
