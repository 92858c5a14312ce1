"""The tutorial's Node code, run as written: ``node -e CODE`` beside the ``ws`` and
``socket.io`` that ``rtlab bench`` installs from its committed lockfile (``npm ci`` on
first use, see peers.py). Lessons show the code they run.

The code must print ``listening PORT`` once it listens; everything it prints is kept in
``output`` (a reader thread drains the pipe, nothing is printed from it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from rtlab.bench.peers import NotInstalled, node_folder, stop_process

INSTALL = (
    "install Node.js 18 or newer with npm (Debian or Ubuntu: sudo apt install nodejs npm; "
    "macOS: brew install node; elsewhere: https://nodejs.org), then run this cell again"
)


@dataclass
class NodeServer:
    """A Node process serving on 127.0.0.1: its port and what it printed so far."""

    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_for_output(self, lines: int, timeout: float = 5.0) -> list[str]:
        """What it printed, once it printed at least ``lines`` lines (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.output) < lines and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a pipe another thread drains
        return list(self.output)

    def stop(self) -> None:
        stop_process(self.process)

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else "stopped"
        return f"<NodeServer {self.url} {state}>"


def start_node(code: str, timeout: float = 60) -> NodeServer:
    """Run ``code`` with node next to the installed packages; raise :class:`NotInstalled`
    (saying how to install Node.js) where node or npm is missing."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        raise NotInstalled(f"{' and '.join(missing)} not found: {INSTALL}")
    folder = node_folder(log=False)
    process = subprocess.Popen(
        [shutil.which("node") or "node", "-e", code],
        cwd=folder,  # require('ws') finds node_modules here
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    server = NodeServer(process, 0)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.match(r"listening (\d+)", line)
            if match and not server.port:
                server.port = int(match[1])
                ready.set()
            else:
                server.output.append(line.rstrip("\n"))
        ready.set()

    threading.Thread(target=read, name="rtlab-node-output", daemon=True).start()
    ready.wait(timeout)
    if not server.port:
        server.stop()
        raise RuntimeError(f"node did not start: {' '.join(server.output)[-1000:]}")
    return server
