"""Properties of the share-link core: tokens refuse every alteration, Range plans serve the right
bytes and never raise, tar archives round-trip, the registry persists without secrets in clear."""

from __future__ import annotations

import base64
import io
import os
import tarfile
import tempfile

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from edge.errors import LinkInvalidError
from edge.links import registry as G, rules as R, tar as T
from edge.links.seal import decode_b64, encode_b64, seal, unseal

KEY = os.urandom(32)
FAST = R.PasswordParams(n=2**4, r=1, p=1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


def _raises(ct, s, n, key=KEY, ad=b"i"):
    try:
        unseal(ct, s, n, key, associated=ad)
    except LinkInvalidError:
        return True
    return False


@given(payloads, st.binary(max_size=20))
def test_round_trip(payload, ad):
    box = seal(payload, KEY, associated=ad)
    assert unseal(box.ct, box.s, box.n, KEY, associated=ad) == payload


@given(payloads, st.data())
def test_any_changed_token_is_refused(payload, data):
    box = seal(payload, KEY, associated=b"i")
    which = data.draw(st.sampled_from(["ct", "s", "n"]))
    value = getattr(box, which)
    pos = data.draw(st.integers(0, len(value) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=."
    repl = data.draw(st.sampled_from(alphabet))
    assume(repl != value[pos])
    changed = value[:pos] + repl + value[pos + 1:]
    args = {"ct": box.ct, "s": box.s, "n": box.n, which: changed}
    assert _raises(args["ct"], args["s"], args["n"])


@given(payloads, st.sampled_from(["ct", "s", "n"]), st.integers(1, 40))
def test_truncated_or_extended_token_is_refused(payload, which, cut):
    box = seal(payload, KEY, associated=b"i")
    value = getattr(box, which)
    for changed in (value[:max(0, len(value) - cut)], value + "A" * cut):
        args = {"ct": box.ct, "s": box.s, "n": box.n, which: changed}
        assert _raises(args["ct"], args["s"], args["n"])


@given(payloads, st.sampled_from(["ct", "s", "n"]), st.sampled_from(["std", "pad", "std+pad"]))
def test_re_encoded_token_is_refused(payload, which, how):
    box = seal(payload, KEY, associated=b"i")
    raw = decode_b64(getattr(box, which), which)
    enc = base64.b64encode(raw).decode() if "std" in how else base64.urlsafe_b64encode(raw).decode()
    if "pad" not in how:
        enc = enc.rstrip("=")
    assume(enc != getattr(box, which))          # identical strings are the same token
    args = {"ct": box.ct, "s": box.s, "n": box.n, which: enc}
    assert _raises(args["ct"], args["s"], args["n"])


@given(payloads)
def test_wrong_key_or_issuer_is_refused(payload):
    box = seal(payload, KEY, associated=b"i")
    assert _raises(box.ct, box.s, box.n, key=os.urandom(32))
    assert _raises(box.ct, box.s, box.n, ad=b"j")


@given(st.text(max_size=60))
def test_arbitrary_strings_never_crash_decoding(s):
    try:
        raw = decode_b64(s, "ct")
    except LinkInvalidError:
        return
    assert encode_b64(raw) == s                 # accepted strings are canonical


range_item = st.one_of(
    st.tuples(st.integers(0, 3000), st.none()).map(lambda t: f"{t[0]}-"),
    st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(lambda t: f"{min(t)}-{max(t)}"),
    st.integers(0, 3000).map(lambda n: f"-{n}"))
range_headers = st.one_of(
    st.lists(range_item, min_size=1, max_size=6).map(lambda xs: "bytes=" + ",".join(xs)),
    st.text(max_size=40),
    st.text(alphabet="bytes=0123456789-, \t", max_size=30))


@given(range_headers, st.binary(max_size=2000))
def test_range_plan_never_raises_and_serves_the_right_bytes(header, data):
    plan = R.plan_range(header, len(data), boundary="BOUNDARY")
    assert plan.status in (200, 206, 416)
    body = plan.apply(data)
    assert len(body) == plan.content_length
    if plan.status == 200:
        assert body == data
    elif plan.status == 416:
        assert body == b"" and plan.headers == (("Content-Range", f"bytes */{len(data)}"),)
    elif plan.boundary is None:
        (span,) = plan.spans
        assert body == data[span.start:span.end + 1]
        assert plan.headers == (("Content-Range", f"bytes {span.start}-{span.end}/{len(data)}"),)
    else:
        pieces = list(plan.pieces())
        for i, span in enumerate(plan.spans):
            assert pieces[2 * i + 1] == span
            assert f"Content-Range: bytes {span.start}-{span.end}/{len(data)}".encode() in pieces[2 * i]
        assert all(a.end + 1 < b.start for a, b in zip(plan.spans, plan.spans[1:]))   # merged, sorted


@given(st.lists(range_item, min_size=1, max_size=6), st.binary(min_size=1, max_size=2000))
def test_every_satisfiable_requested_range_is_served(items, data):
    plan = R.plan_range("bytes=" + ",".join(items), len(data), boundary="B")
    served = set()
    for span in plan.spans:
        served.update(range(span.start, span.end + 1))
    for item in items:
        first, _, last = item.partition("-")
        if first == "":
            a, b = max(0, len(data) - int(last)), len(data) - 1
            if int(last) == 0:
                continue
        else:
            a, b = int(first), min(int(last), len(data) - 1) if last else len(data) - 1
            if a >= len(data):
                continue
        assert plan.status == 206 and set(range(a, b + 1)) <= served


names = st.lists(st.text(alphabet="abcdé_-", min_size=1, max_size=12), min_size=1, max_size=3).map("/".join)


@settings(max_examples=50)
@given(st.lists(st.tuples(names, st.binary(max_size=1500)), max_size=6, unique_by=lambda t: t[0]))
def test_tar_round_trip(items):
    members = [T.Member(f"{n}/{i}.bin", len(c), mtime=i) for i, (n, c) in enumerate(items)]
    contents = [c for _, c in items]
    layout = T.TarLayout(members)
    blob = layout.render(contents)
    assert len(blob) == layout.total
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        got = [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]
    assert got == [(m.name, c) for m, c in zip(members, contents)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["1.1.1.1", "2.2.2.2"]), st.booleans(), st.integers(0, 700)),
                max_size=12), st.text(min_size=4, max_size=20), st.integers(1, 4))
