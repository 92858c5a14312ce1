"""rtlab's lab server as ``rtlab serve --rate-limit off`` runs it, plus an ``echo`` event.

``echo`` acknowledges its data: one event round trip, the unit of the echo scenarios.
The per-address limits (connections, unfinished handshakes) are lifted: every load
connection comes from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
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
    server = LabServer(
        "127.0.0.1",
        0,
        rate_limit=None,
        max_connections_per_address=100_000,
        max_handshakes_per_address=100_000,
    )

    @server.on("echo")
    def echo(session: Session, data: Any) -> Any:
        return data

    async with server:
        print(f"listening {server.port} on {loop_name()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    run(main())  # on asyncio, or uvloop with rtlab bench --loop uvloop: the same for all
