"""Fuzzing: untrusted input reaches the parsers and never escapes as anything but a 4xx error.

What it checks, and why: every byte a client controls goes through a handful of pure parsers --
the batch header codecs (v1 ``x-reduct-time-*``, v2 ``x-reduct-<i>-<d>``), the ``when``
compiler and evaluator, the share-link token decoder, bucket/entry name and label checks, and
the HTTP request-head parser. An exception other than the documented ones (``EdgeError``
subclasses -> 4xx; ``ProtocolError`` -> 4xx/5xx hint; ``LinkInvalidError``) would become a 500
or kill a connection, and a pathological input that takes seconds would be a denial of service.
Hypothesis drives each parser with structured junk; the time bound is hypothesis' ``deadline``
per example (no signals, no threads).

The server-level part sends random junk bytes and random header sets over raw sockets to a real
server on 127.0.0.1: it must never answer 500 and must stay alive (checked after every example).
Bounded: a fixed example count per test and socket timeouts.
"""

from __future__ import annotations

import json
import socket
import string
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import EdgeError
from edge.formats import batch_v1, batch_v2, labels as label_codec
from edge.server.protocol import ChunkedDecoder, HeadReader, ProtocolError, parse_query, split_target
from edge.links.seal import decode_b64, seal, unseal
from edge.query.when import OPERATORS, compile_when
from edge.store.bucket import check_bucket_name, check_entry_name

FAST = settings(max_examples=300, deadline=timedelta(milliseconds=500),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=60)
token_text = st.text(alphabet=string.ascii_letters + string.digits + "-_=,\"' %/$@.", max_size=40)


# --- batch header codecs ---------------------------------------------------------------------

v1_name = st.one_of(
    st.builds(lambda s: f"x-reduct-time-{s}", st.one_of(st.integers(-5, 2**70).map(str), token_text)),
    header_text.map(str.lower),
)
v1_value = st.one_of(
    st.builds(lambda n, ct, lb: f"{n},{ct},{lb}", st.integers(-3, 2**70), token_text, token_text),
    header_text,
)


@FAST
@given(st.lists(st.tuples(v1_name, v1_value), max_size=12))
def test_batch_v1_parsers(headers):
    for fn in (batch_v1.parse_record_headers, batch_v1.parse_record_timestamps):
        try:
            fn(headers)
        except EdgeError:
            pass


v2_name = st.one_of(
    st.sampled_from(["x-reduct-entries", "x-reduct-start-ts", "x-reduct-labels", "content-length"]),
    st.builds(lambda i, d: f"x-reduct-{i}-{d}", st.one_of(st.integers(-2, 5).map(str), token_text),
              st.one_of(st.integers(-2, 2**66).map(str), token_text)),
    header_text.map(str.lower),
)
v2_value = st.one_of(
    st.builds(lambda a, b, c: f"{a},{b},{c}", st.integers(-2, 2**66), token_text, token_text),
    st.lists(token_text, max_size=4).map(",".join),
    st.integers(-5, 2**70).map(str),
    header_text,
)


@FAST
@given(st.lists(st.tuples(v2_name, v2_value), max_size=12))
def test_batch_v2_parsers(headers):
    for fn in (batch_v2.parse_write_headers, batch_v2.parse_update_headers, batch_v2.parse_remove_headers,
               batch_v2.parse_read_batch, batch_v2.parse_error_headers):
        try:
            fn(headers)
        except EdgeError:
            pass


@FAST
@given(header_text, st.booleans())
def test_label_list_and_name_codecs(text, require_eq):
    try:
        label_codec.split_label_items(text, require_eq=require_eq)
    except EdgeError:
        pass
    try:
        label_codec.decode_name(text)
    except EdgeError:
        pass
    assert label_codec.decode_name(label_codec.encode_name(text)) == text
    try:
        batch_v2.decode_entry_name(text)
    except EdgeError:
        pass


@FAST
@given(st.text(max_size=80))
def test_name_validation(name):
    for fn in (check_bucket_name, check_entry_name):
        try:
            fn(name)
        except EdgeError:
            pass


# --- when ------------------------------------------------------------------------------------

OPS = sorted(OPERATORS) if not isinstance(OPERATORS, dict) else sorted(OPERATORS)
keys = st.one_of(st.sampled_from(OPS), st.sampled_from(["&a", "&b", "@c", "$limit", "#batch_records",
                                                         "#ext", "$each_n", "&"]), st.text(max_size=6))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["&a", "&b", "@c", "$timestamp", "1h", "-5s", "2024-01-01T00:00:00Z", "10KB"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=3)), max_leaves=20)


class _Rec:
    def __init__(self, ts, labels, computed):
        self.ts_us, self.labels, self.computed = ts, labels, computed


@FAST
@given(st.dictionaries(keys, json_values, max_size=4),
       st.lists(st.tuples(st.integers(0, 2**63), st.dictionaries(st.sampled_from(["a", "b", "x"]),
                                                                 st.text(max_size=8), max_size=3)), max_size=4))
def test_when_compile_and_evaluate(obj, records):
    for strict in (False, True):
        try:
            cond, _ = compile_when(obj, strict=strict)
        except EdgeError:
            continue
        if cond is None:
            continue
        for ts, labels in records:
            try:
                result = cond.evaluate(_Rec(ts, labels, {"c": "1"}))
            except EdgeError:
                assert strict, "non-strict evaluation must not raise"
                continue
            assert isinstance(result, bool)


@FAST
@given(st.text(max_size=200))
def test_when_from_json_text(text):
    try:
        obj = json.loads(text)
    except ValueError:
        return
    try:
        compile_when(obj if isinstance(obj, dict) else {"&a": obj})
    except EdgeError:
        pass


# --- link tokens -----------------------------------------------------------------------------

