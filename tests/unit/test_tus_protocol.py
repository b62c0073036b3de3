"""edge.uploads.protocol: tus headers, Upload-Metadata -> destination, the state table."""

from __future__ import annotations

import base64
import hashlib

import pytest

from edge.errors import BadRequestError, InvalidInputError
from edge.uploads.protocol import (
    TRANSITIONS, Event, IllegalTransition, State, TusVersionError, UnsupportedMediaTypeError, accepts_bytes,
    advance, check_content_type, check_tus_resumable, destination, encode_metadata, parse_checksum,
    parse_length, parse_metadata, parse_offset,
)

NOW = 1_700_000_000_000_000


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- headers ---------------------------------------------------------------------------------


def test_tus_resumable():
    check_tus_resumable("1.0.0")
    check_tus_resumable(" 1.0.0 ")
    with pytest.raises(TusVersionError, match="required") as e:
        check_tus_resumable(None)
    assert e.value.status == 412
    with pytest.raises(TusVersionError, match="'0.2.2' is not supported"):
        check_tus_resumable("0.2.2")


@pytest.mark.parametrize("text,value", [("0", 0), ("5242880", 5242880), (" 7 ", 7), (str(2**64 - 1), 2**64 - 1)])
def test_offset_ok(text, value):
    assert parse_offset(text) == value


@pytest.mark.parametrize("text", ["-1", "", "1.5", "0x10", "٣", str(2**64), "1e3"])
def test_offset_bad(text):
    with pytest.raises(BadRequestError, match="Upload-Offset header must be a non-negative integer"):
        parse_offset(text)


def test_offset_missing():
    with pytest.raises(BadRequestError, match="Upload-Offset header is required"):
        parse_offset(None)


def test_length():
    assert parse_length("10", None) == 10
    with pytest.raises(BadRequestError, match="Upload-Length header is required"):
        parse_length(None, None)
    with pytest.raises(BadRequestError, match="Upload-Defer-Length is not supported"):
        parse_length(None, "1")
    with pytest.raises(BadRequestError, match="must be 1"):
        parse_length(None, "2")
    with pytest.raises(BadRequestError, match="must not both be set"):
        parse_length("3", "1")


def test_content_type():
    check_content_type("application/offset+octet-stream")
    check_content_type("Application/Offset+Octet-Stream; charset=x")
    for bad in (None, "", "application/octet-stream"):
        with pytest.raises(UnsupportedMediaTypeError) as e:
            check_content_type(bad)
        assert e.value.status == 415


def test_checksum():
    assert parse_checksum(None) is None
    d1 = hashlib.sha1(b"x").digest()
    c = parse_checksum("sha1 " + base64.b64encode(d1).decode())
    assert (c.algorithm, c.digest) == ("sha1", d1)
    d2 = hashlib.sha256(b"x").digest()
    assert parse_checksum("SHA256 " + base64.b64encode(d2).decode()).digest == d2
    with pytest.raises(BadRequestError, match="algorithm 'md5' is not supported"):
        parse_checksum("md5 " + base64.b64encode(hashlib.md5(b"").digest()).decode())
    with pytest.raises(BadRequestError, match="<algorithm> <base64 digest>"):
        parse_checksum("sha1 !!!")
    with pytest.raises(BadRequestError, match="a sha1 digest has 20 bytes"):
        parse_checksum("sha1 " + base64.b64encode(d2).decode())


# --- metadata --------------------------------------------------------------------------------


def test_metadata_pairs():
    raw = f"bucket {b64('b')},entry {b64('cam/1')}, empty, filename {b64('vidéo.mp4')}"
    assert parse_metadata(raw) == {"bucket": "b", "entry": "cam/1", "empty": "", "filename": "vidéo.mp4"}
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}
    assert parse_metadata(encode_metadata({"a": "1", "b": ""})) == {"a": "1", "b": ""}


@pytest.mark.parametrize("raw,text", [
    ("bucket YQ==,bucket Yg==", "key 'bucket' appears twice"),
    ("bucket notbase64!", "value of 'bucket' is not base64 of UTF-8 text"),
    ("bucket " + base64.b64encode(b"\xff\xfe").decode(), "not base64 of UTF-8"),
    ("bucket YQ== extra", "is not a 'key base64value' pair"),
    (",", "is not a 'key base64value' pair"),
])
def test_metadata_bad(raw, text):
    with pytest.raises(BadRequestError, match=text):
        parse_metadata(raw)


