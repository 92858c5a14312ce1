"""``rtlab bench``: every scenario against every server under test, side by side, in one run.

rtlab bench                       # the full run (docs/benchmarks.md): about 9 minutes
rtlab bench --quick               # small sizes: under a minute
rtlab bench --scenario echo --servers rtlab,websockets --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtlab.bench.peers import Running
    from rtlab.bench.scenarios import Result

# memory first: fresh servers
SCENARIOS = ("memory", "echo", "latency", "fanout", "chat", "redis", "workers", "slow", "class")
SERVERS = ("rtlab", "websockets", "websockets-json", "socketio", "node-ws", "node-socketio")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs."""

    echo_connections: tuple[int, ...] = (1, 10, 100)
    # round trips per size, over all its connections: over a second of CPU for the
    # fastest server (rtlab, about 120,000 a CPU second), so that a rate per CPU second is
    # read off enough clock ticks
    echo_messages: int = 150_000
    echo_window: int = 8
    latency_messages: int = 5_000
    # members, messages: 300,000 to 600,000 deliveries each (ditto: rtlab delivers up to
    # 350,000 a CPU second)
    fanout: tuple[tuple[int, int], ...] = ((10, 30_000), (100, 5_000), (1_000, 600))
    fanout_window: int = 4
    # rooms of N members, connections, messages each: 100,000 deliveries in rooms of 1,
    # 200,000 in rooms of 2, 600,000 in rooms of 10 (where deliveries are cheapest), so that
    # the fastest server still spends over a second of CPU on each
    chat: tuple[tuple[int, int, int], ...] = ((1, 100, 1_000), (2, 100, 1_000), (10, 100, 600))
    chat_window: int = 4
    # processes, room of N members, messages: rooms across processes on one Redis
    redis: tuple[tuple[int, int, int], ...] = ((2, 10, 10_000), (2, 100, 3_000), (4, 100, 3_000))
    # the same with a mid on each message, as rtlab's reconnecting client sends (rtlab only)
    redis_mids: tuple[tuple[int, int, int], ...] = ((2, 10, 10_000),)
    # rtlab serve --workers N (N, room of, messages): throughput and efficiency
    workers: tuple[tuple[int, int, int], ...] = ((1, 100, 1_500), (2, 100, 1_500))
    memory_connections: int = 10_000
    slow_members: int = 5
    slow_messages: int = 20_000
    slow_size: int = 400
    class_students: int = 300
    class_messages: int = 5
    class_think: float = 1.0
    size: int = 64


FULL = Sizes()
QUICK = Sizes(
    echo_messages=2_000,
    latency_messages=500,
    fanout=((10, 200), (100, 20)),
    chat=((1, 20, 100), (10, 20, 10)),
    redis=((2, 10, 200), (2, 100, 20)),
    redis_mids=((2, 10, 200),),
    workers=((1, 100, 20), (2, 100, 20)),
    memory_connections=200,
    slow_members=10,
    slow_messages=500,
    class_messages=2,
    class_think=0.5,
)
TINY = Sizes(  # for tests: every code path, a few messages
    echo_connections=(1, 3),
    echo_messages=30,
    latency_messages=20,
    fanout=((3, 10),),
    chat=((2, 4, 3),),
    redis=((2, 4, 5),),
    redis_mids=((2, 4, 5),),
    workers=((1, 4, 5), (2, 4, 5)),
    memory_connections=10,
    slow_members=3,
    slow_messages=20,
    class_students=20,
    class_messages=2,
    class_think=0.02,
)


@dataclass
class Run:
    """A bench run's results, each peer's status (``ok`` or why not) and any failures."""

    results: list[Result] = field(default_factory=list)
    peers: dict[str, str] = field(default_factory=dict)
    loops: dict[str, str] = field(default_factory=dict)  # the event loop of each server
    failures: list[str] = field(default_factory=list)


