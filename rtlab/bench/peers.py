"""The servers under test: each started as its own process on 127.0.0.1, port 0, and stopped.

A server prints ``listening PORT`` when it is ready (the Python ones add ``on LOOP``,
``asyncio`` or, with ``rtlab bench --loop uvloop``, ``uvloop``). The Node peers need
``ws`` and ``socket.io``: on first use ``npm ci`` installs the exact versions of
``servers/node/package-lock.json`` into a cache folder (``$RTLAB_CACHE/node``, else
``~/.cache/rtlab/node``). Without node or npm they are reported as not installed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

import psutil

from rtlab.aio.descriptors import raise_limit

NODE_FILES = ("package.json", "package-lock.json", "ws_echo.js", "socketio_rooms.js")


class NotInstalled(RuntimeError):
    """A peer that cannot run on this machine (say, no node): reported, never faked."""


@dataclass(frozen=True)
class Peer:
    """A server under test: its wire format, whether it has rooms, and how to start it."""

    name: str
    wire: str
    rooms: bool
    script: str  # a module of rtlab.bench.servers, or a .js file of servers/node
    description: str
    redis: bool = False  # its rooms can span processes on one Redis
    checkout: str | None = None  # another rtlab checkout to run the module from
    only: tuple[str, ...] = ()  # the scenarios it takes part in, if not every one
    serve: bool = False  # this checkout's rtlab: `workers` starts its `rtlab serve` itself

    @property
    def node(self) -> bool:
        return self.script.endswith(".js")

    @property
    def redis_mids(self) -> bool:
        """Whether its rooms span processes and its events carry mids (rtlab's alone)."""
        return self.redis and self.wire == "rtlab"


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer(
            "rtlab",
            "rtlab",
            True,
            "rtlab_server",
            "rtlab LabServer, protocol v1 on /ws",
            True,
            serve=True,
        ),
        Peer("websockets", "text", True, "websockets_server", "raw websockets, broadcast rooms"),
        Peer(
            "websockets-json",
            "json",
            True,
            "websockets_server",
            "raw websockets, the least a JSON chat does",
            only=("chat",),
        ),
        Peer("socketio", "socketio", True, "socketio_server", "python-socketio on aiohttp", True),
        Peer("node-ws", "text", False, "ws_echo.js", "the tutorial's Node ws echo"),
        Peer(
            "node-socketio", "socketio", True, "socketio_rooms.js", "the tutorial's Socket.IO", True
        ),
    )
}


BASELINE = "baseline"


def add_baseline(checkout: str) -> Peer:
    """A peer that runs the lab server of another rtlab checkout (an older commit, say),
    so that a change is measured against what it changed, side by side in one run."""
    root = Path(checkout).resolve()
    if not (root / "rtlab" / "bench" / "servers" / "rtlab_server.py").is_file():
        raise NotInstalled(f"{root} is not an rtlab checkout (no rtlab/bench/servers/)")
    peer = Peer(BASELINE, "rtlab", True, "rtlab_server", f"rtlab at {root}", True, str(root))
    PEERS[BASELINE] = peer
    return peer


def cache_folder() -> Path:
    root = os.environ.get("RTLAB_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "rtlab"


def node_folder(log: bool = True) -> Path:
    """A folder with the Node servers and their ``node_modules``; ``npm ci`` on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise NotInstalled(
            f"{missing} not found: install Node.js 18 or newer to bench the tutorial's servers"
        )
    source = resources.files("rtlab.bench.servers").joinpath("node")
    digest = hashlib.sha256()
    for name in NODE_FILES:
        digest.update(source.joinpath(name).read_bytes())
    folder = cache_folder() / "node" / digest.hexdigest()[:16]
    if not (folder / "node_modules" / ".package-lock.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in NODE_FILES:
            (folder / name).write_bytes(source.joinpath(name).read_bytes())
        if log:
            print(f"rtlab bench: npm ci into {folder} (first use)", file=sys.stderr, flush=True)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise NotInstalled(f"npm ci failed in {folder}: {done.stderr.strip()[-500:]}")
    return folder


def stop_process(process: subprocess.Popen) -> None:
    """Terminate ``process`` if it still runs, then kill it if it takes over 5 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Measured(Protocol):
    """What a scenario measures: one server process (:class:`Running`), or several
    behind a Redis (rtlab/bench/scale_out.py), as one."""

    peer: Peer

    @property
    def base(self) -> str: ...

    def cpu_seconds(self) -> float: ...

    def rss(self) -> int: ...


@dataclass
class Running:
    """A started server: its process (for CPU time and memory) and its base URL."""

    peer: Peer
    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)
    loop: str = "node"  # the event loop it runs on: asyncio or uvloop (Python), node

    @property
    def base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(name: str, timeout: float = 60, *, redis: str | None = None) -> Running:
    """Start the peer ``name`` (``redis``: its rooms span every process on that Redis);
    raise NotInstalled when it cannot run here."""
    peer = PEERS[name]
    env = dict(os.environ)
    if redis is not None:
        env["RTLAB_BENCH_REDIS"] = redis
    if peer.node:
        command = [shutil.which("node") or "node", str(node_folder() / peer.script)]
    elif peer.checkout is not None:
        # This bench server's code, on the other checkout's LabServer (first on the path).
        source = resources.files("rtlab.bench.servers").joinpath(f"{peer.script}.py")
        command = [sys.executable, "-c", source.read_text()]
        env["PYTHONPATH"] = os.pathsep.join([peer.checkout, *sys.path])
    else:
        command = [sys.executable, "-m", f"rtlab.bench.servers.{peer.script}"]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=peer.checkout,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        preexec_fn=raise_limit,  # every peer may open as many connections as rtlab
    )
    lines: list[str] = []
    found: list[int] = []
    loops: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not found and (match := re.match(r"listening (\d+)(?: on (\w+))?", line)):
                found.append(int(match[1]))
                loops.append(match[2] or "node")
                ready.set()
        ready.set()

    ready = threading.Event()
    threading.Thread(target=read, daemon=True).start()  # keeps the pipe drained
    ready.wait(timeout)
    if not found:
        process.kill()
        process.wait()
        raise RuntimeError(f"{name} did not start: {''.join(lines)[-1000:]}")
    return Running(peer, process, found[0], lines, loops[0])
