"""The scenarios of ``rtlab bench``, each a function of a running server and its sizes.

Every scenario counts what comes back: an echo scenario checks that each message
returned exactly once, a room scenario that each member got each message exactly once.
A :class:`Result` carries the measured numbers; nothing here judges them.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from rtlab.bench import load
from rtlab.bench.load import Gate
from rtlab.bench.peers import Measured, Running
from rtlab.bench.wire import ECHO, MESSAGE, TYPING, WIRES, Wire, padded
from rtlab.core.stats import Summary, rate

ROOM = "bench"
SIZE = 64  # characters of payload in every message, for every server
READ_TIMEOUT = 60.0  # a hang guard: a reader that waits longer counts what is missing


@dataclass
class Result:
    """One scenario at one size against one server."""

    scenario: str
    variant: str
    server: str
    messages: int  # what was counted back: round trips, or deliveries
    expected: int
    duplicates: int
    seconds: float
    cpu_seconds: float  # the server process's user + system time during the load
    rate: float  # messages per second
    rate_per_cpu: float | None  # per second of server CPU time (None: too short to tell)
    latency_ms: dict[str, float] | None = None  # count, p50, p90, p99, max
    rss_per_connection: float | None = None  # bytes
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.messages == self.expected and self.duplicates == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"complete": self.complete}


# CPU time is counted in whole clock ticks (10 ms at Linux's usual 100 Hz): a rate per
# CPU second needs 50 ticks or more to be within 2% (and a ratio of two within 4%).
TICKS = 50
CLOCK_TICK = 1 / os.sysconf("SC_CLK_TCK")


def long_enough(cpu_seconds: float) -> bool:
    """Whether this much CPU time, read in clock ticks, gives a rate worth comparing."""
    return cpu_seconds >= TICKS * CLOCK_TICK


def _summary_ms(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    return {k: (v * 1000 if k != "count" else v) for k, v in asdict(Summary.of(seconds)).items()}


def _result(
    scenario: str, variant: str, server: Measured, phase: load.Phase, counted: int, **kw: Any
) -> Result:
    return Result(
        scenario,
        variant,
        server.peer.name,
        counted,
        seconds=phase.seconds,
        cpu_seconds=phase.cpu_seconds,
        rate=rate(counted, phase.seconds),
        rate_per_cpu=rate(counted, phase.cpu_seconds) if long_enough(phase.cpu_seconds) else None,
        **kw,
    )


def _quiet(members: int) -> float:
    """How long a room's connections must be silent before the load starts: joining
    a room of ``members`` tells the others, which takes a while in a big room."""
    return 0.1 + members / 1000


async def _frames(ws: ClientConnection, wire: Wire) -> AsyncIterator[str]:
    """What the server sends, its control frames (Engine.IO pings) answered on the way."""
    while True:
        frame = await ws.recv()
        if (answer := wire.control(frame)) is not None:
            await ws.send(answer)
        else:
            yield frame


# -- echo: round trips ---------------------------------------------------------------


async def _pump(
    ws: ClientConnection, shard: dict[str, Any], first: int, latencies: list[float] | None
) -> tuple[int, int]:
    """Send ``count`` echoes with ``window`` in flight; (counted back, duplicates)."""
    wire = WIRES[shard["wire"]]
    count, window, size = shard["count"], shard["window"], shard["size"]
    credit = asyncio.Semaphore(window)
    sent_at: dict[int, float] = {}
    got: set[int] = set()
    duplicates = 0

    async def send() -> None:
        for n in range(first, first + count):
            await credit.acquire()
            sent_at[n] = time.perf_counter()
            await ws.send(wire.echo(n, padded(f"~e{n}~", size)))

    sender = asyncio.create_task(send())
    try:
        frames = _frames(ws, wire)
        async with asyncio.timeout(READ_TIMEOUT):
            while len(got) < count:
                match = ECHO.search(await anext(frames))
                if match is None:
                    continue
                n = int(match[1])
                if n in got or n not in sent_at:
                    duplicates += 1
                    continue
                got.add(n)
                if latencies is not None:
                    latencies.append(time.perf_counter() - sent_at[n])
                credit.release()
    except TimeoutError:
        pass
    sender.cancel()
    return len(got), duplicates


async def _echo_job(shard: dict[str, Any], gate: Gate) -> dict[str, Any]:
    wire = WIRES[shard["wire"]]
    urls = [wire.echo_url(shard["base"], user) for user in shard["users"]]
    connections = await load.open_all(wire, urls)
    await gate.ready()
    latencies: list[float] | None = [] if shard["latencies"] else None
    counts = await asyncio.gather(
        *(_pump(ws, shard, 1 + i * shard["count"], latencies) for i, ws in enumerate(connections))
    )
    gate.report(
        {
            "counted": sum(c for c, _ in counts),
            "duplicates": sum(d for _, d in counts),
            "latencies": latencies or [],
        }
    )
    await load.close_all(connections)
    return {}


def _users(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def echo(
    server: Running,
    connections: int = 10,
    messages: int = 10_000,
    *,
    window: int = 8,
    size: int = SIZE,
    workers: int = 2,
    scenario: str = "echo",
    latencies: bool = False,
) -> Result:
    """Round trips over ``connections``, ``window`` in flight on each, ``messages`` in all."""
    per = max(1, messages // connections)
    shards = [
        {
            "base": server.base,
            "wire": server.peer.wire,
            "users": users,
            "count": per,
            "window": window,
            "size": size,
            "latencies": latencies,
        }
        for users in load.split(_users("e", connections), workers)
    ]
    phase = load.run(_echo_job, shards, server)
    counted = sum(r["counted"] for r in phase.results)
    lat = [x for r in phase.results for x in r["latencies"]]
    plural = "s" if connections > 1 else ""
    return _result(
        scenario,
        f"{connections} connection{plural}, window {window}",
        server,
        phase,
        counted,
        expected=per * connections,
        duplicates=sum(r["duplicates"] for r in phase.results),
        latency_ms=_summary_ms(lat),
        details={"connections": connections, "window": window, "size": size},
    )


def latency(server: Running, messages: int = 5000, *, size: int = SIZE) -> Result:
    """Round-trip latency: one connection, one message in flight."""
    result = echo(
        server, 1, messages, window=1, size=size, workers=1, scenario="latency", latencies=True
    )
    result.variant = "1 connection, 1 in flight"
    return result


# -- rooms: fan-out, slow consumer -----------------------------------------------------


async def _room_job(shard: dict[str, Any], gate: Gate) -> dict[str, Any]:
    wire = WIRES[shard["wire"]]
    base, room, count, size = shard["base"], shard["room"], shard["count"], shard["size"]
    names: list[str] = shard["members"]
    base_of: dict[str, str] = shard.get("base_of", {})  # members spread over processes
    urls = [wire.room_url(base_of.get(name, base), name, room) for name in names]
    idle = load.Idle(wire)
    connections = await load.open_all(wire, urls, lambda ws: wire.join(ws, room), idle)
    by_name = dict(zip(names, connections, strict=True))
    slow = by_name.get(shard["slow"] or "")
    publisher = by_name.get(shard["publisher"] or "")
    worst: dict[int, float] = {}  # message -> its latest delivery's latency, in this worker
    totals = {"counted": 0, "duplicates": 0}
    credit = asyncio.Semaphore(shard["window"])
    await idle.settle(_quiet(shard["total"]))

    async def read(ws: ClientConnection) -> None:
        got: set[int] = set()
        frames = _frames(ws, wire)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                while len(got) < count:
                    match = MESSAGE.search(await anext(frames))
                    if match is None:
                        continue
                    seq = int(match[1])
                    if seq in got:
                        totals["duplicates"] += 1
                        continue
                    got.add(seq)
                    late = time.monotonic() - float(match[2])
                    if late > worst.get(seq, -1.0):
                        worst[seq] = late
                    if ws is publisher:
                        credit.release()
        except TimeoutError:
            pass
        totals["counted"] += len(got)

    async def publish(ws: ClientConnection) -> None:
        for seq in range(count):
            await credit.acquire()
            text = padded(f"~m{seq}~{time.monotonic():.6f}~", size)
            await ws.send(wire.publish(room, text, f"{room}-{seq}" if shard["mids"] else None))

    await gate.ready()
    tasks = [read(ws) for ws in connections if ws is not slow]
    if publisher is not None:
        tasks.append(publish(publisher))
    await asyncio.gather(*tasks)
    elapsed = gate.elapsed()
    outcome = await _drain(slow, count) if slow is not None else None
    gate.report(totals | {"worst": worst, "slow": outcome, "elapsed": elapsed})
    await load.close_all(connections)
    return {}


async def _drain(ws: ClientConnection, count: int) -> dict[str, Any]:
    """The slow member reads again: how many messages it got, and whether it was closed."""
    got = 0
    try:
        while got < count:
            frame = await asyncio.wait_for(ws.recv(), 2.0)
            got += MESSAGE.search(frame) is not None  # type: ignore[call-overload]
    except (TimeoutError, ConnectionClosed):
        pass
    code = ws.close_code if ws.close_code is not None else None
    return {"received": got, "of": count, "closed": code}


def fanout(
    server: Measured,
    members: int = 100,
    messages: int = 200,
    *,
    window: int = 4,
    size: int = SIZE,
    workers: int = 2,
    slow: bool = False,
    scenario: str = "fanout",
    bases: list[str] | None = None,
    at_ready: Callable[[], Any] | None = None,
    mids: bool = False,
) -> Result:
    """One member publishes ``messages`` to a room of ``members``; everyone, it too, gets each.

    ``mids``: each message carries a ``mid``, as every event of rtlab's reconnecting client
    (for the server to deliver a resend once; only rtlab's wire has them).
    ``slow``: one more member joins and never reads while the others are measured.
    ``bases``: the members take turns over these servers (processes sharing a Redis).
    ``at_ready``: called once all have joined, just before the load; its answer goes in
    the details as ``at_ready``."""
    names = _users("m", members + (1 if slow else 0))
    slow_name = names[-1] if slow else None
    base_of = {name: bases[i % len(bases)] for i, name in enumerate(names)} if bases else {}
    shards = [
        {
            "base_of": {name: base_of[name] for name in part if name in base_of},
            "base": server.base,
            "wire": server.peer.wire,
            "room": ROOM,
            "members": part,
            "publisher": names[0],
            "slow": slow_name,
            "total": len(names),
            "count": messages,
            "window": window,
            "size": size,
            "mids": mids,
        }
        for part in load.split(names, workers)
    ]
    rss0 = server.rss()
    phase = load.run(_room_job, shards, server, at_ready=at_ready)
    worst: dict[int, float] = {}
    for r in phase.results:
        for seq, late in r["worst"].items():
            worst[seq] = max(late, worst.get(seq, late))
    details: dict[str, Any] = {"members": members, "window": window, "size": size}
    if at_ready is not None:
        details["at_ready"] = phase.at_ready
    outcomes = [r["slow"] for r in phase.results if r["slow"] is not None]
    if outcomes:
        details["slow_member"] = outcomes[0]
        details["rss_growth"] = phase.peak_rss - rss0  # at the worst moment
    counted = sum(r["counted"] for r in phase.results)
    variant = f"room of {members}" + (" + 1 not reading" if slow else "")
    variant += ", a mid on each message" if mids else ""
    return _result(
        scenario,
        variant,
        server,
        phase,
        counted,
        expected=members * messages,
        duplicates=sum(r["duplicates"] for r in phase.results),
        latency_ms=_summary_ms(list(worst.values())),
        details=details,
    )


def slow_consumer(
    server: Running, members: int = 10, messages: int = 2000, *, size: int = 400, workers: int = 2
) -> list[Result]:
    """The same room measured twice: everyone reading, then with one member not reading."""
    both = []
    for slow in (False, True):
        both.append(
            fanout(
                server,
                members,
                messages,
                window=16,
                size=size,
                workers=workers,
                slow=slow,
                scenario="slow",
            )
        )
    return both


# -- chat: everyone talks in small rooms -----------------------------------------------


async def _chat_job(shard: dict[str, Any], gate: Gate) -> dict[str, Any]:
    wire = WIRES[shard["wire"]]
    count, size, window = shard["count"], shard["size"], shard["window"]
    ack = shard["ack"] and wire.acks
    members: list[list[Any]] = shard["members"]  # [name, room, first seq, room size]
    urls = [wire.room_url(shard["base"], name, room) for name, room, _, _ in members]
    connections = await load.open_all(wire, urls)
    joined = zip(connections, members, strict=True)
    await asyncio.gather(*(wire.join(ws, room) for ws, (_, room, _, _) in joined))
    idle = load.Idle(wire)
    for ws in connections:
        idle.add(ws)
    await idle.settle(_quiet(shard["room_size"]))
    totals = {"counted": 0, "duplicates": 0, "acks": 0}
    latencies: list[float] = []

    async def member(ws: ClientConnection, room: str, first: int, in_room: int) -> None:
        credit = asyncio.Semaphore(window)

        async def send() -> None:
            for seq in range(first, first + count):
                await credit.acquire()
                text = padded(f"~m{seq}~{time.monotonic():.6f}~", size)
                await ws.send(wire.chat(room, text, seq if ack else None))

        sender = asyncio.create_task(send())
        got: set[int] = set()
        acks = 0
        frames = _frames(ws, wire)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                while len(got) < in_room * count or (ack and acks < count):
                    frame = await anext(frames)
                    if ack and wire.is_ack(frame):
                        acks += 1
                        continue
                    match = MESSAGE.search(frame)
                    if match is None:
                        continue
                    seq = int(match[1])
                    if seq in got:
                        totals["duplicates"] += 1
                        continue
                    got.add(seq)
                    latencies.append(time.monotonic() - float(match[2]))
                    if first <= seq < first + count:  # its own, back: room for the next
                        credit.release()
        except TimeoutError:
            pass
        sender.cancel()
        totals["counted"] += len(got)
        totals["acks"] += acks

    await gate.ready()
    talking = zip(connections, members, strict=True)
    await asyncio.gather(*(member(ws, room, first, k) for ws, (_, room, first, k) in talking))
    elapsed = gate.elapsed()
    gate.report(totals | {"latencies": latencies, "elapsed": elapsed})
    await load.close_all(connections)
    return {}


def chat(
    server: Running,
    room_size: int = 2,
    connections: int = 100,
    messages: int = 100,
    *,
    ack: bool = False,
    window: int = 4,
    size: int = SIZE,
    workers: int = 2,
) -> Result:
    """The message a chat sends: ``connections`` in rooms of ``room_size``, each sending
    ``messages`` ``send-message`` events (``ack``: each asking for an acknowledgement),
    ``window`` in flight; everyone in a room gets every message of it, their own too."""
    rooms = max(1, connections // room_size)
    members = [
        [f"c{i}", f"r{i // room_size}", i * messages, room_size] for i in range(rooms * room_size)
    ]
    shards = [
        {
            "base": server.base,
            "wire": server.peer.wire,
            "members": part,
            "room_size": room_size,
            "count": messages,
            "window": window,
            "size": size,
            "ack": ack,
        }
        for part in load.split(members, workers)
    ]
    phase = load.run(_chat_job, shards, server)
    counted = sum(r["counted"] for r in phase.results)
    acks = sum(r["acks"] for r in phase.results)
    plural = "s" if room_size > 1 else ""
    return _result(
        "chat",
        f"rooms of {room_size} member{plural}, " + ("ack" if ack else "no ack"),
        server,
        phase,
        counted,
        expected=len(members) * room_size * messages,
        duplicates=sum(r["duplicates"] for r in phase.results),
        latency_ms=_summary_ms([x for r in phase.results for x in r["latencies"]]),
        details={
            "room_size": room_size,
            "connections": len(members),
            "messages_each": messages,
            "ack": ack,
            "acks": acks,
            "acks_expected": len(members) * messages if ack and WIRES[server.peer.wire].acks else 0,
        },
    )


# -- memory ----------------------------------------------------------------------------


async def _idle_job(shard: dict[str, Any], gate: Gate) -> dict[str, Any]:
    wire = WIRES[shard["wire"]]
    urls = [wire.echo_url(shard["base"], user) for user in shard["users"]]
    started = time.perf_counter()
    connections = await load.open_all(wire, urls)
    opening = time.perf_counter() - started  # this worker's share, opened side by side
    await gate.ready()
    open_ = sum(ws.close_code is None for ws in connections)
    await load.close_all(connections)
    return {"counted": open_, "opening": opening}


def _settled_rss(server: Running) -> int:
    time.sleep(0.5)
    return server.rss()


def memory(server: Running, connections: int = 1000, *, workers: int = 2) -> Result:
    """Server RSS growth per idle connection (connected, and in Socket.IO terms connected
    to the default namespace), after a warm-up of a few connections."""

    def shards(prefix: str, n: int) -> list[dict[str, Any]]:
        return [
            {"base": server.base, "wire": server.peer.wire, "users": part}
            for part in load.split(_users(prefix, n), workers)
        ]

    load.run(_idle_job, shards("w", 20), server)  # warm-up: first-use allocations
    rss0 = _settled_rss(server)
    phase = load.run(_idle_job, shards("i", connections), server, at_ready=lambda: server.rss())
    counted = sum(r["counted"] for r in phase.results)
    grown = phase.at_ready - rss0
    opening = max(r["opening"] for r in phase.results)  # the workers open at once
    return _result(
        "memory",
        f"{connections} idle connections",
        server,
        phase,
        counted,
        expected=connections,
        duplicates=0,
        rss_per_connection=grown / connections,
        details={
            "rss_before": rss0,
            "rss_with_connections": phase.at_ready,
            "accept_seconds": opening,  # to open them all, handshakes included
        },
    )


# -- a class: 300 students in rooms of 10 ------------------------------------------------


async def _class_job(shard: dict[str, Any], gate: Gate) -> dict[str, Any]:
    wire = WIRES[shard["wire"]]
    count, think, size, room_size = (
        shard["count"],
        shard["think"],
        shard["size"],
        shard["room_size"],
    )
    students: list[list[Any]] = shard["students"]  # [index, name, room]
    urls = [wire.room_url(shard["base"], name, room) for _, name, room in students]
    rooms = sorted({room for _, _, room in students})
    idle = load.Idle(wire)
    opened = await asyncio.gather(
        *(
            load.open_all(
                wire,
                [u for u, (_, _, r) in zip(urls, students, strict=True) if r == room],
                lambda ws, room=room: wire.join(ws, room),
                idle,
            )
            for room in rooms
        )
    )
    by_room = {room: iter(part) for room, part in zip(rooms, opened, strict=True)}
    connections = [next(by_room[room]) for _, _, room in students]
    await idle.settle(_quiet(room_size))
    latencies: list[float] = []
    totals = {"counted": 0, "duplicates": 0, "typing": 0, "errors": 0}
    rng = random.Random(shard["seed"])

    async def student(ws: ClientConnection, index: int, room: str) -> None:
        async def chat() -> None:
            for i in range(count):
                await asyncio.sleep(rng.expovariate(1 / think))
                if (typing := wire.typing(room, True)) is not None:
                    await ws.send(typing)
                await asyncio.sleep(rng.uniform(0.1, 0.5) * think)
                text = padded(f"~m{index * 1000 + i}~{time.monotonic():.6f}~", size)
                await ws.send(wire.publish(room, text))

        async def read() -> None:
            got: set[int] = set()
            frames = _frames(ws, wire)
            try:
                async with asyncio.timeout(READ_TIMEOUT + 3 * count * think):
                    while len(got) < count * room_size:
                        frame = await anext(frames)
                        match = MESSAGE.search(frame)
                        if match is None:
                            totals["typing"] += TYPING in frame
                            totals["errors"] += frame.startswith('{"event":"error"')
                            continue
                        seq = int(match[1])
                        if seq in got:
                            totals["duplicates"] += 1
                            continue
                        got.add(seq)
                        latencies.append(time.monotonic() - float(match[2]))
            except TimeoutError:
                pass
            totals["counted"] += len(got)

        await asyncio.gather(chat(), read())

    await gate.ready()
    await asyncio.gather(
        *(student(ws, i, room) for ws, (i, _, room) in zip(connections, students, strict=True))
    )
    gate.report(totals | {"latencies": latencies})
    await load.close_all(connections)
    return {}


def classroom(
    server: Running,
    students: int = 300,
    *,
    room_size: int = 10,
    messages: int = 5,
    think: float = 1.0,
    size: int = SIZE,
    workers: int = 2,
) -> Result:
    """``students`` in rooms of ``room_size`` join, type and chat: each sends ``messages``
    after a think time of ``think`` seconds on average (exponential), a typing event
    first. Delivery latency is measured over every delivery."""
    if students % room_size:
        raise ValueError("students must fill whole rooms")
    if not 0 < messages < 1000:
        raise ValueError("messages must be 1 to 999 per student")
    everyone = [[i, f"s{i}", f"table{i // room_size}"] for i in range(students)]
    shards = [
        {
            "base": server.base,
            "wire": server.peer.wire,
            "students": part,
            "count": messages,
            "think": think,
            "size": size,
            "room_size": room_size,
            "seed": n,
        }
        for n, part in enumerate(load.split(everyone, workers))
    ]
    phase = load.run(_class_job, shards, server)
    counted = sum(r["counted"] for r in phase.results)
    return _result(
        "class",
        f"{students} students, rooms of {room_size}",
        server,
        phase,
        counted,
        expected=students * messages * room_size,
        duplicates=sum(r["duplicates"] for r in phase.results),
        latency_ms=_summary_ms([x for r in phase.results for x in r["latencies"]]),
        details={
            "students": students,
            "room_size": room_size,
            "messages_each": messages,
            "think_s": think,
            "typing_events_received": sum(r["typing"] for r in phase.results),
            "error_events_received": sum(r["errors"] for r in phase.results),
        },
    )
