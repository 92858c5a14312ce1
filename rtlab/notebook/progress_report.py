"""What the checks tell a class server: each verdict, and only when a class server is set.

With ``RTLAB_SERVER`` and ``RTLAB_TOKEN`` set, or once a cell called
``rtlab.shared_server(url, token=...)`` (the last one asked for counts), every check
reports its verdict on ``/ws`` in namespace ``/progress``, as the student the token names::

    {"lesson": "handshake", "exercise": "accept_key", "passed": false, "attempt": 2,
     "run": "3f9a1c2e"}

the check's topic, the exercise, the verdict, how many times this kernel checked it, and
a random name for this kernel. Nothing else: not the code, not the message. An exercise
not done yet (its placeholder) is not an attempt and is not reported. Without a class
server, or without a token, nothing is sent.

Fire and forget: :func:`report` hands the verdict to a client on a background loop and
returns at once; it never raises, waits or prints. The client reconnects with backoff and
sends again what the server has not acknowledged, each report under one ``mid``, so the
server counts an attempt once (rtlab/core/progress.py counts ``(run, attempt)`` once too).
A refusal that retrying cannot change, such as an expired token, stops the client: later
reports are dropped, and :attr:`Reporter.refusal` says why.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import contextvars
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rtlab.core.backoff import Reconnection, schedule

if TYPE_CHECKING:
    from rtlab.aio.client import EventClient
    from rtlab.notebook.background import BackgroundLoop
    from rtlab.notebook.shared import SharedServer

# The client side is imported on the first report: every check imports this module, and
# without a class server it must cost nothing (rtlab.checks loads in milliseconds).
NAMESPACE = "/progress"
MAX_PENDING = 1000  # reports waiting for a first connection; past it the newest are dropped
RECONNECTION = Reconnection(delay=0.5, delay_max=5.0)
KEPT_ANNOUNCEMENTS = 20
EXIT_WAIT = 2.0  # seconds a script's exit may wait for its last reports
SERVER_VARIABLE = "RTLAB_SERVER"  # as rtlab.notebook.shared reads them
TOKEN_VARIABLE = "RTLAB_TOKEN"

_chosen: contextvars.ContextVar[SharedServer | None] = contextvars.ContextVar(
    "rtlab_class_server", default=None
)
_default: list[SharedServer] = []  # what report_to() set for the whole kernel
_reporters: dict[tuple[str, str], Reporter] = {}
_lock = threading.Lock()
_background: list[BackgroundLoop] = []


class Reporter:
    """One student's reports to one class server, sent from a background loop."""

    def __init__(self, server: SharedServer, background: BackgroundLoop) -> None:
        if not server.token:
            raise ValueError("a class server needs the student's token to report progress")
        self.server = server
        self.token = server.token
        self.user = server.user or "student"
        self.run = secrets.token_hex(4)  # this kernel
        self.refusal: str | None = None  # why the server turned us away for good
        self.dropped = 0  # reports never sent (over MAX_PENDING, or after a refusal)
        self.handed = 0  # reports handed to the client
        # what the instructor (or anyone) broadcast: broadcast-message's data, the last few
        self.announcements: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=KEPT_ANNOUNCEMENTS
        )
        self._attempts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._count = 0
        self._lock = threading.Lock()
        self._loop = background.loop
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._client: EventClient | None = None
        asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def report(self, lesson: str, exercise: str, passed: bool) -> dict[str, Any]:
        """Queue one verdict (from any thread, without waiting); the report queued."""
        with self._lock:
            self._attempts[lesson, exercise] += 1
            self._count += 1
            data = {
                "lesson": lesson,
                "exercise": exercise,
                "passed": passed,
                "attempt": self._attempts[lesson, exercise],
                "run": self.run,
            }
            mid = f"p-{self.run}-{self._count}"
        self._loop.call_soon_threadsafe(self._enqueue, data, mid)
        return data

    @property
    def unsent(self) -> int:
        """Reports made and not yet acknowledged by the server (nor dropped)."""
        queued = self._client.queued if self._client is not None else 0
        return self._count - self.dropped - self.handed + queued

    # -- on the background loop -------------------------------------------------------

    def _enqueue(self, data: dict[str, Any], mid: str) -> None:
        if self.refusal is not None or len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append({"data": data, "mid": mid})
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        from rtlab.aio.client import OfflineQueueFull, Refused

        self._wake = asyncio.Event()
        client = await self._connect()
        if client is None:
            return
        self._client = client
        client.on("broadcast-message", self.announcements.append)
        while True:
            while self._pending:
                entry = self._pending.popleft()
                try:
                    await client.emit("report", entry["data"], ns=NAMESPACE, mid=entry["mid"])
                    self.handed += 1
                except OfflineQueueFull:
                    self.dropped += 1
                except (Refused, ConnectionError):
                    self._stop(str(client.refusal or "the client is closed"))
                    return
            if client.closed:
                self._stop(str(client.refusal or "the client is closed"))
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # also notices a client closed meanwhile
                    await self._wake.wait()

    async def _connect(self) -> EventClient | None:
        """A connected client, trying again with backoff until the server answers; None
        after a refusal that retrying cannot change."""
        from websockets.exceptions import InvalidHandshake

        from rtlab.aio.client import EventClient, Refused

        for delay in schedule(RECONNECTION):
            try:
                return await EventClient.connect(
                    self.server.url,
                    self.user,
                    token=self.token,
                    reconnection=RECONNECTION,
                    open_timeout=5,
                )
            except Refused as refused:
                self._stop(str(refused))
                return None
            except (OSError, InvalidHandshake, TimeoutError):
                await asyncio.sleep(delay)
        return None

    def _stop(self, reason: str) -> None:
        self.refusal = reason
        self.dropped += len(self._pending)
        self._pending.clear()

    def __repr__(self) -> str:
        state = f"stopped: {self.refusal}" if self.refusal else f"{self.unsent} unsent"
        return f"<Reporter {self.user} to {self.server.url}, {state}>"