def test_destination_defaults_and_mapping():
    d = destination({"bucket": "b", "entry": "e"}, NOW, "application/octet-stream")
    assert (d.bucket, d.entry, d.ts_us, d.content_type, d.labels) == ("b", "e", NOW, "application/octet-stream", {})
    d = destination({"bucket": "b", "entry": "e", "ts": "42", "filetype": "video/mp4", "filename": "a.mp4",
                     "label-Camera": "front", "label-site": "", "name": "ignored"}, NOW, "x")
    assert d.ts_us == 42 and d.content_type == "video/mp4"
    assert d.labels == {"filename": "a.mp4", "camera": "front", "site": ""}


@pytest.mark.parametrize("meta,text", [
    ({"entry": "e"}, "Upload-Metadata must contain 'bucket'"),
    ({"bucket": "b"}, "Upload-Metadata must contain 'entry'"),
    ({"bucket": " ", "entry": "e"}, "must contain 'bucket'"),
    ({"bucket": "b", "entry": "e", "ts": "yesterday"}, "'ts' must be an unix timestamp in microseconds"),
    ({"bucket": "b", "entry": "e", "ts": "-5"}, "'ts' must be an unix timestamp"),
])
def test_destination_bad(meta, text):
    with pytest.raises(BadRequestError, match=text):
        destination(meta, NOW, "x")


@pytest.mark.parametrize("meta,text", [
    ({"bucket": "b", "entry": "e", "label-": "x"}, "label name must be"),
    ({"bucket": "b", "entry": "e", "label-a b": "x"}, "label name must be"),
    ({"bucket": "b", "entry": "e", "label-a": "x\ny"}, "'label-a'.*control characters"),
    ({"bucket": "b", "entry": "e", "filename": "a\r\n.txt"}, "'filename'"),
    ({"bucket": "b", "entry": "e", "filetype": "text/plain\r\nx: 1"}, "'filetype'"),
    ({"bucket": "b/c", "entry": "e"}, "'bucket'"),
    ({"bucket": "b", "entry": "e" * 2000}, "'entry'.*too long"),
])
def test_destination_that_cannot_be_stored_is_422(meta, text):
    with pytest.raises(InvalidInputError, match=text):
        destination(meta, NOW, "x")


# --- the state table -------------------------------------------------------------------------

S, E = State, Event
TABLE = [
    # state        event         next (None: illegal)
    (S.CREATED,    E.CHUNK,      S.RECEIVING),
    (S.CREATED,    E.COMMIT,     S.COMPLETE),
    (S.CREATED,    E.TERMINATE,  S.TERMINATED),
    (S.CREATED,    E.EXPIRE,     S.EXPIRED),
    (S.RECEIVING,  E.CHUNK,      S.RECEIVING),
    (S.RECEIVING,  E.COMMIT,     S.COMPLETE),
    (S.RECEIVING,  E.TERMINATE,  S.TERMINATED),
    (S.RECEIVING,  E.EXPIRE,     S.EXPIRED),
    (S.COMPLETE,   E.CHUNK,      None),
    (S.COMPLETE,   E.COMMIT,     None),
    (S.COMPLETE,   E.TERMINATE,  S.TERMINATED),
    (S.COMPLETE,   E.EXPIRE,     S.EXPIRED),
    (S.TERMINATED, E.CHUNK,      None),
    (S.TERMINATED, E.COMMIT,     None),
    (S.TERMINATED, E.TERMINATE,  None),
    (S.TERMINATED, E.EXPIRE,     None),
    (S.EXPIRED,    E.CHUNK,      None),
    (S.EXPIRED,    E.COMMIT,     None),
    (S.EXPIRED,    E.TERMINATE,  None),
    (S.EXPIRED,    E.EXPIRE,     None),
]


def test_table_is_complete():
    assert {(s, e) for s, e, _ in TABLE} == {(s, e) for s in State for e in Event}
    assert {(s, e): n for s, e, n in TABLE if n is not None} == TRANSITIONS


@pytest.mark.parametrize("state,event,expected", TABLE)
def test_transition(state, event, expected):
    if expected is None:
        with pytest.raises(IllegalTransition):
            advance(state, event)
    else:
        assert advance(state, event) is expected


def test_accepts_bytes():
    assert [s for s in State if accepts_bytes(s)] == [S.CREATED, S.RECEIVING]
