"""Load generator processes: each runs an asyncio loop with many ``websockets`` connections.

A phase runs one job in several worker processes at once. Each worker connects and
sets up, then says it is ready; when all are, the parent waits for the server to go
quiet, notes its CPU time, and says go; each worker does its load and sends back
what it measured. The server's CPU time is read again after the last result, so that
messages per CPU second count the measured part only.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtlab.aio.descriptors import raise_limit
from rtlab.bench.peers import Measured
from rtlab.bench.wire import Wire

Job = Callable[[dict[str, Any], "Gate"], Awaitable[dict[str, Any]]]
CONNECTING = 64  # connection handshakes in flight per worker


def _context() -> Any:
    # forkserver: fast starts without forking a process that may have threads.
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rtlab.bench.scenarios"])
    return context


class Gate:
    """A worker's side of the start line: ``await gate.ready()`` returns at go."""

    def __init__(self, index: int, ready: Any, go: Any) -> None:
        self.index = index
        self._ready = ready
        self._go = go

        self._out: Any = None
        self.reported = False
        self.started = 0.0

    async def ready(self) -> None:
        self._ready.put(("ready", self.index, None))
        await asyncio.get_running_loop().run_in_executor(None, self._go.wait)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since go."""
        return time.perf_counter() - self.started

    def report(self, result: dict[str, Any]) -> None:
        """Send the result now, at the end of the load (closing comes after, unmeasured)."""
        self._out.put(("result", self.index, result))
        self.reported = True


def _worker(job: Job, shard: dict[str, Any], index: int, ready: Any, go: Any, out: Any) -> None:
    raise_limit()  # thousands of connections: one descriptor each
    gate = Gate(index, ready, go)
    gate._out = out
    try:
        result = asyncio.run(job(shard, gate))
        if not gate.reported:
            out.put(("result", index, result))
    except BaseException:
        message = traceback.format_exc()
        ready.put(("error", index, message))
        out.put(("error", index, message))


@dataclass
class Phase:
    """What a phase measured: each worker's result, wall seconds, server CPU seconds."""

    results: list[dict[str, Any]]
    seconds: float
    cpu_seconds: float
    at_ready: Any = None
    peak_rss: int = 0  # the server's largest RSS seen during the load


def run(
    job: Job,
    shards: list[dict[str, Any]],
    server: Measured,
    *,
    timeout: float = 900,
    at_ready: Callable[[], Any] | None = None,
) -> Phase:
    """Run ``job`` on each shard in its own process; ``at_ready`` is called before go."""
    context = _context()
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(target=_worker, args=(job, shard, i, ready, go, out), daemon=True)
        for i, shard in enumerate(shards)
    ]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + timeout
        for _ in workers:
            kind, index, detail = _get(ready, deadline, workers)
            if kind == "error":
                raise RuntimeError(f"load worker {index} failed while setting up:\n{detail}")
        quiet(server)
        noted = at_ready() if at_ready is not None else None
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        go.set()
        results: list[dict[str, Any]] = [{} for _ in workers]
        peak = [server.rss()]
        for _ in workers:
            kind, index, detail = _get(out, deadline, workers, lambda: peak.append(server.rss()))
            if kind == "error":
                raise RuntimeError(f"load worker {index} failed:\n{detail}")
            results[index] = detail
        seconds, cpu = time.perf_counter() - t0, server.cpu_seconds() - cpu0
        if all("elapsed" in r for r in results):  # the load's own end, before any drain
            seconds = max(r["elapsed"] for r in results)
    finally:
        go.set()
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join()
    return Phase(results, seconds, cpu, noted, max(peak))


def _get(
    source: Any, deadline: float, workers: list[Any], waiting: Callable[[], Any] | None = None
) -> tuple[str, int, Any]:
    while True:
        try:
            return source.get(timeout=0.1)
        except queue.Empty:
            if waiting is not None:
                waiting()
            if time.monotonic() > deadline:
                raise TimeoutError("the load workers did not finish in time") from None
            if any(w.exitcode not in (None, 0) for w in workers):
                raise RuntimeError("a load worker died") from None


def quiet(server: Measured, limit: float = 30.0) -> None:
    """Wait (up to ``limit`` s) until the server uses under 5% of a core: setup is over."""
    end = time.monotonic() + limit
    before = server.cpu_seconds()
    while time.monotonic() < end:
        time.sleep(0.1)
        now = server.cpu_seconds()
        if now - before < 0.005:
            return
        before = now


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt round-robin into at most ``parts`` non-empty lists."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


async def open_all(
    wire: Wire,
    urls: list[str],
    setup: Callable[[ClientConnection], Awaitable[None]] | None = None,
    idle: Idle | None = None,
) -> list[ClientConnection]:
    """Open a connection to each URL (the wire's handshake, then ``setup``), in order;
    ``idle`` reads each one from then on."""
    limit = asyncio.Semaphore(CONNECTING)

    async def one(url: str) -> ClientConnection:
        async with limit:
            ws = await connect(
                url, compression=None, ping_interval=None, max_size=None, open_timeout=60
            )
            await wire.open(ws)
            if setup is not None:
                await setup(ws)
            if idle is not None:
                idle.add(ws)
            return ws

    return list(await asyncio.gather(*(one(url) for url in urls)))


class Idle:
    """Reads and drops what joined connections get while the others join (``user-joined``
    and the like), answering pings, until the room has been silent for a while."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.last = time.monotonic()
        self.tasks: list[asyncio.Task[None]] = []

    def add(self, ws: ClientConnection) -> None:
        self.tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await ws.recv()  # cancelling recv() loses no message
                self.last = time.monotonic()
                if (answer := self.wire.control(frame)) is not None:
                    await ws.send(answer)

    async def settle(self, quiet: float) -> None:
        """Return once no connection got anything for ``quiet`` seconds; stop reading."""
        while (wait := self.last + quiet - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def close(ws: ClientConnection) -> None:
    """Close, reading what still comes meanwhile: a connection whose unread frames fill
    its queue stops reading, and would never see the server's answer to the close."""

    async def discard() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    reader = asyncio.create_task(discard())
    await ws.close()
    await reader


async def close_all(connections: list[ClientConnection]) -> None:
    await asyncio.gather(*(close(ws) for ws in connections), return_exceptions=True)
