"""Argument types of the ``rtlab`` command: each checks a value as argparse reads it.

A value out of range is a usage error naming the option and the value, reported by
the subcommand (``rtlab serve: error: argument --port: ...``), never a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from rtlab.aio import compression
from rtlab.core.ratelimit import TokenBucket


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {text}")
    return value


def at_least(low: int) -> Callable[[str], int]:
    """Whole numbers ``low`` or more (a count: workers, connections)."""

    def count(text: str) -> int:
        value = int(_number(text, int))
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    return count


def seconds(text: str) -> float:
    """A duration in seconds, more than 0."""
    value = float(_number(text, float))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def seconds_or_off(text: str) -> float:
    """A duration in seconds, or 0 for off."""
    value = float(_number(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more seconds, got {text}")
    return value


def rate_limit(text: str) -> TokenBucket | None:
    """``RATE/BURST`` (events per second per user, more than 0; burst, 1 or more) or ``off``."""
    if text == "off":
        return None
    rate, slash, burst = text.partition("/")
    try:
        bucket = TokenBucket(float(rate), int(burst))
    except ValueError:
        bucket = None
    if not slash or bucket is None or not math.isfinite(bucket.rate):
        raise argparse.ArgumentTypeError(
            "must be RATE/BURST, events per second (more than 0) and a burst (1 or more), "
            f"e.g. 10/50, or off; got {text!r}"
        )
    return bucket


def compression_option(text: str) -> str:
    """``off``, ``on`` or a whole number of bytes (0 or more), kept as the text given."""
    try:
        compression.threshold(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be off, on or a size in bytes (0 or more), got {text!r}"
        ) from None
    return text
