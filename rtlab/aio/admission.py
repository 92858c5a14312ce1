"""Who may talk to the server, decided before any upgrade, on every path.

- **The request itself**: a header that must be unique (``Host``, ``Origin``,
  ``Authorization``, ``Sec-WebSocket-Key``...) given twice is a 400 naming it.
- **Host**: every request (pages, ``/feed``, ``/admission``, handshakes) must name this
  server in its ``Host`` header, else 421. This defeats DNS rebinding: a page of
  ``evil.example`` whose name is made to resolve to 127.0.0.1 still sends
  ``Host: evil.example``. The names served: ``localhost`` and loopback addresses always;
  when bound beyond loopback also any IP address, this machine's host names, and any
  name with TLS (a rebinding page cannot pass the certificate check); plus the names
  listed (``hosts``, ``rtlab serve --host-name``; ``"*"``: any).
- **Origin**: a browser always says which page opened the socket. A page from
  another site must not ride on the user's network position or cookies
  (cross-site WebSocket hijacking), so a foreign ``Origin`` gets 403 unless it is
  in the allow-list (``"*"`` allows any); the server's own pages (same host) are
  always allowed, and clients that send no ``Origin`` (not browsers) too.
- **Identity**: with a secret, every WebSocket path (``/ws``, ``/echo``, ``/feed``)
  needs a signed token (``?token=`` or ``Authorization: Bearer``), and a bad one gets
  401 with the reason; on ``/ws`` the token says who you are. Without a secret,
  ``/ws?user=NAME`` is taken at its word: from this machine, unless forwarding headers
  show that a proxy on it relayed the request (403); from anywhere if anonymous use is
  allowed; or with a page pass (``?pass=``) signed with the server's ``page_secret``,
  which the pages a notebook shows through jupyter-server-proxy carry. A token sent
  there without ``?user=`` gets 401: this server cannot check tokens (``NO_SECRET``).
- **Limits**: connections per user on every path that names one (``/ws``, and
  ``/echo`` and ``/feed`` with a token), counted from the admission to the close, and
  per address on every path, counted from the TCP accept to the close (429 beyond);
  unfinished handshakes per address are capped too: past the cap the oldest one makes
  room, and an address never holds more than its connection limit plus that cap (one
  more is closed at once). With TLS a connection is counted before its TLS handshake,
  which is an unfinished handshake (:meth:`Admission.counted`).

``GET /admission`` with a handshake's query string repeats the decision as JSON,
for a browser page that cannot see why its WebSocket was refused.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from rtlab.core.tokens import TokenError, verify

USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# Headers a request may carry once: a second one would let two parsers disagree.
SINGLE = (
    "Host",
    "Origin",
    "Authorization",
    "Upgrade",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Content-Length",
)
# Headers that proxies add: a request carrying one was relayed, whatever its address.
FORWARDING = (
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Prefix",
    "X-Forwarded-Context",
    "X-Real-IP",
    "Via",
)
MAX_HANDSHAKES_PER_ADDRESS = 64  # accepted connections still sending their request...
HANDSHAKE_GRACE = 2.0  # ...before the oldest one past these seconds makes room for a new one
TLS_HANDSHAKE_TIMEOUT = 5.0  # seconds a TLS handshake may take (on a LAN, milliseconds)
PROXY_ADVICE = (
    "?user=NAME came through a proxy ({names}), so its address proves nothing: "
    "run the server with --secret and give each user a token (docs/protocol.md, Admission)\n"
)

# A token sent to a server that has no secret to check it with (started without it).
NO_SECRET = (
    "this server was started without its secret (RTLAB_SECRET), so it cannot check "
    "tokens: tell your instructor\n"
)

OriginRule = Callable[[str | None, str, Iterable[str]], bool]  # (origin, host, allow-list)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def split_target(target: str) -> tuple[str, str]:
    """A request target's path and query, taken apart literally (``//x/ws`` is no URL)."""
    path, _, query = target.partition("?")
    return path, query


