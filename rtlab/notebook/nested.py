"""Run a coroutine from synchronous code, in a script and in a notebook cell alike."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import nest_asyncio2

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result.

    In a script this is :func:`asyncio.run`. In a notebook cell the kernel's loop is
    already running and ``asyncio.run`` refuses ("cannot be called from a running
    event loop"); there ``nest_asyncio2`` makes that loop re-entrant and the
    coroutine runs on it. In a cell, ``await coro`` is simpler: use this for code
    that has to stay synchronous.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    nest_asyncio2.apply(loop)
    return loop.run_until_complete(coro)
