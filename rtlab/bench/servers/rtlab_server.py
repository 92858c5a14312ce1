"""rtlab's lab server as ``rtlab serve --rate-limit off`` runs it, plus an ``echo`` event.

``echo`` acknowledges its data: one event round trip, the unit of the echo scenarios.
The per-address limits (connections, unfinished handshakes) are lifted: every load
connection comes from 127.0.0.1. With ``RTLAB_BENCH_REDIS`` rooms span every process
on that Redis. ``rtlab bench --baseline`` runs this file against another checkout's
``LabServer``: what it does not take is left out.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from typing import Any

from rtlab.aio.events import Session
from rtlab.aio.server import LabServer
from rtlab.bench.servers import loop_name, run


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = {
        "rate_limit": None,
        "max_connections_per_address": 100_000,
        "max_handshakes_per_address": 100_000,
        "redis": os.environ.get("RTLAB_BENCH_REDIS"),
    }
    known = inspect.signature(LabServer).parameters
    server = LabServer("127.0.0.1", 0, **{k: v for k, v in options.items() if k in known})

    @server.on("echo")
    def echo(session: Session, data: Any) -> Any:
        return data

    async with server:
        print(f"listening {server.port} on {loop_name()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    run(main())  # on asyncio, or uvloop with rtlab bench --loop uvloop: the same for all