def query_value(target: str, name: str) -> str | None:
    """A query parameter of a request target, if it is there exactly once."""
    values = parse_qs(split_target(target)[1]).get(name, [])
    return values[0] if len(values) == 1 else None


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, _, port = host.rpartition(":")
    return name if name and port.isascii() and port.isdigit() else host


def origin_allowed(origin: str | None, host: str, allow_list: Iterable[str]) -> bool:
    """The Origin rule: no Origin (not a browser), the server's own host, or listed."""
    if origin is None:
        return True
    try:
        if urlsplit(origin).netloc == host:
            return True
    except ValueError:  # "http://[" is no URL: it names no host of ours
        pass
    allowed = {entry.rstrip("/") for entry in allow_list}
    return bool({"*", origin.rstrip("/")} & allowed)


def own_names(bound: str) -> set[str]:
    """This machine's names, served by default when bound beyond loopback."""
    names = {socket.gethostname(), socket.getfqdn(), f"{socket.gethostname()}.local", bound}
    return {name.lower().rstrip(".") for name in names if name}


def refuse(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    """A plain-text refusal; what a client sent is quoted safely (any byte, any length)."""
    return connection.respond(status, text.encode("utf-8", "backslashreplace").decode())


class Admission:
    """The server's door policy: :meth:`screen` every request, :meth:`check` handshakes."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        allow_anonymous: bool | None = None,
        origins: Sequence[str] | None = None,
        max_per_user: int = 8,
        max_per_address: int = 256,
        max_handshakes_per_address: int = MAX_HANDSHAKES_PER_ADDRESS,
        bound: str = "127.0.0.1",
        hosts: Sequence[str] | None = None,
        tls: bool = False,
        page_secret: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.secret = secret
        self.allow_anonymous = allow_anonymous
        self.origins = {o.rstrip("/") for o in origins} if origins is not None else None
        self.origin_rule: OriginRule = origin_allowed  # lesson 06's exercise installs its own
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        self.max_handshakes = max_handshakes_per_address
        self.hosts = {host_name(h).rstrip(".") for h in hosts or ()}
        self.local = is_loopback(bound)
        self.tls = tls
        if not self.local:
            self.hosts |= own_names(bound)
        self.page_secret = page_secret
        self.logger = logger or logging.getLogger(__name__)
        self.users: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[int] = collections.Counter()  # by HTTP status
        # Every TCP connection, from accept to close, by address; and those whose
        # request has not arrived yet (unfinished handshakes).
        self.addresses: collections.Counter[str] = collections.Counter()
        self.grace = HANDSHAKE_GRACE
        self._address: dict[ServerConnection, str] = {}  # counted, until the close
        # ...and where each came from, as long as the connection object lives (a request
        # handled after its close still names it: a closed TLS transport knows no peer).
        self._came_from: weakref.WeakKeyDictionary[ServerConnection, str] = (
            weakref.WeakKeyDictionary()
        )
        # Unfinished handshakes by address, oldest first: when they arrived, and their
        # TCP transport (the one to abort, also during the TLS handshake).
        self._waiting: dict[str, dict[ServerConnection, tuple[float, asyncio.BaseTransport]]]
        self._waiting = {}
        self._doors: set[asyncio.Task[None]] = set()  # TLS handshakes under way
        # The user of each connection admitted with a name, from its admission to its
        # close (``users`` counts them): a handshake that never opens is counted too.
        self._user: dict[ServerConnection, str] = {}

    # -- connections, from accept to close -----------------------------------------------

    def counted(
        self,
        base: type[ServerConnection],
        *,
        ssl_context: ssl.SSLContext | None = None,
        tls_timeout: float = TLS_HANDSHAKE_TIMEOUT,
        shutdown_timeout: float | None = None,
    ) -> Callable[..., asyncio.Protocol]:
        """A ``create_connection`` for websockets' ``serve`` (given no ``ssl``): ``base``
        connections that this policy counts by address from the TCP accept until the
        close. With ``ssl_context`` the TLS handshake starts once the connection is
        counted (and may take ``tls_timeout`` seconds): asyncio's own TLS would call the
        connection only once its handshake is over, uncounted until then."""
        admission = self

        class Counted(base):  # type: ignore[valid-type, misc]
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                if ssl_context is None:  # else counted by its _Door at the accept
                    admission._arrived(self, transport)

            def connection_lost(self, exc: Exception | None) -> None:
                admission._gone(self)
                super().connection_lost(exc)

        Counted.__name__ = Counted.__qualname__ = f"Counted{base.__name__}"
        if ssl_context is None:
            return Counted

        def door(*args: Any, **kwargs: Any) -> _Door:
            tls = (ssl_context, tls_timeout, shutdown_timeout)
            return _Door(admission, Counted(*args, **kwargs), tls)

        return door

    def close_doors(self) -> None:
        """Drop the connections still in their TLS handshake (the server stops)."""
        for task in list(self._doors):
            task.cancel()

    def unfinished(self, address: str) -> int:
        """Connections from ``address`` whose request has not arrived yet."""
        return len(self._waiting.get(address, ()))

    def _arrived(self, connection: ServerConnection, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection; close it at once if its address holds too many.

        Past ``max_handshakes`` unfinished handshakes, the oldest one older than
        ``grace`` makes room (a slowloris, not a browser's burst of fresh ones); an
        address never holds more than ``max_per_address + max_handshakes`` connections,
        and there too the oldest stalled handshake makes room for a newcomer.
        """
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        waiting = self._waiting.setdefault(address, {})
        full = self.addresses[address] >= self.max_per_address + self.max_handshakes
        stalled = self._stalled(waiting)
        if full and stalled is None:
            self.logger.warning(
                "closed a connection from %s at once: %d are open from it",
                address,
                self.addresses[address],
            )
            transport.abort()  # connection_lost follows; nothing was counted
            if not waiting:
                del self._waiting[address]
            return False
        if stalled is not None and (full or len(waiting) >= self.max_handshakes):
            # A slowloris, not a browser's burst of fresh ones: the oldest makes room, even
            # when the address is full, so that it cannot lock its own address out.
            self.logger.warning(
                "closed the oldest of %d unfinished handshakes from %s", len(waiting), address
            )
            self._evict(stalled)
            waiting = self._waiting.setdefault(address, {})  # if that emptied it
        self._address[connection] = self._came_from[connection] = address
        self.addresses[address] += 1
        waiting[connection] = (time.monotonic(), transport)
        return True

    def _stalled(
        self, waiting: dict[ServerConnection, tuple[float, asyncio.BaseTransport]]
    ) -> ServerConnection | None:
        """The oldest unfinished handshake, if it has waited ``grace`` seconds."""
        for connection, (since, _) in waiting.items():
            return connection if time.monotonic() - since >= self.grace else None
        return None

    def _evict(self, connection: ServerConnection) -> None:
        """Close an unfinished handshake and count it out now (its close comes later)."""
        address = self._address[connection]
        transport = self._waiting[address][connection][1]
        self._gone(connection)
        transport.abort()  # its TCP transport: also one still in its TLS handshake

    def address_of(self, connection: ServerConnection) -> str:
        """The address a connection came from, as counted at its accept (a TLS connection
        closed meanwhile has no ``remote_address`` any more)."""
        return self._came_from.get(connection, "unknown")

    def _gone(self, connection: ServerConnection) -> None:
        if connection not in self._address:
            return  # closed at arrival: never counted
        self._received(connection)
        address = self._address.pop(connection)
        self.addresses[address] -= 1
        self.addresses += collections.Counter()  # drops the zeros
        self._forget_user(connection)

    def _forget_user(self, connection: ServerConnection) -> None:
        user = self._user.pop(connection, None)
        if user is not None:
            self.users[user] -= 1
            if not self.users[user]:
                del self.users[user]

    def _received(self, connection: ServerConnection) -> None:
        address = self._address.get(connection)
        waiting = self._waiting.get(address) if address is not None else None
        if waiting is not None and waiting.pop(connection, None) is not None and not waiting:
            del self._waiting[address]  # type: ignore[index]

    # -- every request -------------------------------------------------------------------

    def screen(self, connection: ServerConnection, request: Request) -> Response | None:
        """The refusal of a malformed or misdirected request (any path), or None."""
        self._received(connection)
        refusal = self._malformed(connection, request)
        if refusal is not None:
            self._refused(connection, request, refusal)
        return refusal

    def _malformed(self, connection: ServerConnection, request: Request) -> Response | None:
        for name in SINGLE:
            if len(request.headers.get_all(name)) > 1:
                return refuse(
                    connection, HTTPStatus.BAD_REQUEST, f"the request has more than one {name}\n"
                )
        host = request.headers.get("Host")
        if host is None:
            return refuse(connection, HTTPStatus.BAD_REQUEST, "the request has no Host header\n")
        if self._host_served(host) or self._has_pass(request):
            return None
        return refuse(
            connection,
            HTTPStatus.MISDIRECTED_REQUEST,
            f"this server does not serve the name {host[:100]!r}: open it by an address it "
            "serves, or start it with --host-name NAME (docs/protocol.md, Admission)\n",
        )

    def _host_served(self, host: str) -> bool:
        name = host_name(host).rstrip(".")
        if "*" in self.hosts or name in self.hosts or is_loopback(name):
            return True
        if self.local:
            return False
        if self.tls:
            return True  # the certificate binds the name: a rebinding page fails TLS
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True  # an address typed by hand: no name to rebind

    def _has_pass(self, request: Request) -> bool:
        """Whether the request carries a page pass signed with ``page_secret``."""
        given = query_value(request.path, "pass")
        if self.page_secret is None or not given:
            return False
        try:
            checked(self.page_secret, given)
        except TokenError:
            return False
        return True

    # -- handshakes ----------------------------------------------------------------------

    def check(
        self, connection: ServerConnection, request: Request, *, events: bool
    ) -> Response | None:
        """None to go on with the upgrade, or the refusal to send instead."""
        decision = self._decide(connection, request, events=events)
        if isinstance(decision, str):
            if connection in self._address:  # counted until its close (_gone)
                self._user[connection] = decision
                self.users[decision] += 1
            return None
        if decision is not None:
            self._refused(connection, request, decision)
        return decision

    def _refused(self, connection: ServerConnection, request: Request, refusal: Response) -> None:
        """Count a refusal and log it with its reason (the path without its query string:
        no token ever reaches the log)."""
        self.refused[refusal.status_code] += 1
        reason = (refusal.body or b"").decode(errors="replace").strip().splitlines()
        self.logger.info(
            "refused %d %s from %s: %s",
            refusal.status_code,
            request.path.partition("?")[0][:100],
            self.address_of(connection),
            reason[0][:200] if reason else "",
        )

    def explain(self, connection: ServerConnection, request: Request) -> Response:
        """``GET /admission?...``: what a handshake to ``/ws`` with this query would get.

        A browser cannot read a refused handshake's status or body (its WebSocket
        only sees code 1006), so the chat page asks here, with the same query string,
        whether retrying can help (rtlab/core/refusal.py). Nothing is counted. A
        foreign origin is told its own refusal and nothing else.
        """
        decision = self._decide(connection, request, events=True)
        if decision is None or isinstance(decision, str):
            answer: dict[str, Any] = {"admitted": True, "status": 101, "reason": ""}
        else:
            reason = (decision.body or b"").decode(errors="replace").strip()
            answer = {"admitted": False, "status": decision.status_code, "reason": reason}
        response = connection.respond(HTTPStatus.OK, json.dumps(answer))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        origin = request.headers.get("Origin")
        if origin is not None and answer["status"] == HTTPStatus.FORBIDDEN:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response

    def _decide(
        self, connection: ServerConnection, request: Request, *, events: bool
    ) -> Response | str | None:
        """The refusal, or the admitted user (None where nobody is named: ``/echo`` and
        ``/feed`` without a secret)."""
        refusal = self._check_origin(connection, request)
        if refusal is not None:
            return refusal
        if events:
            user = self._identify(connection, request)
        elif self.secret is not None:
            user = self._token_user(connection, request)
        else:
            user = None
        if isinstance(user, Response):
            return user
        address = self.address_of(connection)
        # A request that came gets a place before handshakes that never sent theirs.
        waiting = self._waiting.get(address, {})
        while self.addresses[address] > self.max_per_address and (
            (stalled := self._stalled(waiting)) is not None
        ):
            self.logger.warning("closed an unfinished handshake from %s to make room", address)
            self._evict(stalled)
        if user is not None and self.users[user] >= self.max_per_user:
            return refuse(
                connection,
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{user} already has {self.max_per_user} connections open\n",
            )
        if self.addresses[address] > self.max_per_address:  # this one is counted too
            return refuse(
                connection,
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{self.max_per_address} connections are open from {address} already\n",
            )
        return user

    def answered(self, connection: ServerConnection, request: Request, response: Response) -> None:
        """websockets' ``process_response``: a handshake admitted here but refused after
        all (no key, a bad version...) no longer counts for its user."""
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            self._forget_user(connection)

    def user(self, connection: ServerConnection) -> str | None:
        """The user an opened connection was admitted as (counted until it closes)."""
        return self._user.get(connection)

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        host = request.headers.get("Host", "")
        if self.origin_rule(origin, host, self.origins or ()):
            return None
        return refuse(
            connection,
            HTTPStatus.FORBIDDEN,
            f"origin {(origin or '')[:100]} is not allowed on this server\n",
        )

    def _token_user(self, connection: ServerConnection, request: Request) -> str | Response:
        """The user a valid token names (``?token=`` or ``Authorization: Bearer``)."""
        assert self.secret is not None
        token = token_of(request)
        if not token:
            return refuse(
                connection,
                HTTPStatus.UNAUTHORIZED,
                "this server needs a token: ?token=... or Authorization: Bearer ...\n",
            )
        try:
            user = checked(self.secret, token)
        except TokenError as error:
            return refuse(connection, HTTPStatus.UNAUTHORIZED, f"invalid token: {error}\n")
        if not USER.fullmatch(user):
            return refuse(
                connection, HTTPStatus.UNAUTHORIZED, "invalid token: it names an invalid user\n"
            )
        return user

    def _identify(self, connection: ServerConnection, request: Request) -> str | Response:
        if self.secret is not None:
            return self._token_user(connection, request)  # a ?user= beside it is ignored
        user = query_value(request.path, "user")
        if user is None and token_of(request):  # a token holder, not a name to add
            return refuse(connection, HTTPStatus.UNAUTHORIZED, NO_SECRET)
        if user is None:
            return refuse(
                connection, HTTPStatus.BAD_REQUEST, "say who you are: add ?user=NAME to the URL\n"
            )
        if not USER.fullmatch(user):
            return refuse(
                connection,
                HTTPStatus.BAD_REQUEST,
                f"user must be 1 to 32 letters, digits or _.- , got {user[:40]!r}\n",
            )
        if self.allow_anonymous or self._has_pass(request):
            return user
        if self.allow_anonymous is None and is_loopback(self.address_of(connection)):
            relayed = forwarding(request.headers)
            if not relayed:
                return user
            return refuse(
                connection, HTTPStatus.FORBIDDEN, PROXY_ADVICE.format(names=", ".join(relayed))
            )
        return refuse(
            connection,
            HTTPStatus.FORBIDDEN,
            "anonymous ?user=NAME is only accepted from this machine\n",
        )


class _Door(asyncio.Protocol):
    """A TLS connection from its TCP accept: counted by its address first, then secured
    (``loop.start_tls``), then handed over to its websockets ``connection``.

    What the TLS layer passes on before the hand-over (a request that came with the
    handshake's last flight, its end) waits here, and follows the hand-over in order.
    """

    __slots__ = ("admission", "connection", "early", "lost", "over", "secured", "tls")

    def __init__(
        self,
        admission: Admission,
        connection: ServerConnection,
        tls: tuple[ssl.SSLContext, float, float | None],
    ) -> None:
        self.admission, self.connection, self.tls = admission, connection, tls
        self.secured: asyncio.Transport | None = None  # once handed over
        self.early: list[Callable[[], object]] = []
        self.over = False  # refused at once, or its TLS handshake failed: nothing to hand
        self.lost = False  # the connection ended before it could be handed over

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.admission._arrived(self.connection, transport):
            self.over = True  # aborted at once: nothing counted, nothing to secure
            return
        transport.pause_reading()  # the ClientHello waits for start_tls
        task = asyncio.get_running_loop().create_task(self._secure(transport))
        self.admission._doors.add(task)
        task.add_done_callback(self.admission._doors.discard)

    async def _secure(self, transport: asyncio.Transport) -> None:
        context, timeout, shutdown = self.tls
        secured = None
        try:
            if not transport.is_closing():  # not aborted meanwhile
                secured = await asyncio.get_running_loop().start_tls(
                    transport,
                    self,
                    context,
                    server_side=True,
                    ssl_handshake_timeout=timeout,
                    ssl_shutdown_timeout=shutdown,
                )
        except (OSError, asyncio.CancelledError) as error:
            # Failed, timed out, aborted, or the server stops. The error's traceback holds
            # start_tls's frame, which holds the error: a cycle that would keep this
            # connection's TLS buffers (256 KiB) until the garbage collector's next pass.
            error.__traceback__ = None
        finally:
            if secured is None:  # never handed over: the connection is done here
                self.over = True
                self.early.clear()
                transport.abort()
                self.admission._gone(self.connection)
        if secured is None:
            return
        if self.lost:  # gone with its handshake's last flight: nobody left to answer
            self.early.clear()
            secured.abort()
            self.admission._gone(self.connection)
            return
        secured.set_protocol(self.connection)
        self.connection.connection_made(secured)
        self.secured = secured
        for step in self.early:
            if secured.is_closing():  # answered and closed (a refusal): nothing more to say
                break
            step()
        self.early.clear()

    def _then(self, step: Callable[[], object]) -> None:
        if self.secured is not None:
            step()
        else:
            self.early.append(step)

    def data_received(self, data: bytes) -> None:
        self._then(lambda: self.connection.data_received(data))

    def eof_received(self) -> None:
        self._then(self.connection.eof_received)  # TLS closes anyway: no answer to give

    def connection_lost(self, exc: Exception | None) -> None:
        if self.secured is None:
            self.lost = True  # before the hand-over: _secure counts it out
        elif not self.over:
            self.connection.connection_lost(exc)


def checked(secret: str, token: str) -> str:
    """The user a valid token names now; :class:`TokenError` for anything else."""
    return verify(secret, token, time.time())


def token_of(request: Request) -> str | None:
    """The token a request carries: ``Authorization: Bearer``, else ``?token=``."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip()
    return query_value(request.path, "token")


def forwarding(headers: Headers) -> list[str]:
    """The forwarding headers a request carries (a proxy relayed it), by name."""
    return [name for name in FORWARDING if name in headers]
