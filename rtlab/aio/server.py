"""The lab server: the browser page, events, an echo endpoint and a news feed, on `websockets`.

Endpoints (see docs/protocol.md):

- ``GET /``: the browser chat page (plain HTML and the native ``WebSocket`` API, on ``/ws``);
- ``GET /echo.html``: the echo page of lesson 02 (the four events of the native API, on ``/echo``);
- ``ws://HOST:PORT/ws?user=NAME``: events, rooms and namespaces (protocol v1, events.py);
- ``ws://HOST:PORT/echo``: text ``m`` is answered ``Echo: m``, binary comes back as is;
- ``ws://HOST:PORT/feed``: every update the server publishes, pushed as it happens;
- ``GET /feed?after=N``: the same updates for HTTP polling, as JSON.

Every request passes the door first (rtlab.aio.admission): its ``Host`` must be a name
this server serves, and headers that must be unique are; every WebSocket path then
gets the same tokens, Origin check and limits per address, counted from the TCP
accept to the close.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from rtlab.aio.admission import (
    MAX_HANDSHAKES_PER_ADDRESS,
    TLS_HANDSHAKE_TIMEOUT,
    Admission,
    split_target,
)
from rtlab.aio.chat_events import ChatEvents
from rtlab.aio.compression import DEFAULT_THRESHOLD, Compression, server_options, threshold
from rtlab.aio.data_dir import DataDirError, DataDirLock
from rtlab.aio.descriptors import raise_limit
from rtlab.aio.events import MAX_BUFFER, EventHub, Handler, Namespace, RateLimit
from rtlab.aio.inline import ConnectionLimits, InlineConnection
from rtlab.aio.journal import Journal
from rtlab.aio.lab_app import MAX_ROOMS, LabApp
from rtlab.aio.local_rooms import LocalRooms
from rtlab.aio.log_flood import FloodFilter
from rtlab.aio.log_writer import LogWriter
from rtlab.aio.progress_events import LocalProgress, ProgressEvents
from rtlab.aio.progress_journal import ProgressJournal
from rtlab.aio.progress_redis import RedisProgress
from rtlab.aio.redis_adapter import RedisAdapter
from rtlab.aio.redis_rooms import RedisRooms
from rtlab.aio.room_store import HISTORY, RoomStore
from rtlab.core.history import MAX_BYTES, History
from rtlab.core.room_message import ROOM_MESSAGE

LOG_LINES = 500
FEED_LENGTH = 1000
FEED_INPUT = 1024  # bytes a message to the read-only /feed may have (inflated) before 1009
NAMESPACES = ("/", "/chat", "/notifications")
# Frames websockets queues per connection before it stops reading (its default is 16),
# reading again once none is: past MAX_QUEUE messages of max_size, unread input waits in
# the client's socket, on any path (inline.py, docs/protocol.md). /echo to clients that
# never read: 8.5 MiB per connection with 4, 5 MiB with 1 (tests/e2e/test_attacks.py).
MAX_QUEUE = 1
# The static pages: URL path -> file in rtlab/static/.
PAGES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/echo.html": "echo.html",
    "/teacher": "teacher.html",  # the instructor's view of the class (progress_events.py)
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One open WebSocket connection, as the server sees it."""

    id: int
    path: str
    remote: str
    connected_at: float = field(repr=False)


@dataclass(frozen=True)
class Update:
    """One item of the news feed: a sequence number, its text, and when it was published."""

    seq: int
    text: str
    sent: float

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "text": self.text, "sent": self.sent})


