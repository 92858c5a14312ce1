"""Reconnection with exponential backoff and jitter, as a pure schedule.

The options carry the names Socket.IO users know (``reconnection``,
``reconnectionDelay``, ``reconnectionDelayMax``, ``randomizationFactor``,
``reconnectionAttempts``), in Python spelling. Attempt ``n`` (from 0) waits::

    base = min(delay * 2**n, delay_max)
    wait = base * (1 + randomization_factor * u),  u uniform in [-1, 1], at most delay_max

Doubling spreads retries out while the server is down; the jitter spreads the
clients out, so that a restarted server is not hit by all of them at once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Reconnection:
    """When and how often a client tries to reconnect."""

    enabled: bool = True  # Socket.IO: reconnection
    delay: float = 1.0  # reconnectionDelay, seconds
    delay_max: float = 5.0  # reconnectionDelayMax, seconds
    randomization_factor: float = 0.5  # randomizationFactor, 0 to 1
    attempts: int | None = None  # reconnectionAttempts; None tries for ever

    def __post_init__(self) -> None:
        if self.delay < 0 or self.delay_max < self.delay:
            raise ValueError(
                f"need 0 <= delay <= delay_max, got delay={self.delay}, delay_max={self.delay_max}"
            )
        if not 0 <= self.randomization_factor <= 1:
            raise ValueError(
                f"randomization_factor must be from 0 to 1, got {self.randomization_factor}"
            )
        if self.attempts is not None and self.attempts < 0:
            raise ValueError(f"attempts must be 0 or more (or None), got {self.attempts}")


def backoff_delay(attempt: int, options: Reconnection, u: float = 0.0) -> float:
    """Seconds to wait before attempt ``attempt`` (0 is the first); ``u`` in [-1, 1]."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    if not -1 <= u <= 1:
        raise ValueError(f"u must be from -1 to 1, got {u}")
    doubled = options.delay * 2.0**attempt if attempt < 1000 else float("inf")
    base = min(doubled, options.delay_max)
    return min(base * (1 + options.randomization_factor * u), options.delay_max)


def schedule(options: Reconnection, rng: random.Random | None = None) -> Iterator[float]:
    """The waits before each attempt, until ``options.attempts`` run out (or for ever)."""
    if not options.enabled:
        return
    rng = rng or random.Random()
    attempt = 0
    while options.attempts is None or attempt < options.attempts:
        yield backoff_delay(attempt, options, rng.uniform(-1, 1))
        attempt += 1
