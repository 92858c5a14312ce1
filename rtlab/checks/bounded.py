"""A learner's code run with a time limit, so that a check cell never hangs.

The code runs in a daemon thread; a check that gets :data:`STILL_RUNNING` back
reports the answer as too slow and goes on. A thread cannot be stopped from
outside, so an endless loop keeps it busy until the kernel restarts, but the cell
ends and says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

STILL_RUNNING = object()  # what call_within returns for code that did not return in time


def call_within(function: Callable[[], Any], seconds: float) -> Any:
    """``function()``'s result, or :data:`STILL_RUNNING` after ``seconds``; what it
    raises is raised here (in the caller's thread, never printed from the worker)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    worker = threading.Thread(target=run, name="rtlab-learner-code", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return STILL_RUNNING
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
