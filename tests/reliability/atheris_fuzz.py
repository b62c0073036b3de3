"""Coverage-guided fuzzing (atheris / libFuzzer) of the parsers that read untrusted bytes.

What it checks, and why: the same parsers as ``test_fuzz.py`` (batch header codecs v1/v2, the
``when`` compiler + evaluator, the link token decoder, name/label checks, the HTTP head parser and
chunked decoder), but driven by libFuzzer's coverage feedback, which finds inputs hypothesis'
structured strategies do not think of. Any exception other than the documented ones
(``EdgeError`` subclasses, ``ProtocolError``) is a crash and libFuzzer stops with the input;
``-timeout=`` bounds the time per input (a hang is a finding too).

Install and run (atheris 3.x wheels exist for CPython 3.11 on x86-64 Linux):

    pip install atheris
    python tests/reliability/atheris_fuzz.py all -runs=200000 -timeout=5      # every target
    python tests/reliability/atheris_fuzz.py when -max_total_time=600 corpus/  # one target, 10 min

Targets: ``batch_v1 batch_v2 when link names head chunked all``. libFuzzer flags after the target.
``test_fuzz.py::test_atheris_smoke`` runs each target for a few thousand inputs in CI when
atheris is installed, and is skipped otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from edge.errors import EdgeError
    from edge.formats import batch_v1, batch_v2
    from edge.formats import labels as label_codec
    from edge.server.protocol import ChunkedDecoder, HeadReader, ProtocolError, parse_query, split_target
    from edge.links.seal import seal, unseal
    from edge.query.when import compile_when
    from edge.store.bucket import check_bucket_name, check_entry_name

SECRET = b"s" * 32
GOOD = seal({"bucket": "b"}, SECRET)


def _headers(fdp: "atheris.FuzzedDataProvider", prefixes: list[str]) -> list[tuple[str, str]]:
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        prefix = prefixes[fdp.ConsumeIntInRange(0, len(prefixes) - 1)]
        out.append((prefix + fdp.ConsumeUnicodeNoSurrogates(12).lower(), fdp.ConsumeUnicodeNoSurrogates(60)))
    return out


def fuzz_batch_v1(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = _headers(fdp, ["x-reduct-time-", "x-reduct-", ""])
    for fn in (batch_v1.parse_record_headers, batch_v1.parse_record_timestamps):
        try:
            fn(headers)
        except EdgeError:
            pass


def fuzz_batch_v2(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = _headers(fdp, ["x-reduct-entries", "x-reduct-start-ts", "x-reduct-labels", "x-reduct-0-",
                             "x-reduct-1-", "x-reduct-", "x-reduct-error-0-"])
    for fn in (batch_v2.parse_write_headers, batch_v2.parse_update_headers, batch_v2.parse_remove_headers,
               batch_v2.parse_read_batch, batch_v2.parse_error_headers):
        try:
            fn(headers)
        except EdgeError:
            pass


class _Rec:
    ts_us = 1_700_000_000_000_000
    labels = {"a": "1", "b": "x", "c": "2.5"}
    computed = {"c": "1"}


def fuzz_when(data: bytes) -> None:
    try:
        obj = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return
    if not isinstance(obj, dict):
        obj = {"&a": obj}
    for strict in (False, True):
        try:
            cond, _ = compile_when(obj, strict=strict)
            if cond is not None:
                cond.evaluate(_Rec())
        except EdgeError:
            pass
        except RecursionError:
            pass  # json.loads itself nests only so deep; a deeper tree is the json module's limit


def fuzz_link(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    parts = [GOOD.ct, GOOD.s, GOOD.n]
    i = fdp.ConsumeIntInRange(0, 2)
    if fdp.ConsumeBool():
        parts[i] = fdp.ConsumeUnicodeNoSurrogates(150)
    else:
        raw = bytearray(parts[i].encode())
        if raw:
            raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] = fdp.ConsumeIntInRange(32, 126)
        parts[i] = raw.decode()
    try:
        unseal(*parts, SECRET)
    except EdgeError:
        pass


def fuzz_names(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for fn in (check_bucket_name, check_entry_name, label_codec.decode_name, batch_v2.decode_entry_name):
        try:
            fn(text)
        except EdgeError:
            pass
    for require_eq in (False, True):
        try:
            label_codec.split_label_items(text, require_eq=require_eq)
        except EdgeError:
            pass


def fuzz_head(data: bytes) -> None:
    reader = HeadReader(max_header_bytes=2048, max_header_count=32, max_request_line=512)
    buf = bytearray()
    try:
        for k in range(0, len(data), 7):  # dribbled in, as from a socket
            buf += data[k:k + 7]
            head = reader(buf)
            if head is not None:
                path, query = split_target(head.target)
                parse_query(query)
                break
    except ProtocolError:
        pass


def fuzz_chunked(data: bytes) -> None:
    buf = bytearray(data)
    dec = ChunkedDecoder(max_trailer_bytes=512)
    try:
        for _ in range(len(data) + 2):
            if dec.next_data(buf, 64) in (None, b""):
                break
    except ProtocolError:
        pass


TARGETS = {"batch_v1": fuzz_batch_v1, "batch_v2": fuzz_batch_v2, "when": fuzz_when, "link": fuzz_link,
           "names": fuzz_names, "head": fuzz_head, "chunked": fuzz_chunked}


def fuzz_all(data: bytes) -> None:
    if not data:
        return
    TARGETS[sorted(TARGETS)[data[0] % len(TARGETS)]](data[1:])


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {*TARGETS, "all"}:
        print(__doc__)
        sys.exit(2)
    target = fuzz_all if sys.argv[1] == "all" else TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
