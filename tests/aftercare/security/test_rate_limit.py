"""Token buckets per caller."""

from __future__ import annotations

from aftercare.security.rate_limit import RateLimiter, retry_after


def test_a_burst_is_allowed_then_the_caller_waits_for_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == 0.5
    assert limiter.take("a", now=0.5) == 0.0


def test_callers_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.take("a", now=0.0) == 0.0
    assert limiter.take("a", now=0.0) > 0
    assert limiter.take("b", now=0.0) == 0.0


def test_a_rate_of_zero_means_no_limit() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    assert all(limiter.take("a", now=0.0) == 0.0 for _ in range(100))


def test_memory_is_bounded_by_forgetting_callers_whose_bucket_is_full() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    limiter.take("a", now=0.0)
    limiter.take("b", now=0.0)
    limiter.take("c", now=10.0)
    assert len(limiter._buckets) <= 2


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert [retry_after(0.01), retry_after(1.0), retry_after(1.2)] == ["1", "1", "2"]