class _ListHandler(logging.Handler):
    """Keeps log lines in a bounded list instead of printing them (docs/architecture.md:
    output from a background thread would land in whichever cell is running)."""

    def __init__(self, lines: collections.deque[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({record.exc_info[1]!r})"
        self.lines.append(line)


def closing(connection: ServerConnection) -> str:
    """How a connection ended, as a log line says it: ``1000 (OK) "done"``."""
    code = connection.close_code
    if code is None:
        return "1006 (no close frame)"
    try:
        name = CloseCode(code).name.replace("_", " ").lower()
    except ValueError:
        name = "application" if 4000 <= code < 5000 else "unknown"
    reason = connection.close_reason
    return f"{code} ({name})" + (f" {reason[:80]!r}" if reason else "")


class _Logger(logging.Logger):
    """A logger that does not look up its caller, which no line of the lab's log shows:
    the lookup gives each frame on the stack a frame object, kept as long as the frame
    runs, and a connection's handler runs as long as the connection (288 bytes each)."""

    def findCaller(self, stack_info: bool = False, stacklevel: int = 1) -> Any:
        return "(unknown file)", 0, "(unknown function)", None


def _keep_only_authorization(connection: ServerConnection) -> None:
    """Forget the request's headers but ``Authorization`` (a token, read again when the
    connection joins a namespace): websockets keeps them all as long as the connection,
    2 KiB for its own client, more for a browser's user agent, languages and cookies."""
    request = connection.request
    if request is not None:
        kept = Headers()
        if (authorization := request.headers.get("Authorization")) is not None:
            kept["Authorization"] = authorization
        request.headers = kept


def log_to(logger: logging.Logger, stream: TextIO, level: int | str = logging.INFO) -> LogWriter:
    """Also write ``logger``'s lines to ``stream`` from ``level`` up, one per line, with
    the time (what ``rtlab serve --log-level`` does with the lab server's logger), from a
    thread, so that a stream that takes nothing never stops the server (log_writer.py)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    writer = LogWriter(handler)
    logger.addHandler(writer)
    logger.setLevel(level)
    return writer


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


class LabServer:
    """The lab server: call ``await start()``, then ``await stop()``; or use ``async with``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_size: int = 2**20,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        max_buffer: int = MAX_BUFFER,
        allow_anonymous: bool | None = None,
        secret: str | None = None,
        origins: Sequence[str] | None = None,
        max_connections_per_user: int = 8,
        max_connections_per_address: int = 256,
        handshake_timeout: float = 10,
        max_handshakes_per_address: int = MAX_HANDSHAKES_PER_ADDRESS,
        hosts: Sequence[str] | None = None,
        page_secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        rate_limit: RateLimit | None = None,
        max_rooms: int = MAX_ROOMS,
        close_timeout: float = 2,
        data_dir: str | os.PathLike[str] | None = None,
        history_size: int = 1000,
        history_window: float = 300.0,
        history_bytes: int = MAX_BYTES,
        compression: Compression = DEFAULT_THRESHOLD,
        redis: str | None = None,
        reuse_port: bool = False,
    ) -> None:
        """``secret``: require tokens signed with it on every WebSocket path (see
        admission.py); without one, ``allow_anonymous`` accepts ``?user=NAME`` from
        anywhere, and by default (``None``) only from loopback addresses, not relayed by
        a proxy. ``page_secret``: a page pass (``?pass=``) signed with it admits
        ``?user=NAME`` whatever the address and ``Host`` (pages shown through a proxy).
        ``hosts``: names served besides the default ones (``["*"]``: any). ``origins``:
        the browser origins allowed besides the server's own (``["*"]``: any).
        ``ssl_context``:
        serve ``wss://`` and ``https://``. ``rate_limit``: a policy per user (a
        :class:`~rtlab.core.ratelimit.TokenBucket`, say); ``rtlab serve`` sets one by
        default, a lab server in a notebook has none. ``data_dir``: keep room history (and
        the class's progress) on disk there, so that it survives a restart (otherwise it
        lives in memory); one server at a time: :meth:`start` locks it.
        ``history_size`` messages per room, at most ``history_window`` seconds old,
        are kept for clients that come back, ``history_bytes`` in all (rtlab.core.history
        counts them). ``compression``: permessage-deflate
        ``"off"`` (or None), ``"on"``, or on for messages of at least that many bytes
        (default 1024, see rtlab.aio.compression). ``redis``: a ``redis://HOST:PORT/DB``
        URL: rooms, history and resends span every server given the same one
        (rtlab.aio.redis_adapter); then room history and progress live in Redis, and
        ``data_dir`` is not used (workers may share one)."""
        self.host = host
        self.port = port
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout  # how long a peer has to answer our close
        threshold(compression)  # refuse a bad option now, not at start()
        self.compression = compression
        self.reuse_port = reuse_port  # SO_REUSEPORT: workers sharing a port (rtlab/workers.py)
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        # A logger of our own, outside logging's tree: nothing reaches stderr unless asked
        # (rtlab serve adds a handler for it: log_to). One line per event: connections
        # open and closed, refusals and their reasons, rate limits, Redis lost and back.
        self.logger = _Logger("rtlab.server", logging.INFO)
        self.logger.addHandler(_ListHandler(self.log))
        # websockets' own lines ("connection open"...) say less than ours: its warnings only.
        self._websockets_logger = _Logger("rtlab.websockets", logging.WARNING)
        self._websockets_logger.parent = self.logger
        # A flood of connections logs a flood of lines: past a burst, counted (log_flood.py).
        self.log_flood = FloodFilter()
        self._loggers = (self.logger, self._websockets_logger)
        for logger in self._loggers:
            logger.addFilter(self.log_flood)
        self._server: Server | None = None
        self._clients: dict[ServerConnection, ClientInfo] = {}
        self._ids = itertools.count(1)
        self._feed: collections.deque[Update] = collections.deque(maxlen=FEED_LENGTH)
        self._seq = itertools.count(1)
        self._subscribers: set[ServerConnection] = set()
        self._closing_logs: set[asyncio.Task[None]] = set()
        self.admission = Admission(
            secret=secret,
            allow_anonymous=allow_anonymous,
            origins=origins,
            max_per_user=max_connections_per_user,
            max_per_address=max_connections_per_address,
            max_handshakes_per_address=max_handshakes_per_address,
            bound=host,
            hosts=hosts,
            tls=ssl_context is not None,
            page_secret=page_secret,
            logger=self.logger,
        )
        self.descriptors: int | None = None  # the open-file limit, once started
        self.descriptors_said = ""  # ...and the sentence that says it (rtlab serve prints it)
        self.handshake_timeout = handshake_timeout
        self.ssl_context = ssl_context
        self.events = EventHub(self.logger, max_buffer=max_buffer, rate_limit=rate_limit)
        # Pings and unsent bytes, per connection on every path (inline.py).
        self.limits = ConnectionLimits(max_buffer=max_buffer)
        # The data folder: not used with Redis, where the rooms and the grid live.
        if redis is not None:
            data_dir = None
        self.data_lock = DataDirLock(data_dir) if data_dir is not None else None
        # The lab's events on the event framework, as an app installs its handlers.
        self.app = LabApp(
            history=History(history_size, history_window, max_bytes=history_bytes),
            journal=Journal(data_dir, logger=self.logger) if data_dir is not None else None,
            max_rooms=max_rooms,
        )
        # The one place that picks the manager, and the room store that goes with it.
        self._rooms_for: Callable[[Namespace], RoomStore] = functools.partial(
            LocalRooms, app=self.app
        )
        if redis is not None:
            adapter = RedisAdapter(
                redis,
                self.events,
                history_size=history_size,
                history_window=history_window,
                history_bytes=history_bytes,
                history_event=ROOM_MESSAGE,  # what the built-in events number
                recent=HISTORY,
            )
            self.events.manager = adapter
            self._rooms_for = functools.partial(RedisRooms, adapter=adapter)
        self.events.install(self._install_events)
        for name in NAMESPACES:
            self.events.namespace(name)
        # /progress: the checks' reports and the instructor's view (/teacher).
        # In Redis with the manager there, where every process sees it; else here, and
        # on disk with data_dir (loaded by start(), under the folder's lock).
        store = (
            RedisProgress(redis)
            if redis is not None
            else LocalProgress(journal=ProgressJournal(data_dir) if data_dir is not None else None)
        )
        self.progress = ProgressEvents(self.events, self.admission, store)
        if secret is not None:  # a class's server: one student must not spam everyone
            self.app.may_broadcast = self.progress.is_instructor

    def log_every_line(self) -> None:
        """Log every line, even in a flood (``rtlab serve --log-all``)."""
        for logger in self._loggers:
            logger.removeFilter(self.log_flood)

    # -- life cycle ------------------------------------------------------------

    async def start(self) -> LabServer:
        """Lock the data folder, bind, load what the folder keeps, and start serving;
        ``self.port`` becomes the real port when 0 was asked. A folder another server
        holds raises :class:`~rtlab.aio.data_dir.DataDirInUse`, a port in use
        :class:`OSError`: either way nothing in the folder is read or written."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        if self.data_lock is not None:
            self.data_lock.acquire()  # before anything in the folder is read
        try:
            return await self._start()
        except BaseException:
            await self._abandon()
            raise

    async def _start(self) -> LabServer:
        self.descriptors, said = raise_limit()  # one per connection: 1,024 is a small class
        self.logger.info("%s", said)
        self.descriptors_said = said
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self.admission.answered,
            max_size=self.max_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            open_timeout=self.handshake_timeout,
            logger=self._websockets_logger,
            server_header="rtlab",
            # /ws events handled as they are read; every connection counted by address
            # from the TCP accept, before its TLS handshake (admission.py), its pings and
            # unsent bytes limited (inline.py)
            create_connection=functools.partial(
                self.admission.counted(
                    InlineConnection,
                    ssl_context=self.ssl_context,
                    tls_timeout=min(self.handshake_timeout, TLS_HANDSHAKE_TIMEOUT),
                    shutdown_timeout=self.close_timeout,
                ),
                limits=self.limits,
            ),
            max_queue=MAX_QUEUE,
            reuse_port=self.reuse_port or None,
            **server_options(self.compression),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        bound = ", ".join(str(sock.getsockname()[:2]) for sock in self._server.sockets)
        self.logger.info("listening on %s", bound)
        self._load_data()  # once bound: a port in use never rewrites the folder
        await self.events.manager.start()  # with Redis: serves anyway if Redis is away
        self.progress.start()
        return self

    async def stop(self, code: int = 1001, reason: str = "server stopping") -> None:
        """Close every connection with ``code`` (1001, going away) and stop listening."""
        if self._server is None:
            return
        self._server.close(code=code, reason=reason)
        self.admission.close_doors()  # TLS handshakes under way
        await self._server.wait_closed()
        await asyncio.gather(*self._closing_logs)
        for note in self.log_flood.untold():  # counts of a flood's lines, not told yet
            self.logger.info("%s", note)
        self._server = None
        await self.events.manager.stop()
        await self.progress.close()
        if self.app.journal is not None:
            self.app.journal.close()
        if self.data_lock is not None:
            self.data_lock.release()

    def _load_data(self) -> None:
        """Read the data folder: room history, then the class's grid (no await: nothing
        is served before both are in memory)."""
        try:
            if self.app.journal is not None:
                loaded = self.app.load_journal(self.events)
                path = self.app.journal.path
                self.logger.info("history: %d messages loaded from %s", loaded, path)
            if isinstance(self.progress.store, LocalProgress):
                self.progress.store.load()
        except OSError as error:
            raise DataDirError(f"cannot load the data folder: {error}") from None

    async def _abandon(self) -> None:
        """Undo a start that failed: stop listening, close the journal, unlock the folder."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.app.journal is not None:
            self.app.journal.close()
        if self.data_lock is not None:
            self.data_lock.release()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> LabServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the server is doing ----------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def http_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self._url_host}:{self.port}/"

    @property
    def url(self) -> str:
        """The WebSocket base URL, ``ws://HOST:PORT``; endpoints hang off it."""
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    @property
    def clients(self) -> list[ClientInfo]:
        """The open WebSocket connections, oldest first."""
        return sorted(self._clients.values(), key=lambda c: c.id)

    # -- events ----------------------------------------------------------------------

    def _install_events(self, namespace: Namespace) -> None:
        """Give a namespace the built-in and chat events (chat_events.py), over its rooms."""
        ChatEvents(namespace, self.app, self._rooms_for(namespace)).install()

    def namespace(self, name: str = "/") -> Namespace:
        """A namespace of ``/ws`` (made on first use, with the built-in events)."""
        return self.events.namespace(name)

    def on(self, event: str, ns: str = "/") -> Callable[[Handler], Handler]:
        """Decorator: handle ``event`` in namespace ``ns``; the return value is the ack."""
        return self.namespace(ns).on(event)

    def emit(self, event: str, data: Any = None, *, ns: str = "/", to: str | None = None) -> int:
        """Send an event to a room, or to everyone in the namespace; how many got it."""
        return self.namespace(ns).emit(event, data, to=to)

    # -- the news feed -----------------------------------------------------------

    def publish(self, text: str) -> Update:
        """Add an update to the feed and push it to every ``/feed`` subscriber at once."""
        update = Update(next(self._seq), text, time.time())
        self._feed.append(update)
        websockets.broadcast(self._subscribers, update.to_json())
        return update

    def updates_after(self, seq: int) -> list[Update]:
        return [u for u in self._feed if u.seq > seq]

    # -- HTTP and WebSocket handlers ---------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refusal = self.admission.screen(connection, request)  # Host, duplicate headers
        if refusal is not None:
            return refusal
        path, query = split_target(request.path)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if upgrade and path in ("/ws", "/echo", "/feed"):
            return self.admission.check(connection, request, events=path == "/ws")
        if upgrade:
            return connection.respond(HTTPStatus.NOT_FOUND, f"no WebSocket endpoint {path}\n")
        if path in PAGES:
            page = resources.files("rtlab").joinpath("static", PAGES[path]).read_bytes()
            return _response(HTTPStatus.OK, page, "text/html; charset=utf-8")
        if path == "/feed":
            return self._poll(query)
        if path == "/admission":
            return self.admission.explain(connection, request)
        if path in ("/echo", "/ws"):
            return connection.respond(
                HTTPStatus.UPGRADE_REQUIRED, f"{path} is a WebSocket endpoint\n"
            )
        return connection.respond(HTTPStatus.NOT_FOUND, f"nothing at {path}\n")

    def _poll(self, query: str) -> Response:
        after = parse_qs(query).get("after", ["0"])[0]
        if not re.fullmatch(r"[0-9]{1,18}", after):  # isdigit() takes "²", which int() refuses
            body = json.dumps({"error": f"after must be a whole number, got {after[:40]!r}"})
            return _response(HTTPStatus.BAD_REQUEST, body.encode(), "application/json")
        updates = [json.loads(u.to_json()) for u in self.updates_after(int(after))]
        return _response(HTTPStatus.OK, json.dumps(updates).encode(), "application/json")

    async def _handle(self, connection: ServerConnection) -> None:
        path = urlsplit(connection.request.path).path if connection.request else ""
        _keep_only_authorization(connection)
        host, port, *_ = connection.remote_address or (self.admission.address_of(connection), 0)
        info = ClientInfo(next(self._ids), path, f"{host}:{port}", time.time())
        self._clients[connection] = info
        user = self.admission.user(connection)  # counted until the connection closes
        who = f"{path} as {user}" if user is not None else path
        self.logger.info("open #%d %s from %s", info.id, who, info.remote)
        try:
            if path == "/ws" and user is not None:
                await self.events.serve(connection, user)
            elif path == "/echo":
                await self._echo(connection)
            elif path == "/feed":
                await self._follow(connection)
        except websockets.ConnectionClosed:  # the peer left: not a server error
            pass
        finally:
            del self._clients[connection]
            # Logged once closed: websockets closes the connection after this returns.
            said = asyncio.get_running_loop().create_task(self._log_closed(connection, info, who))
            self._closing_logs.add(said)
            said.add_done_callback(self._closing_logs.discard)

    async def _log_closed(self, connection: ServerConnection, info: ClientInfo, who: str) -> None:
        await connection.wait_closed()
        self.logger.info("closed #%d %s: %s", info.id, who, closing(connection))

    async def _echo(self, connection: ServerConnection) -> None:
        """Answer each message; while an answer waits for a client that does not read, the
        echo reads nothing more (send waits), and websockets stops reading past MAX_QUEUE.

        A user's echoes count against their rate limit, if the server has one: past it the
        echo waits as told before answering, and reads nothing meanwhile, so a student
        cannot spend the server's CPU inflating and deflating echoes faster than they may
        send events."""
        user, limit = self.admission.user(connection), self.events.rate_limit
        closed = asyncio.ensure_future(connection.wait_closed())  # a wait ends with it
        try:
            async for message in connection:
                if user is not None and limit is not None:
                    while not (decision := limit.check(user, time.monotonic())).allowed:
                        if (await asyncio.wait({closed}, timeout=decision.retry_after))[0]:
                            return
                await connection.send(f"Echo: {message}" if isinstance(message, str) else message)
        finally:
            closed.cancel()

    async def _follow(self, connection: ServerConnection) -> None:
        """Push the feed; the feed is read-only: a client that sends to it is closed (1008),
        and one that sends more than FEED_INPUT bytes in a message (1009), inflated no further."""
        if hasattr(connection.protocol, "max_message_size"):  # websockets 14 to 17
            connection.protocol.max_message_size = FEED_INPUT
        self._subscribers.add(connection)
        try:
            async for _ in connection:  # read, so that nothing queues unread
                await connection.close(1008, "the feed is read-only")
        finally:
            self._subscribers.discard(connection)

    def __repr__(self) -> str:
        state = f"running on {self.url}" if self.running else "stopped"
        return f"<LabServer {state}, {len(self._clients)} clients>"
