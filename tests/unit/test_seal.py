"""edge.links.seal: the token format, its strict codec and the spec's error texts."""

from __future__ import annotations

import base64
import os

import pytest

from edge.errors import LinkInvalidError
from edge.links import keys, seal as S

KEY = bytes(range(32))


def test_round_trip_and_randomised_output():
    payload = {"bucket": "b", "query": {"query_type": "QUERY", "start": 1}, "name": "ünï"}
    a = S.seal(payload, KEY, associated=b"issuer")
    b = S.seal(payload, KEY, associated=b"issuer")
    assert a.ct != b.ct and a.s != b.s and a.n != b.n       # fresh salt and nonce every time
    assert S.unseal(a.ct, a.s, a.n, KEY, associated=b"issuer") == payload
    for part in (a.ct, a.s, a.n):
        assert "=" not in part and "+" not in part and "/" not in part


def test_deterministic_with_given_salt_and_nonce():
    salt, nonce = b"s" * 16, b"n" * 16
    assert S.seal({"x": 1}, KEY, salt=salt, nonce=nonce) == S.seal({"x": 1}, KEY, salt=salt, nonce=nonce)


def test_wrong_key_wrong_issuer_and_flipped_byte():
    box = S.seal({"x": 1}, KEY, associated=b"i")
    with pytest.raises(LinkInvalidError, match=r"^Failed to decrypt query: "):
        S.unseal(box.ct, box.s, box.n, os.urandom(32), associated=b"i")
    with pytest.raises(LinkInvalidError, match=r"^Failed to decrypt query: "):
        S.unseal(box.ct, box.s, box.n, KEY, associated=b"other")
    raw = bytearray(S.decode_b64(box.ct, "ct"))
    raw[-1] ^= 1
    with pytest.raises(LinkInvalidError, match=r"^Failed to decrypt query: "):
        S.unseal(S.encode_b64(bytes(raw)), box.s, box.n, KEY, associated=b"i")


@pytest.mark.parametrize("param", ["ct", "s", "n"])
@pytest.mark.parametrize("bad", ["ab=", "a+b/", "a b", "abcde", "é"])
def test_bad_base64_names_the_parameter(param, bad):
    box = S.seal({"x": 1}, KEY)
    args = {"ct": box.ct, "s": box.s, "n": box.n, param: bad}
    with pytest.raises(LinkInvalidError, match=rf"^Invalid base64 in '{param}' parameter: "):
        S.unseal(args["ct"], args["s"], args["n"], KEY)


def test_non_canonical_trailing_bits_refused():
    # 16 bytes -> 22 chars whose last char carries 4 unused bits: flipping one is the same bytes.
    good = S.encode_b64(b"\x00" * 16)
    assert good.endswith("A")
    with pytest.raises(LinkInvalidError, match="non-canonical"):
        S.decode_b64(good[:-1] + "B", "s")


def test_length_checks_before_decrypt():
    box = S.seal({"x": 1}, KEY)
    with pytest.raises(LinkInvalidError, match="invalid salt length"):
        S.unseal(box.ct, S.encode_b64(b"x" * 8), box.n, KEY)
    with pytest.raises(LinkInvalidError, match="invalid nonce length"):
        S.unseal(box.ct, box.s, S.encode_b64(b"x" * 8), KEY)
    with pytest.raises(LinkInvalidError, match="too short"):
        S.unseal(box.ct[:20], box.s, box.n, KEY)


def test_kdf_is_injected_and_used():
    calls = []

    def kdf(secret, salt):
        calls.append(salt)
        return (secret * 2)[:64]

    box = S.seal({"x": 1}, KEY, kdf=kdf)
    assert S.unseal(box.ct, box.s, box.n, KEY, kdf=kdf) == {"x": 1}
    assert len(calls) == 2
    with pytest.raises(LinkInvalidError):
        S.unseal(box.ct, box.s, box.n, KEY)                  # default HKDF gives another key
    slow = S.scrypt_kdf(n=2**4, r=1, p=1)
    box = S.seal({"y": 2}, b"low entropy", kdf=slow)
    assert S.unseal(box.ct, box.s, box.n, b"low entropy", kdf=slow) == {"y": 2}


