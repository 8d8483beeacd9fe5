"""The token buckets of ``POST /oauth2/token``, on a clock of our own."""

from __future__ import annotations

from sluiceway.server.rate_limits import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert 19.9 < wait <= 20.0  # 3 a minute: one every 20 s
    assert retry_after(wait) == "20"
    assert limiter.acquire("b") == 0.0  # keys have buckets of their own
    clock.now += 20
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_refused_requests_do_not_drain_the_bucket_further() -> None:
    clock = Clock()
    limiter = RateLimiter(1, clock=clock)
    assert limiter.acquire("a") == 0.0
    for _ in range(10):
        assert limiter.acquire("a") > 0
    clock.now += 60
    assert limiter.acquire("a") == 0.0


def test_no_limit_and_a_bounded_number_of_keys() -> None:
    assert all(RateLimiter(0).acquire("a") == 0.0 for _ in range(100))
    limiter = RateLimiter(1, max_keys=2, clock=Clock())
    for key in ("a", "b", "c"):
        assert limiter.acquire(key) == 0.0
    assert limiter.acquire("a") == 0.0  # forgotten, as the least recently used
    assert limiter.acquire("c") > 0
