"""``rtlab serve --workers N --redis URL``: N server processes on one port.

Each worker is an ordinary ``rtlab serve`` bound with ``SO_REUSEPORT``, so the kernel
spreads new connections over them; their rooms are one through Redis. The first
worker prints the usual banner; this process watches the others, starts again one
that dies, and passes Ctrl-C or SIGTERM on to all of them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

RESTART_DELAY = 1.0  # seconds before a worker that died is started again
STOP_TIMEOUT = 30.0  # seconds the workers have to stop after SIGTERM, before SIGKILL


def free_shared_port(host: str) -> tuple[socket.socket, int]:
    """A port that several processes may bind with SO_REUSEPORT. Keep the socket open
    while the workers run: it holds the port, and takes no connection (it never listens)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    return holder, holder.getsockname()[1]


def worker_args(argv: Sequence[str], port: int) -> list[str]:
    """The command line of one worker: ``argv`` without ``--workers``, on ``port``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return [*out, "--port", str(port), "--reuse-port"]


def run(argv: Sequence[str], workers: int, host: str, port: int) -> int:
    """Start ``workers`` processes and supervise them until Ctrl-C or SIGTERM."""
    holder = None
    if port == 0:
        holder, port = free_shared_port(host)
    command = [sys.executable, "-m", "rtlab.cli", *worker_args(argv, port)]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn(first: bool) -> subprocess.Popen[bytes]:
        # Only the first worker speaks; the others would print the same banner.
        output = None if first else subprocess.DEVNULL
        return subprocess.Popen(command, stdout=output, stderr=output)

    processes = [spawn(i == 0) for i in range(workers)]
    print(f"rtlab serve: {workers} worker processes on port {port}", flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(processes):
                code = process.poll()
                if code is not None and not stopping:
                    time.sleep(RESTART_DELAY)
                    if stopping:  # SIGTERM came meanwhile: nothing to start again
                        break
                    processes[i] = spawn(False)
                    print(f"worker {i + 1} exited with {code}; started again", flush=True)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = stopped(processes, time.monotonic() + STOP_TIMEOUT)
        if holder is not None:
            holder.close()
    print(f"stopped {workers} workers", flush=True)
    # Stopped by a signal before it could set its handler (still starting): fine too.
    return 0 if all(code in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes) else 1


def stopped(processes: Sequence[subprocess.Popen[bytes]], deadline: float) -> list[int]:
    """Each worker's exit status, waiting until ``deadline`` (``time.monotonic()``); one
    still running then is killed, said, and counted as failed (status 1 for the lot)."""
    codes = []
    for i, process in enumerate(processes):
        try:
            codes.append(process.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(f"worker {i + 1} did not stop within {STOP_TIMEOUT:g} s; killed", flush=True)
            codes.append(1)
    return codes
