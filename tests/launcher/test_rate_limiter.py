"""The cluster-wide GCRA limiter's grants, against a real Redis (no timing assertions)."""

from __future__ import annotations

import redis

from podfleet.workers.rate_limits import ClusterRateLimiter


def limiter(redis_url: str, rate: float = 10.0, burst: int = 5) -> ClusterRateLimiter:
    return ClusterRateLimiter(redis.Redis.from_url(redis_url), "podfleet:ratelimit:test",
                              rate, burst)


def test_an_idle_limit_grants_a_whole_burst_at_once(redis_url: str) -> None:
    grant = limiter(redis_url).reserve(5, max_wait_s=0)
    assert (grant.granted, grant.wait_s) == (5, 0.0)


def test_past_the_burst_nothing_is_granted_without_waiting(redis_url: str) -> None:
    limit = limiter(redis_url)
    limit.reserve(5, max_wait_s=0)

    grant = limit.reserve(1, max_wait_s=0)

    assert grant.granted == 0
    assert 0 < grant.wait_s <= 0.1  # one interval at 10/s


def test_a_reservation_grants_only_what_conforms_within_the_wait(redis_url: str) -> None:
    limit = limiter(redis_url)
    limit.reserve(5, max_wait_s=0)

    grant = limit.reserve(10, max_wait_s=0.35)

    assert grant.granted == 3  # permits at ~0.1, 0.2 and 0.3 s
    assert 0.2 < grant.wait_s <= 0.3


def test_limits_with_different_keys_do_not_share_permits(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first = ClusterRateLimiter(client, "podfleet:ratelimit:a", 10, 2)
    second = ClusterRateLimiter(client, "podfleet:ratelimit:b", 10, 2)
    first.reserve(2, max_wait_s=0)

    assert second.reserve(2, max_wait_s=0).granted == 2


def test_a_zero_rate_is_unlimited_and_never_calls_redis() -> None:
    unlimited = ClusterRateLimiter(redis.Redis(port=1), "podfleet:ratelimit:x", 0, 1)
    assert unlimited.acquire(1000, max_wait_s=0).granted == 1000


def test_permits_of_one_grant_are_spread_one_interval_apart(redis_url: str) -> None:
    # Given a limit whose burst is spent
    limit = limiter(redis_url)
    limit.reserve(5, max_wait_s=0)

    # When several permits are reserved in one grant
    grant = limit.reserve(4, max_wait_s=1.0)

    # Then each must wait for its own slot, not all for the last one's
    assert grant.granted == 4
    gaps = [b - a for a, b in zip(grant.delays_s, grant.delays_s[1:], strict=False)]
    assert all(abs(gap - 0.1) < 1e-6 for gap in gaps)
    assert grant.delays_s[-1] == grant.wait_s


def test_a_burst_grant_may_use_every_permit_at_once(redis_url: str) -> None:
    grant = limiter(redis_url).reserve(5, max_wait_s=0)
    assert grant.delays_s == (0.0,) * 5


def test_permits_stay_due_when_they_were_granted_so_a_pause_makes_them_stale(
        redis_url: str) -> None:
    import itertools
    import time

    # Given five permits granted one interval (0.1 s) apart
    grant = limiter(redis_url, rate=10.0, burst=1).acquire(5, max_wait_s=1.0)
    assert grant.granted >= 2
    due = [grant.due_at(i) for i in range(grant.granted)]
    assert all(b - a > 0.05 for a, b in itertools.pairwise(due))
    # When the holder is paused past them all (SIGSTOP, a GC pause)
    time.sleep(due[-1] - time.monotonic() + 0.3)
    # Then every permit reads as overdue by more than the launcher's staleness bound,
    # instead of seeming to conform now: the launcher takes fresh ones rather than burst
    assert all(time.monotonic() - d > 0.25 for d in due)
