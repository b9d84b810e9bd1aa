"""Per-token rate limiting: a token bucket per API token, in process memory.

Each process keeps its own buckets, so N processes allow N times the rate; the limit protects a
node from one noisy client rather than enforcing a contract. Memory is bounded: the least
recently seen tokens are forgotten beyond ``max_keys``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from goalline.errors import RateLimited


class RateLimiter:
    """``rate`` requests per second per key, with bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str) -> None:
        """Take one request from ``key``'s bucket; 429 with Retry-After when it is empty."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1 - tokens) / self.rate)
            raise RateLimited(
                f"token: more than {self.rate:g} requests per second; retry in {wait} s",
                retry_after=wait,
            )
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