def class_server() -> SharedServer | None:
    """Where reports go: the server chosen here (``reporting_to``, ``report_to``), the
    last one ``rtlab.shared_server(...)`` gave, or ``$RTLAB_SERVER`` with ``$RTLAB_TOKEN``;
    None (send nothing) without a token."""
    chosen = _chosen.get() or (_default[0] if _default else None)
    # Read, not imported: a kernel that never imported shared.py never asked for a server.
    shared = sys.modules.get("rtlab.notebook.shared")
    if chosen is None and shared is not None and shared.chosen:
        chosen = shared.chosen[-1]
    if chosen is None:
        url, token = os.environ.get(SERVER_VARIABLE), os.environ.get(TOKEN_VARIABLE)
        if not url or not token:
            return None
        from rtlab.notebook.shared import shared_server

        chosen = shared_server(url, token)
    return chosen if chosen.token else None


def report_to(server: SharedServer | None) -> None:
    """Report this kernel's verdicts to ``server`` (None: back to the environment's)."""
    _default[:] = [server] if server is not None else []


@contextlib.contextmanager
def reporting_to(server: SharedServer) -> Iterator[None]:
    """Report the checks run in this block (this thread, this task) to ``server``."""
    token = _chosen.set(server)
    try:
        yield
    finally:
        _chosen.reset(token)


def reporter(server: SharedServer) -> Reporter:
    """The reporter of ``server``'s student (one per server and token, made on first use)."""
    from rtlab.notebook.background import BackgroundLoop

    with _lock:
        key = (server.url, server.token or "")
        if key not in _reporters:
            if not _background or not _background[0].alive:
                _background[:] = [BackgroundLoop("rtlab-progress")]
                atexit.register(flush, EXIT_WAIT)  # a script's last reports, too
            _reporters[key] = Reporter(server, _background[0])
        return _reporters[key]


def flush(timeout: float = 5.0) -> bool:
    """Wait until every report made so far is acknowledged (or its reporter stopped), at
    most ``timeout`` seconds; whether it was. A script's exit waits for this, briefly."""
    deadline = time.monotonic() + timeout
    while any(r.unsent and r.refusal is None for r in list(_reporters.values())):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def report(lesson: str, exercise: str, passed: bool) -> str | None:
    """Report a verdict to the class server, if one is set: never raises, never waits.

    Why the server turned the reports away for good (an expired token...), once it has:
    the check then says so, so the student can ask for a new token."""
    try:
        server = class_server()
        if server is None:
            return None
        sender = reporter(server)
        sender.report(lesson, exercise, passed)
        return sender.refusal
    except Exception:  # a report must never break the check that made it
        return None
