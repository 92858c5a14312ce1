"""The ``redis`` scenario: rooms across server processes that share one Redis.

Each server family runs 2 or 4 processes behind one redis-server of the bench's own
(rtlab ``LabServer(redis=...)``, python-socketio's ``AsyncRedisManager``, Node Socket.IO
with ``@socket.io/redis-adapter``); a room's members take turns over the processes, one
of them publishes, and every delivery is counted back exactly once. Deliveries are per
CPU second of every process *and* redis-server; the Redis commands each room message
cost are counted from Redis's own statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

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
