"""edge.links.tar: names, exact lengths, tarfile compatibility, slicing for Range."""

from __future__ import annotations

import io
import tarfile

import pytest

from edge.links import tar as T
from edge.links.rules import plan_range


def test_ext_for():
    assert T.ext_for("application/octet-stream") == "bin"
    assert T.ext_for("text/plain; charset=utf-8") == "txt"
    assert T.ext_for("IMAGE/JPEG") == "jpg"
    assert T.ext_for("application/json") == "json"
    assert T.ext_for("application/pdf") == "pdf"          # from the built-in mimetypes table
    assert T.ext_for("x-unknown/whatever") == "bin"
    assert T.ext_for("") == "bin"


def test_member_name():
    assert T.member_name("cam/front", 1700000000123456, "image/jpeg") == "cam/front/1700000000123456.jpg"
    for bad in ("", "/abs", "a/../b", "..", "a//b", "./a"):
        with pytest.raises(ValueError):
            T.member_name(bad, 1, "text/plain")


def _members(contents, names):
    return [T.Member(n, len(c), mtime=1_700_000_000 + i) for i, (n, c) in enumerate(zip(names, contents))]


def test_archive_opens_with_tarfile_and_length_is_exact():
    contents = [b"", b"x" * 511, b"y" * 512, b"z" * 513, bytes(range(256)) * 20]
    names = ["e/1.bin", "e/2.txt", "deep/" + "n" * 150 + "/3.json", "ünï/4.jpg", "e/5.bin"]
    layout = T.TarLayout(_members(contents, names))
    blob = layout.render(contents)
    assert len(blob) == layout.total and layout.total % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        got = [(m.name, tf.extractfile(m).read(), m.mtime, m.mode) for m in tf.getmembers()]
    assert [(n, c) for n, c, _, _ in got] == list(zip(names, contents))
    assert got[0][2] == 1_700_000_000 and got[0][3] == 0o644
    assert layout.render(contents) == blob                  # deterministic


def test_empty_archive():
    layout = T.TarLayout([])
    assert layout.total == 1024 and layout.render([]) == b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(layout.render([]))) as tf:
        assert tf.getmembers() == []


def test_slices_reassemble_any_range():
    contents = [b"a" * 700, b"b" * 10, b"c" * 1500]
    layout = T.TarLayout(_members(contents, ["e/1.bin", "e/2.bin", "e/3.bin"]))
    blob = layout.render(contents)

    def read(start, end):
        return b"".join(p if isinstance(p, bytes) else contents[p.index][p.offset:p.offset + p.length]
                        for p in layout.slice(start, end))

    for start, end in [(0, 0), (0, layout.total - 1), (511, 513), (600, 1300), (layout.total - 5, layout.total - 1)]:
        assert read(start, end) == blob[start:end + 1]
    plan = plan_range("bytes=1000-", layout.total)
    span = plan.spans[0]
    assert read(span.start, span.end) == blob[1000:]
    with pytest.raises(ValueError):
        list(layout.slice(0, layout.total))
