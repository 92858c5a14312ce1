"""``rtlab serve`` as a process of its own, measured from outside as an operator would:
its memory (``/proc/PID/status``: VmRSS now, VmHWM the peak), its open descriptors
(``/proc/PID/fd``) and limits, its output and its log (stderr). Used by the storm of bad
input (tests/aio/test_storm.py) and the attack suite (tests/e2e/test_attacks.py)."""

from __future__ import annotations

import os
import re
import resource
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Served:
    """``python -m rtlab serve`` on 127.0.0.1, port 0, with ``options``; stopped by ``stop``."""

    def __init__(self, options: Sequence[str], *, nofile: int | None = None) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        command = [sys.executable, "-m", "rtlab", "serve", "--host", "127.0.0.1", "--port", "0"]

        def limit() -> None:  # a lower soft limit on descriptors, as a default shell has
            if nofile is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        self.process = subprocess.Popen(
            [*command, *options],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=0,
            preexec_fn=limit,
        )
        self.output = b""
        self.log = ""
        found = self._read_until(rb"events\s+ws://127\.0\.0\.1:(\d+)/ws", timeout=30)
        self.port = int(found.group(1))
        self.url = f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_until(self, pattern: bytes, timeout: float) -> re.Match[bytes]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.output)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise RuntimeError(f"rtlab serve did not start: {self.output!r} {self.errors()}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                self.output += os.read(self.process.stdout.fileno(), 4096)
        return found

    def memory(self, name: str = "VmRSS") -> int:
        """A size from /proc/PID/status in bytes: VmRSS now, VmHWM the peak."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(rf"^{name}:\s+(\d+) kB$", status, re.MULTILINE)
        assert found is not None, status
        return int(found.group(1)) * 1024

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile(self) -> tuple[int, int | None]:
        """The process's soft and hard limits on open files (None: unlimited)."""
        limits = Path(f"/proc/{self.pid}/limits").read_text()
        found = re.search(r"^Max open files\s+(\d+)\s+(\d+|unlimited)", limits, re.MULTILINE)
        assert found is not None, limits
        hard = found.group(2)
        return int(found.group(1)), None if hard == "unlimited" else int(hard)

    def alive(self) -> bool:
        return self.process.poll() is None

    def errors(self) -> str:
        """What it wrote to stderr (its log), also once stopped."""
        if self.stderr.closed:
            return self.log
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as Ctrl-C would; SIGKILL if it does not end within 10 s. Its exit
        status; the rest of its output joins ``output``, its log stays in ``errors()``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        assert self.process.stdout is not None
        if not self.process.stdout.closed:
            self.output += self.process.stdout.read()
            self.process.stdout.close()
        if not self.stderr.closed:
            self.log = self.errors()
            self.stderr.close()
        return self.process.returncode
