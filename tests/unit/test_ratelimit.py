import pytest

from goalline.errors import RateLimited
from goalline.pipeline.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2, burst=2, clock=clock)
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert refused.value.retry_after == 1 and refused.value.code == 429
    clock.now += 0.5  # one request's worth at 2/s
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_keys_are_independent_and_bounded() -> None:
    limiter = RateLimiter(1, burst=1, max_keys=2, clock=Clock())
    limiter.check("a")
    limiter.check("b")
    limiter.check("c")  # forgets "a", the least recently seen
    assert list(limiter._buckets) == ["b", "c"]
    limiter.check("a")  # a fresh bucket again
