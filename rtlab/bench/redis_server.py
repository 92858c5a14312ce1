"""A redis-server for the scale-out scenario: its own process, a free loopback port, no disk.

Its CPU time counts with the servers' (rooms across processes cost Redis work too), and
``INFO commandstats`` says how many commands the servers ran through it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import psutil
import redis

from rtlab.bench.peers import NotInstalled, stop_process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """``redis-server`` on 127.0.0.1, started at once; ``stop()`` it (or use ``with``)."""

    def __init__(self, timeout: float = 20) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise NotInstalled("redis-server not found: install it (apt-get install redis-server)")
        self.port = free_port()
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.05)  # polling a real condition, bounded

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def commands(self) -> int:
        """Commands run so far (every kind, scripts counted once, as Redis counts them)."""
        stats = self.client.info("commandstats")
        return sum(int(entry["calls"]) for entry in stats.values())

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
