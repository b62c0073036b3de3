"""Replication settings: parsing, spec texts, wire form, legacy filters, provisioning."""

from __future__ import annotations

import pytest

from edge.errors import ConfigError, InvalidInputError
from edge.query.when import compile_when
from edge.replication.settings import legacy_to_when, parse_env_replications, parse_settings, to_wire

BASE = {"src_bucket": "a", "dst_bucket": "b", "dst_host": "http://h:8383"}


class R:
    def __init__(self, ts, labels):
        self.ts_us, self.labels, self.computed = ts, labels, {}


def test_defaults_and_wire_hides_token():
    s = parse_settings({**BASE, "dst_token": "secret", "entries": None, "when": None})
    assert s.dst_token == "secret"
    assert to_wire(s) == {**BASE, "dst_token": None, "entries": [], "dst_prefix": "", "when": None,
                          "mode": "enabled", "compression": "none"}


def test_put_null_token_keeps_previous():
    old = parse_settings({**BASE, "dst_token": "t"})
    assert parse_settings({**BASE, "dst_token": None}, previous=old).dst_token == "t"


@pytest.mark.parametrize("doc,text", [
    ({"dst_bucket": "b", "dst_host": "http://h"}, "Invalid JSON: missing field `src_bucket`"),
    ({**BASE, "dst_host": "ftp://x"}, "Invalid destination host 'ftp://x'"),
    ({**BASE, "dst_host": "nothing"}, "Invalid destination host 'nothing'"),
    ({**BASE, "mode": "on"}, "Invalid JSON: unknown variant `on`, expected `enabled` or `paused` or `disabled`"),
    ({**BASE, "when": {"$nope": 1}}, "Invalid replication condition: Operator '$nope' not supported"),
])
def test_errors(doc, text):
    with pytest.raises(InvalidInputError) as exc:
        parse_settings(doc)
    assert exc.value.message == text


def test_dst_entry_prefix():
    assert parse_settings({**BASE, "dst_prefix": "/x/y/"}).dst_entry("e") == "x/y/e"
    assert parse_settings(BASE).dst_entry("e/f") == "e/f"


def test_legacy_filters_become_when():
    when = legacy_to_when({"k": "1"}, {"x": "bad"}, None, None, None)
    cond, _ = compile_when(when)
    assert cond.clone_fresh().evaluate(R(1, {"k": "1"}))
    assert not cond.clone_fresh().evaluate(R(1, {"k": "2"}))
    assert not cond.clone_fresh().evaluate(R(1, {"k": "1", "x": "bad"}))
    assert cond.clone_fresh().evaluate(R(1, {"k": "1", "x": "good"}))
    cond, _ = compile_when(legacy_to_when(None, None, 2, None, None))
    assert [cond.evaluate(R(i, {})) for i in range(4)] == [False, True, False, True]
    s = parse_settings({**BASE, "include": {"a": "b"}, "each_s": 1.5})
    assert "$and" in s.when


def test_env_provisioning():
    env = {"RS_REPLICATION_MY_ID_NAME": "rep", "RS_REPLICATION_MY_ID_SRC_BUCKET": "a",
           "RS_REPLICATION_MY_ID_DST_BUCKET": "b", "RS_REPLICATION_MY_ID_DST_HOST": "https://h",
           "RS_REPLICATION_MY_ID_ENTRIES": "x, y*", "RS_REPLICATION_MY_ID_MODE": "PAUSED",
           "RS_REPLICATION_MY_ID_WHEN": '{"&a": {"$gt": 1}}', "RS_REPLICATION_MY_ID_EXCLUDE_kind": "tmp"}
    s = parse_env_replications(env)["rep"]
    assert s.entries == ("x", "y*") and s.mode == "paused" and s.dst_host == "https://h"
    assert s.when["$and"][-1] == {"&a": {"$gt": 1}}
    with pytest.raises(ConfigError):
        parse_env_replications({"RS_REPLICATION_A_NAME": "r", "RS_REPLICATION_A_SRC_BUCKET": "a"})
