"""edge/formats/metadata.py: the one set of rules for stored names and record metadata."""

from __future__ import annotations

import pytest

from edge.errors import InvalidInputError
from edge.formats import metadata as md


@pytest.mark.parametrize("name", ["a", "cam-1", "A_b-9", "x" * 255])
def test_good_bucket_names(name):
    md.check_bucket_name(name)


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a\n", "bucket\n", "é", "x" * 256, "a.b"])
def test_bad_bucket_names(name):
    with pytest.raises(InvalidInputError):
        md.check_bucket_name(name)


@pytest.mark.parametrize("name", ["e", "a/b/c", "a/$meta", "$meta", "/".join(["s" * 255] * 4)])
def test_good_entry_names(name):
    md.check_entry_name(name)


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a\nb", "e\n", "s" * 256, "a/" + "s" * 256,
                                  "/".join(["s" * 200] * 6)])
def test_bad_entry_names(name):
    with pytest.raises(InvalidInputError):
        md.check_entry_name(name)


def test_entry_name_length_errors_name_the_limit():
    with pytest.raises(InvalidInputError, match="too long"):
        md.check_entry_name("e" * 5000)
    with pytest.raises(InvalidInputError, match="too long"):
        md.check_bucket_name("b" * 300)


@pytest.mark.parametrize("name", ["", "a b", "a\r\nx-evil", "a\x00", "caf\xe9", "a/b", "@x", "a:b", "k" * 257])
def test_bad_label_names(name):
    with pytest.raises(InvalidInputError):
        md.check_labels({name: "v"})


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "a\rb", "\x00", "a\x7f", "a\x1bb", " lead",
                                   "trail ", "v" * (16 * 1024 + 1)])
def test_bad_label_values(value):
    with pytest.raises(InvalidInputError) as exc:
        md.check_labels({"k": value})
    assert "\r" not in exc.value.message and "\n" not in exc.value.message


def test_good_labels_and_content_types():
    md.check_record_metadata("text/plain; charset=utf-8", {"kind": "jpeg", "score": "0.9", "note": "é ü\tx",
                                                          "Camera.Front_1": "a,b=c"})
    for bad in ("", "text/plain\r\nx: 1", "t\x00", "é/x", " text/plain", "t" * 257):
        with pytest.raises(InvalidInputError):
            md.check_content_type(bad)


def test_label_update_checks_names_and_total_size():
    md.check_label_update({"a": "1"}, {"a": "", "b": "2"})  # "" removes
    with pytest.raises(InvalidInputError):
        md.check_label_update({}, {"a\nb": "1"})
    with pytest.raises(InvalidInputError):
        md.check_label_update({}, {"a": "x\r\n"})
    big = {f"k{i}": "v" * 16000 for i in range(32)}
    md.check_label_update({}, dict(list(big.items())[:31]))
    with pytest.raises(InvalidInputError, match="too large"):
        md.check_label_update(dict(list(big.items())[:31]), {"k31": "v" * 16000, "k32": "v" * 16000})


def test_file_names():
    md.check_file_name("clip.mp4")
    md.check_file_name("résumé (1).pdf")
    md.check_file_name("dir/clip.mp4", path_ok=True)
    for bad in ("", ".", "..", "a/b", "a\\b", "a\r\nb", "a\x00", "é" * 128):
        with pytest.raises(InvalidInputError):
            md.check_file_name(bad)


def test_file_names_refuse_bidi_and_c1_controls():
    for bad in ("evil\u202egnp.exe", "a\u2066b", "a\u200fb", "a\x85b", "a\x9bb"):
        with pytest.raises(InvalidInputError, match="control"):
            md.check_file_name(bad)
    md.check_file_name("emoji \U0001F600.png")


@pytest.mark.parametrize("raw", ["a/b/c.bin", "C:\\Users\\me\\x.txt", 'x"y\r\nSet-Cookie: a.bin',
                                 "evil\u202egnp.exe", ".hidden", "é" * 300 + ".tar", "x" * 500,
                                 "\u200b\u200dname", "ok name.pdf"])
def test_a_sanitized_name_always_passes_the_stored_name_rule(raw):
    safe = md.sanitize_filename(raw)
    md.check_file_name(safe)
    assert len(safe) <= md.MAX_FILENAME_CHARS and len(safe.encode()) <= md.MAX_FILE_NAME_BYTES


def test_a_long_name_is_cut_to_255_bytes_keeping_its_extension():
    safe = md.sanitize_filename("é" * 300 + ".tar")
    assert safe.endswith(".tar") and len(safe.encode()) <= 255 and len(safe) > 100


def test_media_types_for_uploaded_files():
    for good in ("image/png", 'text/plain; charset="utf-8"', "application/vnd.api+json"):
        md.check_media_type(good)
    for bad in ("png", "image/png extra", "text/plain; charset", "a/b\r\nx: y", "a/" + "b" * 300,
                "image/pn(g"):
        with pytest.raises(InvalidInputError, match="type/subtype"):
            md.check_media_type(bad)


def test_read_side_filters_leave_out_what_a_head_cannot_carry():
    stored = {"ok": "v", "bad\r\nname": "v", "crlf": "a\r\nx-evil: 1", "sp ace": "v", "nul": "\x00"}
    assert list(md.readable_labels(stored)) == [("ok", "v")]
    assert md.readable_content_type("text/plain\r\nx: 1") == "application/octet-stream"
    assert md.readable_content_type("image/png") == "image/png"