b64ish = st.text(alphabet=string.ascii_letters + string.digits + "-_=+/ ", max_size=120)
SECRET = b"k" * 32
GOOD = seal({"bucket": "b", "entry": "e"}, SECRET)


@FAST
@given(b64ish, b64ish, b64ish)
def test_link_token_decoder(ct, s, n):
    try:
        decode_b64(ct, "ct")
    except EdgeError:
        pass
    try:
        unseal(ct, s, n, SECRET)
    except EdgeError:
        pass


@FAST
@given(st.integers(0, 200), st.integers(0, 255), st.sampled_from(["ct", "s", "n"]))
def test_link_token_bit_flips(pos, byte, which):
    parts = {"ct": GOOD.ct, "s": GOOD.s, "n": GOOD.n}
    raw = bytearray(decode_b64(parts[which], which))
    if not raw:
        return
    raw[pos % len(raw)] ^= byte or 1
    import base64

    parts[which] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(EdgeError):
        unseal(parts["ct"], parts["s"], parts["n"], SECRET)


# --- HTTP request heads ----------------------------------------------------------------------

head_lines = st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(["Host", "Content-Length", "Transfer-Encoding",
                                                         "Connection", "Expect", "x-reduct-label-a"]),
              st.one_of(st.integers(-1, 2**70).map(str), token_text, header_text)),
    header_text,
), max_size=8)


@FAST
@given(st.sampled_from(["GET", "POST", "PUT", "G3T", "", "DELETE"]), st.text(max_size=40),
       st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "XYZ", ""]), head_lines,
       st.lists(st.integers(1, 50), max_size=5))
def test_head_reader(method, target, version, lines, cuts):
    text = f"{method} {target} {version}\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n"
    data = text.encode("utf-8", "surrogatepass")
    reader = HeadReader(max_header_bytes=4096, max_header_count=20, max_request_line=512)
    buf = bytearray()
    pos = 0
    try:
        for c in [*cuts, len(data)]:  # dribbled in pieces, as from a socket
            buf += data[pos:pos + c]
            pos += c
            head = reader(buf)
            if head is not None:
                split_target(head.target)
                parse_query(split_target(head.target)[1])
                break
    except ProtocolError as exc:
        assert 400 <= exc.status_hint < 600


@FAST
@given(st.binary(max_size=300))
def test_head_reader_and_chunked_decoder_on_raw_bytes(data):
    try:
        buf = bytearray(data)
        head = HeadReader(max_header_bytes=1024)(buf)
        if head is not None:
            split_target(head.target)
    except ProtocolError:
        pass
    buf = bytearray(data)
    dec = ChunkedDecoder(max_trailer_bytes=256)
    try:
        for _ in range(len(data) + 2):
            if dec.next_data(buf) in (None, b""):
                break
    except ProtocolError:
        pass


# --- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(server):
    import requests

    assert requests.post(f"{server.api}/b/fuzz", timeout=10).status_code in (200, 409)
    assert requests.post(f"{server.api}/b/fuzz/e?ts=1", data=b"x", timeout=10).status_code == 200
    return server


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while len(out) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out


def _alive(port: int) -> None:
    reply = _exchange(port, b"GET /api/v1/alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def _statuses(reply: bytes) -> list[int]:
    out = []
    for line in reply.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12 and line[9:12].isdigit():
            out.append(int(line[9:12]))
    return out


PATHS = ["/api/v1/b/fuzz/e", "/api/v1/b/fuzz/e/batch", "/api/v1/io/fuzz/write", "/api/v1/b/fuzz/e/q",
         "/api/v1/b/fuzz", "/api/v1/links/x.bin", "/api/v1/io/fuzz/read", "/api/v1/info", "/api/v1/b/%ff%fe/e",
         "/api/v1/b/fuzz/e?ts=2", "/api/v1/b/fuzz/e?ts=abc", "/api/v1/b/fuzz/e?q=99", "/api/v1/tokens/x"]
SERVER = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@SERVER
@given(st.binary(max_size=400))
def test_server_survives_junk_bytes(live, data):
    reply = _exchange(live.port, data)
    assert 500 not in _statuses(reply), reply[:300]
    _alive(live.port)


@SERVER
@given(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]), st.sampled_from(PATHS),
       st.lists(st.tuples(st.one_of(st.sampled_from(["x-reduct-time-1", "x-reduct-time-x", "x-reduct-label-a",
                                                     "x-reduct-entries", "x-reduct-start-ts", "x-reduct-0-0",
                                                     "x-reduct-labels", "content-type", "range", "x-reduct-ts",
                                                     "authorization", "if-range", "expect", "x-reduct-1-5"]),
                                     st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12)),
                           st.one_of(token_text, st.binary(max_size=20).map(lambda b: b.decode("latin-1")))),
                 max_size=6),
       st.binary(max_size=64))
def test_server_survives_random_header_sets(live, method, path, headers, body):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v.replace(chr(13), ' ').replace(chr(10), ' ')}" for k, v in headers]
    reply = _exchange(live.port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body)
    statuses = _statuses(reply)
    assert 500 not in statuses, reply[:400]
    _alive(live.port)


# --- atheris smoke run -----------------------------------------------------------------------


def test_atheris_smoke(tmp_path):
    """20,000 coverage-guided inputs spread over every target (atheris_fuzz.py ``all``), one
    process (start-up dominates); skipped without atheris."""
    import importlib.util
    import subprocess
    import sys

    from tests.helpers import ROOT

    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris); see tests/reliability/atheris_fuzz.py")
    out = subprocess.run([sys.executable, str(ROOT / "tests/reliability/atheris_fuzz.py"), "all",
                          "-runs=20000", "-timeout=5", f"-artifact_prefix={tmp_path}/"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