def steps(
    scenario: str, sizes: Sizes, workers: int
) -> list[tuple[Callable[[Running], list[Result]], str | None]]:
    """The measurements of one scenario: (measure a server, what the server needs:
    ``"rooms"``, ``"redis"`` (rooms across processes), ``"serve"`` (this checkout's
    ``rtlab serve``, which the step starts itself), or nothing)."""
    from rtlab.bench import scenarios as s

    if scenario == "echo":
        return [
            (
                lambda srv, c=c: [
                    s.echo(
                        srv,
                        c,
                        sizes.echo_messages,
                        window=sizes.echo_window,
                        size=sizes.size,
                        workers=workers,
                    )
                ],
                None,
            )
            for c in sizes.echo_connections
        ]
    if scenario == "latency":
        return [(lambda srv: [s.latency(srv, sizes.latency_messages, size=sizes.size)], None)]
    if scenario == "fanout":
        return [
            (
                lambda srv, m=m, n=n: [
                    s.fanout(
                        srv, m, n, window=sizes.fanout_window, size=sizes.size, workers=workers
                    )
                ],
                "rooms",
            )
            for m, n in sizes.fanout
        ]
    if scenario == "chat":
        return [
            (
                lambda srv, k=k, n=n, m=m, ack=ack: [
                    s.chat(
                        srv,
                        k,
                        n,
                        m,
                        ack=ack,
                        window=sizes.chat_window,
                        size=sizes.size,
                        workers=workers,
                    )
                ],
                "rooms",
            )
            for k, n, m in sizes.chat
            for ack in (False, True)
        ]
    if scenario == "redis":
        from rtlab.bench.scale_out import scale_out

        return [
            (
                lambda srv, k=k, m=m, n=n, mids=mids: [
                    scale_out(
                        srv.peer.name,
                        k,
                        m,
                        n,
                        window=sizes.fanout_window,
                        workers=workers,
                        mids=mids,
                    )
                ],
                "redis_mids" if mids else "redis",
            )
            for mids, redis in ((False, sizes.redis), (True, sizes.redis_mids))
            for k, m, n in redis
        ]
    if scenario == "workers":
        from rtlab.bench.scale_out import workers_scale

        return [
            (
                lambda srv, k=k, m=m, n=n: [
                    workers_scale(k, m, n, window=sizes.fanout_window, workers=workers)
                ],
                "serve",
            )
            for k, m, n in sizes.workers
        ]
    if scenario == "memory":
        return [(lambda srv: [s.memory(srv, sizes.memory_connections, workers=workers)], None)]
    if scenario == "slow":
        return [
            (
                lambda srv: s.slow_consumer(
                    srv,
                    sizes.slow_members,
                    sizes.slow_messages,
                    size=sizes.slow_size,
                    workers=workers,
                ),
                "rooms",
            )
        ]
    if scenario == "class":
        return [
            (
                lambda srv: [
                    s.classroom(
                        srv,
                        sizes.class_students,
                        messages=sizes.class_messages,
                        think=sizes.class_think,
                        size=sizes.size,
                        workers=workers,
                    )
                ],
                "rooms",
            )
        ]
    raise ValueError(f"no scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")


