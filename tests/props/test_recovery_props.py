from hypothesis import given, settings
from hypothesis import strategies as st

from edge.formats.frame import encode_frame
from edge.formats.recovery import scan

records = st.lists(st.tuples(st.binary(max_size=40), st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(records)
def test_truncation_at_every_offset_keeps_whole_frames(recs):
    frames = [encode_frame(i, p, "ct", lab) for i, (p, lab) in enumerate(recs)]
    data = b"".join(frames)
    ends = []
    pos = 0
    for f in frames:
        pos += len(f)
        ends.append(pos)
    for cut in range(len(data) + 1):
        plan = scan(data[:cut])
        whole = [e for e in ends if e <= cut]
        assert len(plan.frames) == len(whole)
        assert plan.good_end == (whole[-1] if whole else 0)
        assert plan.torn_bytes == cut - plan.good_end
