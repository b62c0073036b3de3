"""edge/services/provisioning.py without a server: RS_BUCKET_* parsing and applying, the throttle
limits, and the token access-time saver under pytest-trio's ``autojump_clock``."""

from __future__ import annotations

import pytest
import trio

from edge.errors import ConfigError
from edge.model import BucketSettings, QuotaType
from edge.services.provisioning import (
    auth_throttle,
    parse_env_buckets,
    provision_buckets,
    save_access_times_forever,
)
from edge.store import Engine

DEFAULTS = BucketSettings(max_block_size=64_000_000, max_block_records=1024)


def test_parse_groups_by_id_and_fills_defaults():
    env = {
        "RS_BUCKET_1_NAME": "alpha",
        "RS_BUCKET_1_QUOTA_TYPE": "fifo",
        "RS_BUCKET_1_QUOTA_SIZE": "1MB",
        "RS_BUCKET_MY_DATA_NAME": "beta",  # an ID may contain underscores
        "RS_BUCKET_MY_DATA_MAX_BLOCK_SIZE": "1KiB",
        "RS_BUCKET_MY_DATA_MAX_BLOCK_RECORDS": "16",
        "RS_DEFAULTS_BUCKET_QUOTA_TYPE": "HARD",  # not a bucket group
        "RS_TOKEN_1_NAME": "t",
    }
    out = parse_env_buckets(env, DEFAULTS)
    assert out == {
        "alpha": DEFAULTS.merged(quota_type=QuotaType.FIFO, quota_size=1_000_000),
        "beta": DEFAULTS.merged(max_block_size=1024, max_block_records=16),
    }


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_QUOTA_TYPE": "SOMETIMES"}, "RS_BUCKET_A_QUOTA_TYPE"),
        ({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_QUOTA_SIZE": "lots"}, "RS_BUCKET_A_QUOTA_SIZE"),
        ({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_MAX_BLOCK_SIZE": "0"}, "RS_BUCKET_A_MAX_BLOCK_SIZE"),
        ({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_MAX_BLOCK_RECORDS": "0"}, "RS_BUCKET_A_MAX_BLOCK_RECORDS"),
        ({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_MAX_BLOCK_RECORDS": "x"}, "RS_BUCKET_A_MAX_BLOCK_RECORDS"),
        ({"RS_BUCKET_A_NAME": "bad name!"}, "RS_BUCKET_A_NAME"),
        ({"RS_BUCKET_A_NAME": "$system"}, "RS_BUCKET_A_NAME"),
        ({"RS_BUCKET_A_QUOTA_SIZE": "1MB"}, "RS_BUCKET_A_NAME"),  # settings without a name: a typo
        ({"RS_BUCKET_A_NAME": "x", "RS_BUCKET_B_NAME": "x"}, "RS_BUCKET_B_NAME"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        parse_env_buckets(env, DEFAULTS)
    assert variable in str(info.value)


def test_empty_variables_mean_unset():
    assert parse_env_buckets({"RS_BUCKET_A_NAME": "a", "RS_BUCKET_A_QUOTA_SIZE": ""}, DEFAULTS) == {"a": DEFAULTS}
    assert parse_env_buckets({"RS_BUCKET_A_NAME": "  "}, DEFAULTS) == {}


def test_provision_creates_overwrites_and_unflags(tmp_path):
    engine = Engine.open(tmp_path, defaults=DEFAULTS)
    try:
        engine.create_bucket("old", DEFAULTS.merged(quota_type=QuotaType.HARD, quota_size=5))
        lines = provision_buckets(engine, {"RS_BUCKET_1_NAME": "new", "RS_BUCKET_1_QUOTA_SIZE": "10",
                                           "RS_BUCKET_2_NAME": "old", "RS_BUCKET_2_MAX_BLOCK_RECORDS": "8"},
                                  DEFAULTS)
        assert len(lines) == 2
        assert engine.get_bucket("new").is_provisioned
        assert engine.get_bucket("new").settings == DEFAULTS.merged(quota_size=10)
        # Existing settings are overwritten; what the environment leaves out takes the defaults.
        assert engine.get_bucket("old").settings == DEFAULTS.merged(max_block_records=8)
        assert engine.get_bucket("old").is_provisioned
    finally:
        engine.close()

    # Persisted: the flag and the settings survive a reopen. Dropping "old" from the
    # environment takes its flag away, so it can be managed through the API again.
    engine = Engine.open(tmp_path, defaults=DEFAULTS)
    try:
        assert engine.get_bucket("old").is_provisioned
        lines = provision_buckets(engine, {"RS_BUCKET_1_NAME": "new", "RS_BUCKET_1_QUOTA_SIZE": "10"}, DEFAULTS)
        assert "Bucket 'old' is no longer provisioned" in lines
        assert not engine.get_bucket("old").is_provisioned
        assert engine.get_bucket("old").settings == DEFAULTS.merged(max_block_records=8)
    finally:
        engine.close()
    engine = Engine.open(tmp_path, defaults=DEFAULTS)
    try:
        assert not engine.get_bucket("old").is_provisioned
        assert engine.get_bucket("new").is_provisioned
    finally:
        engine.close()


def test_a_bad_variable_changes_nothing(tmp_path):
    engine = Engine.open(tmp_path, defaults=DEFAULTS)
    try:
        with pytest.raises(ConfigError):
            provision_buckets(engine, {"RS_BUCKET_1_NAME": "a", "RS_BUCKET_2_NAME": "b",
                                       "RS_BUCKET_2_QUOTA_TYPE": "nope"}, DEFAULTS)
        assert engine.bucket_names() == []
    finally:
        engine.close()


def test_auth_throttle_limits():
    t = auth_throttle({"EDGE_AUTH_MAX_FAILURES": "3", "EDGE_AUTH_BACKOFF": "1.5", "EDGE_AUTH_WINDOW": "10"})
    assert (t.max_failures, t.backoff_s, t.window_s) == (3, 1.5, 10.0)
    default = auth_throttle({})
    assert default.max_failures >= 3
    for env, var in (({"EDGE_AUTH_MAX_FAILURES": "0"}, "EDGE_AUTH_MAX_FAILURES"),
                     ({"EDGE_AUTH_BACKOFF": "soon"}, "EDGE_AUTH_BACKOFF")):
        with pytest.raises(ConfigError, match=var):
            auth_throttle(env)


class FakeTokens:
    def __init__(self):
        self.saves = 0

    def save_access_times(self):
        self.saves += 1


async def test_access_times_saved_periodically_and_on_cancel(autojump_clock):
    tokens = FakeTokens()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(save_access_times_forever, tokens, 60.0)
            await trio.sleep(150)  # two periods pass
            assert tokens.saves == 2
            scope.cancel()
    assert tokens.saves == 3  # the shutdown save


async def test_saver_survives_a_disk_error(autojump_clock):
    class Failing(FakeTokens):
        def save_access_times(self):
            super().save_access_times()
            raise OSError(28, "No space left on device")

    tokens = Failing()
    with trio.move_on_after(130):
        await save_access_times_forever(tokens, 60.0)
    assert tokens.saves == 3
