"""Entry selection patterns of io queries (spec §9.3, 1.21 globs and exclusions)."""

from __future__ import annotations

import pytest

from edge.formats.metadata import is_meta_entry as is_meta
from edge.query.select import select_entries

NAMES = ["a", "a/$meta", "cam-1", "cam-2", "cam-1/raw", "cam-1/raw/deep", "cam-2/raw", "logs", "$meta", "x/y/z"]


@pytest.mark.parametrize("patterns,expected", [
    (None, ["a", "cam-1", "cam-1/raw", "cam-1/raw/deep", "cam-2", "cam-2/raw", "logs", "x/y/z"]),
    (["*"], ["a", "cam-1", "cam-1/raw", "cam-1/raw/deep", "cam-2", "cam-2/raw", "logs", "x/y/z"]),
    (["logs", "*"], ["a", "cam-1", "cam-1/raw", "cam-1/raw/deep", "cam-2", "cam-2/raw", "logs", "x/y/z"]),
    (["a"], ["a"]),
    (["a/$meta"], ["a/$meta"]),                           # $meta only by its exact name
    (["$meta"], ["$meta"]),
    (["cam-*"], ["cam-1", "cam-1/raw", "cam-1/raw/deep", "cam-2", "cam-2/raw"]),   # 1.20 prefix
    (["cam-*/raw"], ["cam-1/raw", "cam-2/raw"]),          # * stays inside one segment
    (["cam-1/*"], ["cam-1/raw"]),
    (["cam-1/**"], ["cam-1/raw", "cam-1/raw/deep"]),      # ** spans segments
    (["**/raw"], ["cam-1/raw", "cam-2/raw"]),
    (["x/**/z"], ["x/y/z"]),
    (["a/*"], []),                                        # globs never reach $meta
    (["/logs"], ["logs"]),                                # leading / ignored
    (["cam-*", "!cam-2*"], ["cam-1", "cam-1/raw", "cam-1/raw/deep"]),
    (["!cam-*"], ["a", "logs", "x/y/z"]),                 # only exclusions: all but these
    (["nope"], []),
    ([], []),
])
def test_select(patterns, expected):
    assert select_entries(patterns, NAMES) == expected


def test_is_meta():
    assert is_meta("$meta") and is_meta("a/b/$meta")
    assert not is_meta("a$meta") and not is_meta("$meta/x")