def run(
    servers: Sequence[str] = SERVERS,
    scenarios: Sequence[str] = SCENARIOS,
    sizes: Sizes = QUICK,
    *,
    workers: int = 2,
    progress: bool = False,
    strict: bool = False,
) -> Run:
    """Start every server, then measure each scenario and size on each in turn.

    Measuring one size on all servers back to back keeps them under the same
    background load. ``strict``: raise on the first failure instead of noting it."""
    from tqdm import tqdm

    from rtlab.bench import peers

    outcome = Run()
    running: dict[str, Running] = {}
    try:
        for name in servers:
            try:
                running[name] = peers.start(name)
                outcome.peers[name] = "ok"
                outcome.loops[name] = running[name].loop
            except peers.NotInstalled as why:
                outcome.peers[name] = f"not installed: {why}"
                print(f"rtlab bench: {name} not installed: {why}", file=sys.stderr)
        plan = [
            (scenario, measure, server)
            for scenario in sorted(set(scenarios), key=SCENARIOS.index)
            for measure, needs in steps(scenario, sizes, workers)
            for server in running.values()
            if needs is None or getattr(server.peer, needs)
            if not server.peer.only or scenario in server.peer.only
        ]
        bar = tqdm(plan, desc="rtlab bench", unit="step", file=sys.stderr, disable=not progress)
        for scenario, measure, server in bar:
            bar.set_postfix_str(f"{scenario} on {server.peer.name}")
            try:
                outcome.results.extend(measure(server))
            except Exception as error:
                if strict:
                    raise
                note = f"{scenario} on {server.peer.name}: {type(error).__name__}: {error}"
                outcome.failures.append(note)
                print(f"rtlab bench: {note}", file=sys.stderr)
    finally:
        for server in running.values():
            server.stop()
    return outcome


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``rtlab bench`` on the ``rtlab`` command's subparsers."""
    bench = commands.add_parser(
        "bench",
        help="compare rtlab's server with websockets, Socket.IO and Node",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    bench.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run this scenario only; repeat for several (default: all)",
    )
    bench.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated servers to measure (default {','.join(SERVERS)})",
    )
    bench.add_argument(
        "--workers", type=int, default=2, help="load generator processes (default 2)"
    )
    bench.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        help="the event loop of every Python server (default asyncio, as rtlab serve; "
        "uvloop must be installed)",
    )
    bench.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also measure the lab server of another rtlab checkout (say, a worktree of "
        "an older commit) as the server 'baseline': rtlab/peer is then new over old",
    )
    bench.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    bench.add_argument("--plot", metavar="FILE", help="save a plot of the results (PNG)")


def main(args: argparse.Namespace) -> int:
    """Run ``rtlab bench`` as parsed; 0 when every measurement counted everything back."""
    from rtlab.bench import report

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown or not servers:
        print(
            f"rtlab bench: unknown server {', '.join(unknown) or '(none)'}; "
            f"choose from {','.join(SERVERS)}",
            file=sys.stderr,
        )
        return 2
    if args.workers < 1:  # usage_error: set by rtlab.cli, "rtlab bench: error: ..."
        args.usage_error(f"argument --workers: must be at least 1, got {args.workers}")
    sizes = QUICK if args.quick else FULL
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        print("rtlab bench: --loop uvloop needs uvloop: pip install uvloop", file=sys.stderr)
        return 2
    if args.loop:  # read by every Python server (rtlab/bench/servers/__init__.py)
        os.environ["RTLAB_LOOP"] = args.loop
    if args.baseline:
        from rtlab.bench import peers

        try:
            peers.add_baseline(args.baseline)
        except peers.NotInstalled as error:
            args.usage_error(f"argument --baseline: {error}")
        servers.append(peers.BASELINE)
    scenarios = args.scenario or list(SCENARIOS)
    outcome = run(servers, scenarios, sizes, workers=args.workers, progress=True)
    to_stdout = args.json == "-"
    text = report.table(outcome.results, outcome.peers)
    loops = ", ".join(f"{name} on {loop}" for name, loop in outcome.loops.items())
    text += f"\nevent loops: {loops}"
    print(text, file=sys.stderr if to_stdout else sys.stdout, flush=True)
    command = shlex.join(["rtlab", "bench", *sys.argv[2:]])
    if args.json:
        settings = {"preset": "quick" if args.quick else "full", "workers": args.workers}
        settings |= {"sizes": asdict(sizes), "scenarios": scenarios, "servers": servers}
        settings["loops"] = outcome.loops
        document = report.document(outcome.results, outcome.peers, settings, command)
        document["failures"] = outcome.failures
        data = json.dumps(document, indent=1)
        if to_stdout:
            print(data)
        else:
            with open(args.json, "w") as file:
                file.write(data + "\n")
    if args.plot:
        report.plot(outcome.results, args.plot)
    complete = all(r.complete for r in outcome.results)
    return 0 if complete and not outcome.failures else 1
