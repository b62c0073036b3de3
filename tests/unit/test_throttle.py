"""edge.auth.throttle: per-address backoff after repeated bad tokens, on a fake clock."""

from __future__ import annotations

import pytest

from edge.auth.throttle import RATE_LIMITED_TEXT, AuthThrottle
from edge.errors import RateLimitedError


def fail(th, addr, n, now=0.0):
    for _ in range(n):
        th.record_failure(addr, now)


def test_blocks_after_max_failures_with_exact_text():
    th = AuthThrottle(max_failures=3, window_s=10, backoff_s=30)
    fail(th, "1.2.3.4", 2)
    th.check("1.2.3.4", 0.0)
    fail(th, "1.2.3.4", 1)
    with pytest.raises(RateLimitedError) as exc:
        th.check("1.2.3.4", 1.0)
    # The text says how long to wait (the console shows it as it is), and so does Retry-After.
    assert exc.value.message == RATE_LIMITED_TEXT.format(seconds=29) == "Too many failed authentication attempts; retry in 29 s"
    assert exc.value.retry_after_s == 29
    with pytest.raises(RateLimitedError) as exc:
        th.check("1.2.3.4", 29.5)
    assert exc.value.message.endswith("retry in 1 s") and exc.value.retry_after_s == 1


def test_backoff_ends():
    th = AuthThrottle(max_failures=3, window_s=10, backoff_s=30)
    fail(th, "1.2.3.4", 3, now=5.0)
    assert th.is_blocked("1.2.3.4", 34.9)
    th.check("1.2.3.4", 35.0)


def test_failures_outside_the_window_do_not_add_up():
    th = AuthThrottle(max_failures=3, window_s=10, backoff_s=30)
    fail(th, "a", 2, now=0.0)
    fail(th, "a", 2, now=10.0)  # new window
    th.check("a", 10.0)
    fail(th, "a", 1, now=11.0)
    assert th.is_blocked("a", 11.0)


def test_addresses_are_isolated():
    th = AuthThrottle(max_failures=2, window_s=10, backoff_s=30)
    fail(th, "10.0.0.1", 5)
    assert th.is_blocked("10.0.0.1", 1)
    th.check("10.0.0.2", 1)
    th.check("2001:db8::1", 1)


def test_ipv6_grouped_by_64_and_mapped_v4_matches_v4():
    th = AuthThrottle(max_failures=2, window_s=10, backoff_s=30)
    th.record_failure("2001:db8::1", 0)
    th.record_failure("2001:db8::2", 0)
    assert th.is_blocked("2001:db8::ffff", 1)
    assert not th.is_blocked("2001:db8:0:1::1", 1)
    th.record_failure("::ffff:1.2.3.4", 0)
    th.record_failure("1.2.3.4", 0)
    assert th.is_blocked("1.2.3.4", 1)


def test_memory_is_bounded():
    th = AuthThrottle(max_failures=3, window_s=10, backoff_s=30, max_addresses=100)
    for i in range(10_000):
        th.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", float(i) / 1000)
    assert th.statistics()["tracked_addresses"] <= 100


def test_stale_entries_are_evicted_before_live_blocked_ones():
    th = AuthThrottle(max_failures=2, window_s=10, backoff_s=1000, max_addresses=3)
    fail(th, "9.9.9.9", 2, now=0.0)  # blocked until 1000
    th.record_failure("1.1.1.1", 1.0)
    th.record_failure("1.1.1.2", 1.0)
    # At t=50 both single failures are stale; the blocked address stays tracked.
    th.record_failure("1.1.1.3", 50.0)
    th.record_failure("1.1.1.4", 50.0)
    assert th.is_blocked("9.9.9.9", 50.0)


def test_unknown_address_shares_one_bucket():
    th = AuthThrottle(max_failures=2)
    th.record_failure(None, 0)
    th.record_failure("", 0)
    assert th.is_blocked(None, 1)
