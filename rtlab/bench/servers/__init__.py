"""The servers under test, each run as its own process; each prints ``listening PORT on LOOP``.

Every Python server runs on the same event loop, chosen by ``RTLAB_LOOP`` (``rtlab
bench --loop``): asyncio's own (the default, as ``rtlab serve`` runs) or uvloop, if
installed. Comparing servers on different loops would measure the loops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any


def loop_name() -> str:
    """``"asyncio"`` or ``"uvloop"``: the loop :func:`run` uses."""
    return "uvloop" if os.environ.get("RTLAB_LOOP") == "uvloop" else "asyncio"


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)`` on the chosen loop."""
    if loop_name() == "uvloop":
        import uvloop  # not a dependency of rtlab: rtlab bench checks it is installed

        uvloop.run(main)
    else:
        asyncio.run(main)
