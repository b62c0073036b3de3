from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import CorruptRecordError
from edge.formats.frame import NEED_MORE, decode_frame, decode_meta, encode_frame

labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4)


@given(st.integers(0, 2**63 - 1), st.binary(max_size=300), st.text(max_size=20), labels)
def test_roundtrip(ts, payload, ct, lab):
    data = encode_frame(ts, payload, ct, lab)
    f = decode_frame(data)
    assert f.head.ts_us == ts and decode_meta(f.head.meta) == (ct, lab)
    assert data[f.payload_offset : f.payload_offset + len(payload)] == payload


@settings(max_examples=200)
@given(st.binary(min_size=0, max_size=64), labels, st.data())
def test_flipped_byte_never_good(payload, lab, data):
    frame = bytearray(encode_frame(42, payload, "t", lab))
    pos = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    frame[pos] ^= 1 << bit
    try:
        got = decode_frame(bytes(frame))
    except CorruptRecordError:
        return
    # a flip in a length field may make the frame look incomplete; it must never decode as good
    assert got is NEED_MORE
