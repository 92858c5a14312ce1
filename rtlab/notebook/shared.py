"""The class's shared server: where a workshop's notebooks connect instead of their own.

The instructor runs ``rtlab serve`` on the network and hands out its address (and,
with ``--secret``, one token per student). A student sets ``RTLAB_SERVER`` (and
``RTLAB_TOKEN``) before starting JupyterLab, or writes one cell::

    shared = rtlab.shared_server()            # from RTLAB_SERVER / RTLAB_TOKEN
    shared = rtlab.shared_server("wss://class.example.org:8765", token="...")
    me = rtlab.connect(shared, shared.user)    # or rtlab.ChatPane(shared, shared.user, "table-3")

A :class:`SharedServer` goes wherever a lab server's URL goes (``rtlab.connect``,
``rtlab.aconnect``, ``rtlab.ChatPane``, ``rtlab.chat_panes``); its token goes with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rtlab.aio.client import token_user

SERVER_VARIABLE = "RTLAB_SERVER"
TOKEN_VARIABLE = "RTLAB_TOKEN"
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
chosen: list[SharedServer] = []  # the last shared server this kernel asked for


@dataclass(frozen=True)
class SharedServer:
    """A lab server somebody else runs: its base URL, and this student's token if any."""

    url: str  # ws://HOST:PORT or wss://HOST:PORT, the base of the WebSocket endpoints
    token: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    @property
    def http_url(self) -> str:
        """The browser page: ``https://HOST:PORT/`` for ``wss://``, else ``http://``."""
        scheme = "https" if self.url.startswith("wss:") else "http"
        return f"{scheme}://{urlsplit(self.url).netloc}/"

    @property
    def echo_url(self) -> str:
        return f"{self.url}/echo"

    @property
    def feed_url(self) -> str:
        return f"{self.url}/feed"

    @property
    def user(self) -> str | None:
        """The user the token names (the server decides who you are), or None."""
        return token_user(self.token) if self.token else None

    def __repr__(self) -> str:
        who = f" as {self.user}" if self.user else ""
        return f"<SharedServer {self.url}{who}>"


def server_url(text: str) -> str:
    """``wss://HOST:PORT`` from what an instructor may hand out: ``wss://``, ``ws://``,
    the page's ``https://`` or ``http://`` address, or ``HOST:PORT`` (plain ``ws://``)."""
    text = text.strip()
    if "://" not in text:
        text = f"ws://{text}"
    parts = urlsplit(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    if scheme is None or not parts.hostname or port is None:
        raise ValueError(
            f"expected the server's address with a port, like wss://class.example.org:8765, "
            f"got {text!r}"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[: -len("/ws")]
    return f"{scheme}://{parts.netloc}{path}"


def _token_in(url: str) -> str | None:
    """The ``?token=`` of a chat page's address pasted whole, if it has one."""
    query = urlsplit(url.strip() if "://" in url else f"ws://{url.strip()}").query
    return parse_qs(query).get("token", [None])[0]


def shared_server(
    url: str | None = None, token: str | None = None, *, default: Any = None
) -> SharedServer | Any:
    """The shared server named by ``url`` or ``$RTLAB_SERVER``, with ``token`` or
    ``$RTLAB_TOKEN``.

    With neither, return ``default`` when one is given (``rtlab.shared_server(default=server)``
    uses the lesson's own server outside a workshop); otherwise raise ``LookupError``
    saying what to set.
    """
    url = url or os.environ.get(SERVER_VARIABLE) or None
    token = token or os.environ.get(TOKEN_VARIABLE) or (url and _token_in(url)) or None
    if url is None:
        if default is not None:
            return default
        raise LookupError(
            f"no shared server: set {SERVER_VARIABLE} (and {TOKEN_VARIABLE}) before starting "
            'JupyterLab, or call rtlab.shared_server("wss://HOST:PORT", token="...")'
        )
    server = SharedServer(server_url(url), token.strip() if token else None)
    chosen[:] = [server]  # the class server: where the checks report (progress_report.py)
    return server
