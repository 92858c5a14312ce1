"""One Redis connection, pipelined on hiredis: what the Redis adapter runs on.

redis-py's asyncio client sends each command through a connection pool, a retry policy
and a timeout of its own, then awaits the reply; it reads a channel one awaited message
at a time. Profiled, that was a third of a server process's CPU for each room message
it published and half for each it delivered (docs/benchmarks.md). Here a command is packed
by hiredis and written with every other command of the same turn of the loop in one
write, at the end of the next turn: the loop looks at its sockets once more first, so
what a client sent meanwhile joins the write (with Redis shared by every process, fewer
writes and scripts are what scales). Redis answers a connection's commands in order, so
each reply read resolves the oldest waiting command; a subscribed connection hands every
message one read brought to a callback, in order. A reply later than ``timeout`` seconds
drops the connection, as does anything Redis closes: every waiting command fails, and
``closed`` says why.

URLs are redis-py's (``parse_url``): ``redis://``, ``rediss://`` (TLS, verified unless
``?ssl_cert_reqs=none``), ``unix://``, with a user and password, and a db.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Any, Protocol

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import NoScriptError, ResponseError

REPLY_TIMEOUT = 5.0  # seconds a command may wait for its reply before the connection drops


def _error(reply: str) -> ResponseError:
    """Redis's error reply as redis-py's exception (a script it no longer has: its own)."""
    return NoScriptError(reply) if reply.startswith("NOSCRIPT") else ResponseError(reply)


class Deferred(Protocol):
    """A command packed only when the turn's commands are written: until then, the one
    who queued it may add to it (``RedisPipe.last``)."""

    def pack(self) -> bytes: ...


class RedisPipe(asyncio.Protocol):
    """A connection to Redis; :meth:`open` one, then :meth:`call` commands on it."""

    def __init__(
        self, on_message: Callable[[str], None] | None = None, timeout: float = REPLY_TIMEOUT
    ) -> None:
        self.on_message = on_message  # a subscribed connection's callback: each message
        self.timeout = timeout
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]]
        self._waiting = collections.deque()
        self._out: list[bytes | Deferred] = []  # this turn's commands, written together
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.closed.add_done_callback(lambda f: f.cancelled() or f.exception())

    @classmethod
    async def open(
        cls,
        url: str,
        name: str,
        *,
        on_message: Callable[[str], None] | None = None,
        connect_timeout: float = 2.0,
        timeout: float = REPLY_TIMEOUT,
    ) -> RedisPipe:
        """Connect to ``url``, log in, select its db and name the connection ``name`` (as
        CLIENT LIST shows it)."""
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        pipe = cls(on_message, timeout)
        async with asyncio.timeout(connect_timeout):
            if "path" in options:
                await loop.create_unix_connection(lambda: pipe, options["path"])
            else:
                context = None
                if options.get("connection_class") is SSLConnection:
                    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
                    if options.get("ssl_cert_reqs") == "none":
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                host, port = options.get("host", "localhost"), options.get("port", 6379)
                await loop.create_connection(lambda: pipe, host, port, ssl=context)
            try:
                if options.get("password") is not None:
                    user = [options["username"]] if options.get("username") else []
                    await pipe.call("AUTH", *user, options["password"])
                if options.get("db"):
                    await pipe.call("SELECT", options["db"])
                await pipe.call("CLIENT", "SETNAME", name)
            except BaseException:
                pipe.close()
                raise
        return pipe

    def call(self, *args: str | bytes | int | float) -> asyncio.Future[Any]:
        """Send one command (written with the others of this turn of the loop at the end of
        the next, see module); its reply, or the error Redis or the connection gave."""
        return self.call_deferred(hiredis.pack_command(args))

    def call_deferred(self, command: bytes | Deferred) -> asyncio.Future[Any]:
        """:meth:`call` with a command packed already, or to be packed at the end of the
        turn (``Deferred``)."""
        future: asyncio.Future[Any] = self._loop.create_future()
        if self.closed.done():
            future.set_exception(ConnectionError("the Redis connection is closed"))
            return future
        if not self._out:  # written after the next poll (see module)
            self._loop.call_soon(self._loop.call_soon, self._flush)
        self._out.append(command)
        self._waiting.append((future, self._loop.time()))
        if self._timer is None:
            self._timer = self._loop.call_at(self._loop.time() + self.timeout, self._check)
        return future

    def close(self, error: BaseException | None = None) -> None:
        """Drop the connection; every command still waiting fails with ``error``."""
        self._fail(error or ConnectionError("the Redis connection was closed"))
        if self._transport is not None:
            self._transport.abort()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                if self.on_message is not None and type(reply) is list and reply[0] == "message":
                    self.on_message(reply[2])
                elif self._waiting:
                    future, _ = self._waiting.popleft()
                    if not future.done():
                        if isinstance(reply, hiredis.ReplyError):
                            future.set_exception(_error(str(reply)))
                        else:
                            future.set_result(reply)
        except hiredis.ProtocolError as error:
            self.close(ConnectionError(f"Redis sent what it should not: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("Redis closed the connection"))

    # -- inside ----------------------------------------------------------------------------

    def last(self) -> bytes | Deferred | None:
        """The last command queued in this turn, not written yet (None: there is none)."""
        return self._out[-1] if self._out else None

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(c if type(c) is bytes else c.pack() for c in out))

    def _check(self) -> None:
        """The oldest command's reply is due: drop the connection if it is late."""
        self._timer = None
        if not self._waiting:
            return
        due = self._waiting[0][1] + self.timeout
        if self._loop.time() >= due:
            self.close(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))
        else:
            self._timer = self._loop.call_at(due, self._check)

    def _fail(self, error: BaseException) -> None:
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self._out.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed.done():
            self.closed.set_exception(error)
