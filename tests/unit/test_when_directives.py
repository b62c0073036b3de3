"""Directives of `when` (spec §10.6): the top-level `#` keys."""

import pytest

from edge.errors import InvalidInputError
from edge.query.when import Directives, Duration, compile_when, parse_size


def directives(obj):
    return compile_when(obj)[1]


def test_defaults_are_none():
    assert directives({}) == Directives()
    assert all(v is None for v in vars(Directives()).values())


def test_all_directives_parse():
    got = directives({
        "#ctx_before": 3, "#ctx_after": "5s", "#select_labels": ["a", "b"], "#batch_size": "1MB",
        "#batch_records": 10, "#batch_metadata_size": 2048, "#batch_timeout": 2,
        "#record_timeout": "500ms", "#io_timeout": 1.5, "#ext": {"x": {}},
    })
    assert got == Directives(
        ctx_before=3, ctx_after=Duration(5_000_000), select_labels=("a", "b"), batch_size=1_000_000,
        batch_records=10, batch_metadata_size=2048, batch_timeout_s=2.0, record_timeout_s=0.5,
        io_timeout_s=1.5, ext={"x": {}},
    )


def test_directives_do_not_become_conditions():
    cond, got = compile_when({"#batch_records": 1, "&a": {"$eq": 1}})
    assert got.batch_records == 1 and len(cond._expressions) == 1


@pytest.mark.parametrize(
    "text, size",
    [("1MB", 10**6), ("1mb", 10**6), ("1 KiB", 1024), ("2GB", 2 * 10**9), ("10", 10), ("10B", 10),
     ("1.5KB", 1500), ("1MiB", 2**20)],
)
def test_size_strings(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "obj, text",
    [
        ({"#nope": 1}, "Directive '#nope' is not supported"),
        ({"#batch_size": None}, "Directive '#batch_size' cannot be null"),
        ({"#ctx_before": -1}, "#ctx_before must be non-negative"),
        ({"#ctx_after": "-1s"}, "#ctx_after must be non-negative"),
        ({"#ctx_before": "soon"}, "#ctx_before must be an integer or a duration"),
        ({"#ctx_before": True}, "#ctx_before must be an integer or a duration"),
        ({"#select_labels": []}, "#select_labels must contain at least one label"),
        ({"#select_labels": "a"}, "#select_labels must be an array of strings"),
        ({"#select_labels": ["a", 1]}, "#select_labels must be an array of strings"),
        ({"#batch_size": "lots"}, "#batch_size must be an integer or a size string (e.g. '1MB')"),
        ({"#batch_size": -1}, "#batch_size must be non-negative"),
        ({"#batch_metadata_size": 1.5}, "#batch_metadata_size must be an integer or a size string (e.g. '1MB')"),
        ({"#batch_records": 0}, "#batch_records must be positive"),
        ({"#batch_records": "3"}, "#batch_records must be an integer"),
        ({"#batch_timeout": "x"}, "#batch_timeout must be a number of seconds or a duration"),
        ({"#record_timeout": -1}, "#record_timeout must be non-negative"),
        ({"#io_timeout": [1]}, "#io_timeout must be a number of seconds or a duration"),
        ({"#ext": 1}, "#ext must be an object or an array of objects"),
        ({"#ext": [{}, 1]}, "#ext must be an object or an array of objects"),
    ],
)
def test_directive_errors(obj, text):
    with pytest.raises(InvalidInputError) as info:
        compile_when(obj)
    assert info.value.message == text
