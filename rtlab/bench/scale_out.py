"""The ``redis`` and ``workers`` scenarios: rooms across server processes on one Redis.

Each server family runs 2 or 4 processes behind one redis-server of the bench's own
(rtlab ``LabServer(redis=...)``, python-socketio's ``AsyncRedisManager``, Node Socket.IO
with ``@socket.io/redis-adapter``); a room's members take turns over the processes, one
of them publishes, and every delivery is counted back exactly once. Deliveries are per
CPU second of every process *and* redis-server; the Redis commands each room message
cost are counted from Redis's own statistics.

``workers`` runs what an instructor runs, ``rtlab serve --workers N --redis URL`` (this
checkout's), with 1 and 2 workers on one port: the kernel spreads the room's members over
them, and the throughput (deliveries a second) of N workers over N times one worker's is
their efficiency on this machine.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

from rtlab.aio.descriptors import raise_limit
from rtlab.bench import peers
from rtlab.bench.peers import Peer, Running
from rtlab.bench.redis_server import RedisServer
from rtlab.bench.scenarios import Result, fanout


@dataclass
class Cluster:
    """Server processes of one family and their Redis, measured as one server."""

    peer: Peer
    processes: list[Running]
    redis: RedisServer

    @property
    def base(self) -> str:
        return self.processes[0].base

    @property
    def bases(self) -> list[str]:
        return [p.base for p in self.processes]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.processes) + self.redis.cpu_seconds()

    def rss(self) -> int:
        return sum(p.rss() for p in self.processes)


@contextlib.contextmanager
def cluster(name: str, processes: int) -> Iterator[Cluster]:
    """``processes`` of the peer ``name`` on a fresh redis-server; all stopped at the end."""
    with RedisServer() as redis:
        started: list[Running] = []
        try:
            for _ in range(processes):
                started.append(peers.start(name, redis=redis.url))
            yield Cluster(peers.PEERS[name], started, redis)
        finally:
            for process in started:
                process.stop()


def scale_out(
    name: str,
    processes: int,
    members: int,
    messages: int,
    *,
    window: int = 4,
    workers: int = 2,
    mids: bool = False,
) -> Result:
    """One publisher, a room of ``members`` spread over ``processes`` servers on one Redis
    (``mids``: a mid on each message, as rtlab's reconnecting client sends them)."""
    with cluster(name, processes) as servers:
        redis = servers.redis
        result = fanout(
            servers,
            members,
            messages,
            window=window,
            workers=workers,
            bases=servers.bases,
            at_ready=redis.commands,  # once everyone joined: the load's commands only
            mids=mids,
        )
        commands = redis.commands() - result.details.pop("at_ready")
    result.scenario = "redis"
    result.variant = f"{processes} processes, {result.variant}"
    result.details |= {
        "processes": processes,
        "redis_commands": commands,
        # Each room message, and what heartbeats and the like cost meanwhile.
        "redis_commands_per_message": commands / messages,
    }
    return result


@dataclass
class Served:
    """``rtlab serve --workers N`` and its Redis, measured as one server: the supervising
    process, its workers and redis-server."""

    peer: Peer
    process: subprocess.Popen[str]
    port: int
    redis: RedisServer
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        supervisor = psutil.Process(self.process.pid)
        return [supervisor, *supervisor.children(recursive=True)]

    def cpu_seconds(self) -> float:
        times = [p.cpu_times() for p in self.processes()]
        return sum(t.user + t.system for t in times) + self.redis.cpu_seconds()

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self.processes())

    def connections(self) -> list[int]:
        """The clients' connections each worker holds (the kernel chose)."""
        workers = self.processes()
        workers = workers[1:] if len(workers) > 1 else workers  # not the supervisor
        return [
            sum(
                1
                for c in w.net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == self.port
            )
            for w in workers
        ]


def _listening(process: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        for conn in process.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                return True
    return False


@contextlib.contextmanager
def served(workers: int, timeout: float = 60) -> Iterator[Served]:
    """``rtlab serve --workers N`` on a fresh redis-server, every worker listening (the
    load may start); stopped with SIGTERM, as an instructor's Ctrl-C, at the end."""
    with RedisServer() as redis:
        command = [sys.executable, "-m", "rtlab.cli", "serve", "--port", "0"]
        command += ["--workers", str(workers), "--redis", redis.url, "--rate-limit", "off"]
        command += ["--max-connections-per-address", "100000", "--log-level", "warning"]
        command += ["--max-handshakes-per-address", "100000"]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=raise_limit,
        )
        lines: list[str] = []
        announced = threading.Event()

        def read() -> None:  # keeps the pipe drained
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                announced.set()
            announced.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            deadline = time.monotonic() + timeout
            port = None
            while port is None or not _all_listening(process, workers, port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rtlab serve did not start: {''.join(lines)[-1000:]}")
                # "N worker processes on port P"; one worker is the server itself
                said = "".join(lines)
                if port is None and (found := re.search(r"(?:on port |server on \S+:)(\d+)", said)):
                    port = int(found[1])
                time.sleep(0.05)
            yield Served(peers.PEERS["rtlab"], process, port, redis, lines)
        finally:
            peers.stop_process(process)


def _all_listening(process: subprocess.Popen[str], workers: int, port: int) -> bool:
    """Whether every worker listens (one worker: ``rtlab serve`` itself, no supervisor)."""
    if workers == 1:
        return _listening(psutil.Process(process.pid), port)
    children = psutil.Process(process.pid).children()
    return len(children) == workers and all(_listening(c, port) for c in children)


def workers_scale(
    processes: int, members: int, messages: int, *, window: int = 4, workers: int = 2
) -> Result:
    """One publisher and a room of ``members`` on ``rtlab serve --workers processes``,
    every connection to its one port (``workers``: load generator processes)."""
    with served(processes) as server:
        result = fanout(
            server, members, messages, window=window, workers=workers, at_ready=server.connections
        )
    plural = "s" if processes > 1 else ""
    result.scenario = "workers"
    result.variant = f"{processes} worker{plural}, {result.variant}"
    result.details |= {
        "processes": processes,
        "connections_per_worker": result.details.pop("at_ready"),
    }
    return result
