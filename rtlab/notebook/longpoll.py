"""Engine.IO's HTTP long-polling transport by hand: each method is one plain HTTP request.

``GET /socket.io/?EIO=4&transport=polling`` opens a session (the answer is the open
packet with its ``sid``); later GETs carry ``&sid=…`` and wait until the server has
something to say (at the latest a ``2`` ping); a POST carries packets to the server
(answered ``ok``). Several packets share one body, separated by ``\\x1e``.
"""

from __future__ import annotations

import json
import urllib.request

from rtlab.core.engineio import SEPARATOR, parse, split


class LongPolling:
    """One Engine.IO session over long-polling, with ``urllib`` only: no Socket.IO library."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.sid: str | None = None
        self.requests = 0  # HTTP requests made so far

    @property
    def path(self) -> str:
        """The request's path and query: ``/socket.io/?EIO=4&transport=polling[&sid=…]``."""
        sid = f"&sid={self.sid}" if self.sid else ""
        return f"/socket.io/?EIO=4&transport=polling{sid}"

    def _request(self, body: str | None = None) -> str:
        data = None if body is None else body.encode()
        request = urllib.request.Request(self.url + self.path, data=data, method="GET")
        if data is not None:
            request.method = "POST"
            request.add_header("Content-Type", "text/plain;charset=UTF-8")
        self.requests += 1
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return response.read().decode()

    def open(self) -> dict:
        """The first GET: the server's open packet (``0{"sid":…}``), as a dict; keeps the sid."""
        body = self._request()
        self.sid = json.loads(parse(body).text[1:])["sid"]
        return json.loads(body[1:])

    def get(self) -> list[str]:
        """One GET: the packets the server had for us (it waits until it has one)."""
        return split(self._request())

    def post(self, *packets: str) -> str:
        """One POST with ``packets`` in its body; the server answers ``ok``."""
        return self._request(SEPARATOR.join(packets))