def test_authenticated_but_bad_content_gives_decompress_and_parse_errors():
    from Crypto.Cipher import AES
    import zlib

    def forge(body: bytes):
        salt, nonce = b"s" * 16, b"n" * 16
        c = AES.new(S.hkdf_kdf(KEY, salt), AES.MODE_SIV, nonce=nonce)
        c.update(b"")
        ct, tag = c.encrypt_and_digest(body)
        return S.encode_b64(tag + ct), S.encode_b64(salt), S.encode_b64(nonce)

    with pytest.raises(LinkInvalidError, match=r"^Failed to decompress query: "):
        S.unseal(*forge(b"not zlib"), KEY)
    with pytest.raises(LinkInvalidError, match=r"^Failed to parse query: "):
        S.unseal(*forge(zlib.compress(b"{nope")), KEY)
    with pytest.raises(LinkInvalidError, match=r"^Failed to parse query: "):
        S.unseal(*forge(zlib.compress(b"[1]")), KEY)
    with pytest.raises(LinkInvalidError, match=r"^Failed to decompress query: "):
        S.unseal(*forge(zlib.compress(b"{}")[:-2]), KEY)
    with pytest.raises(LinkInvalidError, match="payload too large"):
        S.unseal(*forge(zlib.compress(b" " * (S.MAX_PLAIN_BYTES + 10))), KEY)


def test_token_digest_is_stable_and_not_the_token():
    box = S.seal({"x": 1}, KEY)
    assert S.token_digest(box.ct) == S.token_digest(box.ct)
    assert box.ct not in S.token_digest(box.ct) and len(S.token_digest(box.ct)) == 64


def test_server_key_created_once_0600_and_redacted(tmp_path, caplog):
    k1 = keys.load_or_create(tmp_path)
    path = tmp_path / ".edge" / "link.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(k1.material) == 32
    assert keys.load_or_create(tmp_path).material == k1.material       # stable across restarts
    assert k1.material.hex() not in repr(k1) and k1.material.hex() not in str(k1)
    assert repr(k1.material) not in repr(k1)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_server_key_perms_tightened_and_damage_set_aside(tmp_path):
    first = keys.load_or_create(tmp_path)
    path = tmp_path / ".edge" / "link.key"
    path.chmod(0o644)
    assert keys.load_or_create(tmp_path).material == first.material
    assert path.stat().st_mode & 0o777 == 0o600
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x40                                        # one rotten bit of key material
    path.write_bytes(bytes(raw))
    second = keys.load_or_create(tmp_path)
    assert second.damage is not None and second.damage.kept_as.read_bytes() == bytes(raw)
    assert second.material != first.material and second.replaced_at is not None
    assert first.material.hex() not in second.damage.describe()
    assert keys.load_or_create(tmp_path).material == second.material   # the new key is kept


def test_server_key_of_the_previous_version_is_sealed_in_place(tmp_path):
    path = tmp_path / ".edge" / "link.key"
    path.parent.mkdir(parents=True)
    old = os.urandom(32)
    path.write_bytes(old)                                   # what the previous version wrote
    key = keys.load_or_create(tmp_path)
    assert key.material == old and key.damage is None
    assert path.read_bytes().startswith(b"edge-state 1 ") and path.read_bytes().endswith(old)


def test_server_key_race_keeps_the_first(tmp_path):
    path = tmp_path / ".edge" / "link.key"
    path.parent.mkdir(parents=True)
    first = os.urandom(32)
    path.write_bytes(first)
    keys._create(path)          # a second creator losing the race must not clobber it
    assert path.read_bytes() == first


def test_standard_base64_with_padding_refused():
    box = S.seal({"x": "y" * 50}, KEY)
    raw = S.decode_b64(box.ct, "ct")
    std = base64.b64encode(raw).decode()
    if std != box.ct:
        with pytest.raises(LinkInvalidError, match="Invalid base64 in 'ct'"):
            S.unseal(std, box.s, box.n, KEY)
