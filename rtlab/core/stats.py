"""Summaries of measurements: percentiles by nearest rank, and rates.

Latency is reported as percentiles, not as a mean: one stalled message in a
hundred hides in an average but not in p99. The nearest-rank method picks a value
that was really measured (no interpolation), so p100 is the worst case seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q <= 100) of ``values`` by nearest rank."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class Summary:
    """Count, p50, p90, p99 and the worst of a set of measurements (same unit as given)."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("a summary of no values")
        return cls(
            len(ordered),
            percentile(ordered, 50),
            percentile(ordered, 90),
            percentile(ordered, 99),
            ordered[-1],
        )


def rate(count: float, seconds: float) -> float:
    """``count`` per second; 0.0 when no time passed (nothing measured)."""
    return count / seconds if seconds > 0 else 0.0


def ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``, or ``inf`` when theirs is 0 and ours is not (``nan`` for 0/0)."""
    if theirs == 0:
        return math.nan if ours == 0 else math.inf
    return ours / theirs