def test_registry_persists_counters_and_keeps_no_secret(events, password, max_downloads):
    key = os.urandom(32)
    password = "PW#" + password
    with tempfile.TemporaryDirectory() as d:
        now = 1_700_000_000.0
        reg = G.LinkRegistry(d, key=key, password_params=FAST)
        box = seal({"q": password}, key)
        rec = reg.create(token=box.ct, file_name="f.bin", bucket="b", entry="e", record_entry="e", record_ts=1,
                         expire_at=int(now) + 10**6, creator="c", max_downloads=max_downloads,
                         password=password, url_params={"ct": box.ct})
        t = now
        for client, partial, dt in events:
            t += dt
            try:
                reg.record_download(rec.id, client, 1, "bytes=0-" if partial else None, partial=partial, now=t)
            except Exception as exc:            # only the uniform answer, and only when used up
                assert str(exc) == R.UNIFORM_NOT_FOUND
                assert reg.get(rec.id).downloads == max_downloads
        before = reg.get(rec.id)
        assert before.downloads <= max_downloads
        again = G.LinkRegistry(d, key=key)
        assert again.get(rec.id) == before
        blob = b"".join(p.read_bytes() for p in again.dir.iterdir())
        assert box.ct.encode() not in blob
        # "PW#" cannot occur in our JSON otherwise (base64 and hex have no '#'); neither may the password
        assert b"PW#" not in blob and password.encode() not in blob
