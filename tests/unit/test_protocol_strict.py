"""RFC 9112 strictness of edge/server/protocol.py: the framing an attacker uses to make a proxy
in front of us and us read one request differently, and floods that cost a call per byte.

Each case is refused whole and byte by byte (a reader that waits for more data instead of
failing would let the attack hold a connection). docs/http-strictness.md lists where we refuse
more than h11 does, and why.
"""

import pytest

from edge.server.protocol import (
    CHUNK_OVERHEAD_ALLOWANCE, MAX_LEADING_EMPTY_LINES, ChunkedDecoder, HeadReader, ProtocolError,
    encode_chunked,
)


def head_of(wire: bytes):
    buf = bytearray(wire)
    return HeadReader()(buf)


def refused(wire: bytes, status: int = 400) -> None:
    with pytest.raises(ProtocolError) as exc:
        head_of(wire)
    assert exc.value.status_hint == status, exc.value.message
    reader, buf = HeadReader(), bytearray()
    with pytest.raises(ProtocolError):
        for b in wire:
            buf.append(b)
            if reader(buf) is not None:
                break


def req(*lines: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET / " + version + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


# --- request line and header fields -------------------------------------------------------------


@pytest.mark.parametrize("name", [b"X(y)", b"X\x80", b"x y", b"X@Z", b"a\"b", b"{x}", b"x\x7f", b"\xe9"])
def test_field_names_must_be_tokens(name):
    refused(req(b"Host: a", name + b": 1"))


def test_obs_fold_and_space_before_colon_are_refused():
    refused(req(b"Host: a", b"X-A: 1", b" folded"))
    refused(req(b"Host: a", b"X-A : 1"))
    refused(req(b"Host: a", b"\tX-A: 1"))


@pytest.mark.parametrize("ctl", [b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x7f", b"\x00"])
def test_no_control_characters_in_values(ctl):
    refused(req(b"Host: a", b"X-A: a" + ctl + b"b"))


def test_htab_and_obs_text_in_values_are_fine():
    head = head_of(req(b"Host: a", b"X-A: a\tb \xe9"))
    assert head.first["x-a"] == "a\tb \xe9"


@pytest.mark.parametrize("line", [b"G(T / HTTP/1.1", b"GET /\xc3\xa9 HTTP/1.1", b"GET  / HTTP/1.1",
                                  b"GET / HTTP/1.1 ", b"GET /a\x7f HTTP/1.1", b"GET / http/1.1"])
def test_malformed_request_lines(line):
    refused(line + b"\r\nHost: a\r\n\r\n")


def test_unsupported_version_is_505():
    refused(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)


# --- Host -----------------------------------------------------------------------------------------


def test_host_exactly_once_and_valid_on_http_1_1():
    refused(req())
    refused(req(b"Host: a", b"Host: b"))
    for bad in (b"a b", b"a/b", b"a@b", b"[::1", b"a:b:c", b"a:80x", b"a\\b"):
        refused(req(b"Host: " + bad))
    for good in (b"a", b"127.0.0.1:8383", b"[::1]:8383", b"edge.local", b"", b"xn--d1acj3b:80"):
        assert head_of(req(b"Host: " + good)) is not None
    assert head_of(req(version=b"HTTP/1.0")) is not None  # HTTP/1.0 need not send one
    refused(req(b"Host: a", b"Host: a", version=b"HTTP/1.0"))


# --- body framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("te", [b"chunked\xa0", b"\xa0chunked", b"chunked\x85", b"chunked, chunked", b"identity",
                                b"gzip, chunked", b"", b"chunk", b"chunked;q=1"])
def test_transfer_encoding_is_exactly_chunked(te):
    refused(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te + b"\r\n\r\n", 501)


def test_transfer_encoding_is_ascii_case_insensitive():
    for te in (b"chunked", b"Chunked", b"CHUNKED", b"chunked\t"):
        assert head_of(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te + b"\r\n\r\n").chunked


def test_two_transfer_encoding_headers_are_refused():
    refused(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501)


def test_transfer_encoding_on_http_1_0_is_refused():
    refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")


def test_content_length_with_transfer_encoding_is_refused():
    refused(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")


# --- empty lines before the request line ----------------------------------------------------------


def test_a_few_empty_lines_are_skipped_a_flood_is_refused():
    ok = b"\r\n" * MAX_LEADING_EMPTY_LINES + req(b"Host: a")
    assert head_of(ok) is not None
    refused(b"\r\n" * (MAX_LEADING_EMPTY_LINES + 1) + req(b"Host: a"))
    with pytest.raises(ProtocolError):
        head_of(b"\r\n" * 100_000)


def test_empty_lines_mark_the_head_as_started():
    reader, buf = HeadReader(), bytearray(b"\r\n")
    assert reader(buf) is None and reader.started  # the head deadline runs from here


# --- chunked bodies -------------------------------------------------------------------------------


def decode(wire: bytes) -> bytes:
    dec, buf, out = ChunkedDecoder(), bytearray(wire), []
    while (data := dec.next_data(buf)) not in (None, b""):
        out.append(data)
    assert dec.done, "incomplete"
    return b"".join(out)


def chunk_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(wire)
    dec, buf = ChunkedDecoder(), bytearray()
    with pytest.raises(ProtocolError):
        for b in wire:
            buf.append(b)
            while (data := dec.next_data(buf)) not in (None, b""):
                pass
            if dec.done:
                break


@pytest.mark.parametrize("line", [b"1;a\nb", b"1;a\rb", b" 1", b"\t1", b"1 ", b"1\t", b"0x1", b"1;", b"1;a=",
                                  b"1 ;a", b"1;a=b c", b"1;a=\"b", b"1;a=\"\x01\"", b"+1", b"-1", b"1" * 17, b""])
def test_bad_chunk_size_lines(line):
    chunk_refused(line + b"\r\nx" + b"\r\n0\r\n\r\n")


@pytest.mark.parametrize("line", [b"1", b"01", b"1;a", b"1;a=b", b"1;a=\"b c\\\"\"", b"1; a = b ; c", b"1;a;b=c"])
def test_good_chunk_size_lines(line):
    assert decode(line + b"\r\nx\r\n0\r\n\r\n") == b"x"


@pytest.mark.parametrize("trailer", [b"bad trailer", b"X : 1", b" X: 1", b"X: a\x01", b"X", b"X:\x7f", b"(x): 1"])
def test_trailers_are_checked_like_header_fields(trailer):
    chunk_refused(b"1\r\nx\r\n0\r\n" + trailer + b"\r\n\r\n")


def test_good_trailers_are_dropped():
    assert decode(b"1\r\nx\r\n0\r\nX-Sum: 1\r\nY:\t\xe9 z\r\n\r\n") == b"x"


def test_a_flood_of_tiny_chunks_is_refused_after_the_allowance():
    wire = b"1\r\nx\r\n" * 100_000 + b"0\r\n\r\n"
    with pytest.raises(ProtocolError, match="overhead"):
        decode(wire)
    dec, buf = ChunkedDecoder(), bytearray(wire)
    taken = 0
    with pytest.raises(ProtocolError):
        while dec.next_data(buf) not in (None, b""):
            taken += 1
    assert taken <= CHUNK_OVERHEAD_ALLOWANCE // 4  # refused long before the 100,000th chunk


def test_long_extensions_count_as_overhead():
    wire = (b"1;" + b"e" * 4000 + b"\r\nx\r\n") * 100 + b"0\r\n\r\n"
    with pytest.raises(ProtocolError, match="overhead"):
        decode(wire)


def test_ordinary_chunking_stays_far_below_the_allowance():
    payload = bytes(range(256)) * 4096
    assert decode(encode_chunked(payload, [7, 100, 1000] * 50)) == payload
    assert decode(encode_chunked(payload, [16] * 60000)) == payload  # 16-byte chunks: 6 bytes framing each
