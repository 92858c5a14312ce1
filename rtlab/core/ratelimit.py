"""Rate limits as pure policies: a sliding window and a token bucket, per key (a user).

Both answer ``check(key, now)`` with a :class:`Decision`: allowed or not, and when
to try again. They keep state only for keys seen within their horizon, so memory
stays bounded by the number of active users.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

# A token bucket's state: (tokens, when they were counted). FULL reads as full at its
# first use, whatever the burst (take() cuts it down), so every new bucket shares it.
Bucket = tuple[float, float]
FULL: Bucket = (math.inf, 0.0)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the next event would be allowed


def take(bucket: Bucket, now: float, rate: float, burst: float) -> tuple[Bucket, float]:
    """One event from ``bucket``, refilled at ``rate`` a second up to ``burst``: the
    bucket's new state, and 0 if the event may pass, else the seconds until one could."""
    tokens, at = bucket
    tokens = min(float(burst), tokens + (now - at) * rate)
    if tokens >= 1:
        return (tokens - 1, now), 0.0
    return (tokens, now), (1 - tokens) / rate if rate > 0 else math.inf


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds (the tutorial's 10 a minute)."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"need limit >= 1 and window > 0, got {limit} and {window}")
        self.limit = limit
        self.window = window
        self._times: dict[str, collections.deque[float]] = {}

    def check(self, key: str, now: float) -> Decision:
        times = self._times.setdefault(key, collections.deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return Decision(False, times[0] + self.window - now)
        times.append(now)
        return Decision(True)

    def charge(self, key: str, now: float, events: int) -> None:
        """Count ``events`` more for ``key``, as if sent ``now`` (what an event cost beyond
        itself); at most the window's limit, so memory stays bounded."""
        times = self._times.setdefault(key, collections.deque())
        times.extend([now] * max(0, min(events, self.limit - len(times))))

    def forget_idle(self, now: float) -> None:
        """Drop keys with nothing in their window (call now and then)."""
        for key in [k for k, t in self._times.items() if not t or now - t[-1] >= self.window]:
            del self._times[key]

    def limited(self, now: float) -> list[str]:
        """The keys refused if they sent an event ``now``, sorted."""
        return sorted(
            k for k, t in self._times.items() if sum(now - x < self.window for x in t) >= self.limit
        )

    def __len__(self) -> int:
        return len(self._times)


class TokenBucket:
    """Bursts of up to ``burst`` events, refilled at ``rate`` events per second."""

    def __init__(self, rate: float = 5.0, burst: int = 20) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, Bucket] = {}  # key: (tokens, at)

    def check(self, key: str, now: float) -> Decision:
        self._buckets[key], wait = take(self._buckets.get(key, FULL), now, self.rate, self.burst)
        return Decision(not wait, wait)

    def charge(self, key: str, now: float, events: int) -> None:
        """Take ``events`` more tokens for ``key`` (what an event cost beyond itself): the
        bucket may owe up to a burst, which it pays back before the next event passes."""
        tokens, at = self._buckets.get(key, FULL)
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        self._buckets[key] = (max(tokens - events, -float(self.burst)), now)

    def forget_idle(self, now: float) -> None:
        """Drop keys whose bucket has filled up again (they look like new keys)."""
        full = [
            k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def limited(self, now: float) -> list[str]:
        """The keys refused if they sent an event ``now``, sorted."""
        return sorted(k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate < 1)

    def __len__(self) -> int:
        return len(self._buckets)
