"""What the attack suite (test_attacks.py) needs: the server as a process, measured from
outside, an honest bystander, and raw sockets that speak the protocol by hand.

``rtlab serve`` runs as a process of its own (tests/served.py), so that its memory and
its open descriptors are read as an operator would read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rtlab.core import frames, handshake, tokens
from rtlab.core.envelope import encode_event
from tests.served import Served

MiB = 2**20
ANSWER_TIMEOUT = 5.0  # the bystander's every answer must come within this (a hang guard)
SECRET = "attack-suite-secret"


def token(user: str) -> str:
    """A valid class token for ``user`` (an attacker is a student of the class too)."""
    return tokens.issue(SECRET, user, 3600, time.time())


class Sampler:
    """Samples the server's RSS and descriptors every 20 ms in a thread: their peaks."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.peak_fds = server.descriptors()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError):
                self.peak_fds = max(self.peak_fds, self.server.descriptors())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Bystander:
    """An honest user in room ``calm``: a message every 0.2 s, each answered by its ack
    and its own echo (``receive-message``) before the next goes, and one more once told
    to stop. Runs in a thread of its own with a blocking client, so that the attackers'
    event loop cannot delay it."""

    url: str
    user: str = "bystander"
    secret: bool = False
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Bystander:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(2 * ANSWER_TIMEOUT):
            raise RuntimeError(f"the bystander could not join: {self.problems}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3 * ANSWER_TIMEOUT)

    @property
    def lost(self) -> int:
        return self.sent - len(self.latencies)

    def _run(self, ready: threading.Event) -> None:
        who = f"token={token(self.user)}" if self.secret else f"user={self.user}"
        try:
            with connect(f"{self.url}/ws?{who}", open_timeout=ANSWER_TIMEOUT) as ws:
                ws.send(encode_event("join-room", "calm", id=0))
                self._wait(ws, lambda m: m.get("ack") == 0)
                ready.set()
                for n in range(1, 10**9):
                    stopping = self._stop.wait(0.2)
                    self._round_trip(ws, n)  # the last one after the attack, always
                    if stopping:
                        return
        except (OSError, ConnectionClosed, InvalidStatus, TimeoutError) as error:
            self.problems.append(f"the bystander's connection failed: {error!r}")

    def _round_trip(self, ws: ClientConnection, n: int) -> None:
        text = f"still here {n}"
        data = {"roomId": "calm", "message": text}
        began = time.monotonic()
        self.sent += 1
        ws.send(encode_event("send-message", data, id=n, mid=f"b{n}"))
        wanted = {"ack", "echo"}
        while wanted:
            message = self._wait(ws, lambda m: True)
            if message.get("ack") == n:
                if "error" in message:
                    self.problems.append(f"message {n} refused: {message['error']}")
                    return
                wanted.discard("ack")
            elif message.get("event") == "receive-message" and message["data"]["message"] == text:
                wanted.discard("echo")
        self.latencies.append(time.monotonic() - began)

    def _wait(
        self, ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer within {ANSWER_TIMEOUT} s")
            message = json.loads(ws.recv(timeout=left))
            if wanted(message):
                return message


@dataclass
class Figures:
    """One attack's figures, for the assertions and the printed table (docs/hardening.md)."""

    attack: str
    inputs: int = 0  # messages, frames or requests the attackers sent
    connections: int = 0  # attacker connections opened
    at_once: int = 0  # attacker connections open at the same time, at most
    idle_rss: int = 0
    peak_rss: int = 0
    idle_fds: int = 0
    peak_fds: int = 0
    end_fds: int = 0
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0  # from ready() to the attackers gone
    note: str = ""

    def row(self) -> str:
        ms = sorted(self.latencies) or [0.0]
        return (
            f"| {self.attack} | {self.inputs:,} | {self.connections:,} ({self.at_once:,} at once)"
            f" | {self.idle_rss / MiB:.0f} → {self.peak_rss / MiB:.0f} MiB"
            f" | {self.idle_fds} → {self.peak_fds} → {self.end_fds}"
            f" | {statistics.median(ms) * 1000:.0f} / {ms[-1] * 1000:.0f} ms"
            f" ({len(self.latencies)}) | {self.lost} | {self.seconds:.1f} s | {self.note} |"
        )


HEADER = (
    "| attack | inputs | connections | RSS idle → peak | descriptors idle → peak → after"
    " | bystander median / max (round trips) | lost | time | note |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check()`` every 50 ms until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- raw sockets ------------------------------------------------------------------------------


class RawSocket:
    """A WebSocket client by hand: rtlab.core.handshake, then rtlab.core.frames over TCP.

    It never reads after the handshake unless asked: the attacker who never reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    @classmethod
    async def open(cls, port: int, path: str, *, source: str = "127.0.0.1") -> RawSocket:
        """Open from the address ``source`` and upgrade; raises handshake.HandshakeError
        if refused."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(source, 0), limit=2**22
        )
        request, key = handshake.build_request(f"127.0.0.1:{port}", path)
        writer.write(request)
        raw = cls(reader, writer)
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                while (parts := handshake.split_head(raw.buffer)) is None:
                    chunk = await reader.read(4096)
                    if not chunk:
                        raise handshake.HandshakeError("the server closed during the handshake")
                    raw.buffer += chunk
            head, raw.buffer = parts
            handshake.parse_response(head, key)
        except BaseException:
            writer.transport.abort()
            raise
        return raw

    async def send(self, data: bytes, timeout: float) -> bool:
        """Write and wait for the kernel to take it; False if it did not within ``timeout``
        (the server stopped reading) or the connection is gone."""
        if self.writer.transport.is_closing() or self.reader.at_eof():
            return False  # closed by the server: asyncio would drop the bytes silently
        try:
            self.writer.write(data)
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except (ConnectionError, TimeoutError):
            return False
        return not self.writer.transport.is_closing()

    def abort(self) -> None:
        self.writer.transport.abort()


def masked(frame: frames.Frame, count: int = 1) -> bytes:
    """``count`` copies of a frame as a client sends it (masked)."""
    return frames.encode(frame, frames.generate_mask()) * count


async def http_status(port: int, request: bytes, timeout: float = ANSWER_TIMEOUT) -> int | None:
    """Send raw bytes as an HTTP request; the status of the answer (None: none in time)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout):
            line = await reader.readline()
    except (ConnectionError, TimeoutError):
        return None
    finally:
        writer.transport.abort()
    found = re.match(rb"HTTP/1\.[01] (\d{3}) ", line)
    return int(found.group(1)) if found else None


@contextlib.contextmanager
def served(options: Sequence[str], **kwargs: int) -> Iterator[Served]:
    # Messages of a notebook's server's 1 MiB (rtlab serve allows 64 KiB by default):
    # the memory budget holds at the largest, which the attacks send.
    server = Served(["--max-size", str(2**20), *options], **kwargs)
    try:
        yield server
    finally:
        server.stop()
