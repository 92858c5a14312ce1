"""Who may open a WebSocket, decided during the handshake, before any upgrade.

- **Origin**: a browser always says which page opened the socket. A page from
  another site must not ride on the user's network position or cookies
  (cross-site WebSocket hijacking), so a foreign ``Origin`` gets 403 unless it is
  in the allow-list (``"*"`` allows any); the server's own pages (same host) are
  always allowed, and clients that send no ``Origin`` (not browsers) too.
- **Identity** on ``/ws``: with a secret, only a signed token (``?token=`` or
  ``Authorization: Bearer``) says who you are, and a bad one gets 401 with the
  reason; without a secret, ``?user=NAME`` is taken at its word, from this machine
  only unless anonymous use is allowed.
- **Limits**: connections per user and per address (429 beyond them).

``GET /admission`` with a handshake's query string repeats the decision as JSON,
for a browser page that cannot see why its WebSocket was refused.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from rtlab.core.tokens import TokenError, verify

USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")

OriginRule = Callable[[str | None, str, Iterable[str]], bool]  # (origin, host, allow-list)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def query_value(path: str, name: str) -> str | None:
    """A query parameter of a request path, if it is there exactly once."""
    values = parse_qs(urlsplit(path).query).get(name, [])
    return values[0] if len(values) == 1 else None


def origin_allowed(origin: str | None, host: str, allow_list: Iterable[str]) -> bool:
    """The Origin rule: no Origin (not a browser), the server's own host, or listed."""
    if origin is None or urlsplit(origin).netloc == host:
        return True
    allowed = {entry.rstrip("/") for entry in allow_list}
    return bool({"*", origin.rstrip("/")} & allowed)


class Admission:
    """The server's door policy; :meth:`check` answers a handshake request."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        allow_anonymous: bool | None = None,
        origins: Sequence[str] | None = None,
        max_per_user: int = 8,
        max_per_address: int = 256,
    ) -> None:
        self.secret = secret
        self.allow_anonymous = allow_anonymous
        self.origins = {o.rstrip("/") for o in origins} if origins is not None else None
        self.origin_rule: OriginRule = origin_allowed  # lesson 06's exercise installs its own
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        self.users: collections.Counter[str] = collections.Counter()
        self.addresses: collections.Counter[str] = collections.Counter()
        # Admitted handshakes until their connection opens (a failed one just vanishes).
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, str] = (
            weakref.WeakKeyDictionary()
        )

    def check(
        self, connection: ServerConnection, request: Request, *, events: bool
    ) -> Response | None:
        """None to go on with the upgrade, or the refusal to send instead."""
        decision = self._decide(connection, request, events=events)
        if isinstance(decision, str):
            self._admitted[connection] = decision
            return None
        return decision

    def explain(self, connection: ServerConnection, request: Request) -> Response:
        """``GET /admission?...``: what a handshake to ``/ws`` with this query would get.

        A browser cannot read a refused handshake's status or body (its WebSocket
        only sees code 1006), so the chat page asks here, with the same query string,
        whether retrying can help (rtlab/core/refusal.py). Nothing is counted. A
        foreign origin is told its own refusal and nothing else.
        """
        decision = self._decide(connection, request, events=True)
        if decision is None or isinstance(decision, str):
            answer = {"admitted": True, "status": 101, "reason": ""}
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
        """The refusal, or the admitted user (None for an endpoint without users)."""
        refusal = self._check_origin(connection, request)
        if refusal is not None or not events:
            return refusal
        user = self._identify(connection, request)
        if isinstance(user, Response):
            return user
        address = connection.remote_address[0]
        if self.users[user] >= self.max_per_user:
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{user} already has {self.max_per_user} connections open\n",
            )
        if self.addresses[address] >= self.max_per_address:
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{self.max_per_address} connections are open from {address} already\n",
            )
        return user

    def enter(self, connection: ServerConnection) -> str:
        """The admitted user of an opened ``/ws`` connection; counted until :meth:`leave`."""
        user = self._admitted.pop(connection)
        self.users[user] += 1
        self.addresses[connection.remote_address[0]] += 1
        return user

    def leave(self, connection: ServerConnection, user: str) -> None:
        self.users[user] -= 1
        self.addresses[connection.remote_address[0]] -= 1
        self.users += collections.Counter()  # drops the zeros
        self.addresses += collections.Counter()

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        host = request.headers.get("Host", "")
        if self.origin_rule(origin, host, self.origins or ()):
            return None
        return connection.respond(
            HTTPStatus.FORBIDDEN, f"origin {origin[:100]} is not allowed on this server\n"
        )

    def _identify(self, connection: ServerConnection, request: Request) -> str | Response:
        if self.secret is not None:
            token = query_value(request.path, "token")
            authorization = request.headers.get("Authorization", "")
            if authorization.startswith("Bearer "):
                token = authorization.removeprefix("Bearer ").strip()
            if not token:
                return connection.respond(
                    HTTPStatus.UNAUTHORIZED,
                    "this server needs a token: ?token=... or Authorization: Bearer ...\n",
                )
            try:
                user = verify(self.secret, token, time.time())
            except TokenError as error:
                return connection.respond(HTTPStatus.UNAUTHORIZED, f"invalid token: {error}\n")
            if not USER.fullmatch(user):
                return connection.respond(
                    HTTPStatus.UNAUTHORIZED, "invalid token: it names an invalid user\n"
                )
            return user  # a ?user= beside the token is ignored: the token decides
        user = query_value(request.path, "user")
        if user is None:
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "say who you are: add ?user=NAME to the URL\n"
            )
        if not USER.fullmatch(user):
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                f"user must be 1 to 32 letters, digits or _.- , got {user[:40]!r}\n",
            )
        remote = connection.remote_address[0]
        if self.allow_anonymous or (self.allow_anonymous is None and is_loopback(remote)):
            return user
        return connection.respond(
            HTTPStatus.FORBIDDEN, "anonymous ?user=NAME is only accepted from this machine\n"
        )
