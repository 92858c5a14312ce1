"""Explicit waits: a cell blocks until something happened, then prints a deterministic summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INTERVAL = 0.01


def wait_until(condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Block until ``condition()`` is true; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what or 'the condition'}")
        time.sleep(INTERVAL)


async def until(condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """``await`` until ``condition()`` is true, letting the event loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what or 'the condition'}")
        await asyncio.sleep(INTERVAL)
