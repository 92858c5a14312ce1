"""Show the lab server's browser pages inside a notebook."""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import urlencode

from IPython.display import IFrame

from rtlab.notebook.background import RunningServer


def page_url(server: RunningServer, path: str = "") -> str:
    """Where the learner's browser finds the page at ``path`` ("" is the chat page,
    "echo.html" the echo page of lesson 02).

    On a laptop the browser reaches 127.0.0.1 directly. On JupyterHub or Binder the
    browser is elsewhere, so the page goes through jupyter-server-proxy's
    ``/proxy/PORT/`` on the notebook server (the page's WebSocket URLs are relative,
    so they follow it). Through the proxy every request comes from 127.0.0.1 and names
    the hub's host, so the server cannot trust the address: the URL carries a pass
    signed with the server's own page secret (``&pass=...``), which the page sends on.
    """
    path = path.lstrip("/")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and importlib.util.find_spec("jupyter_server_proxy"):
        url = f"{prefix.rstrip('/')}/proxy/{server.port}/{path}"
        given = server.page_pass()
        return f"{url}{'&' if '?' in url else '?'}{urlencode({'pass': given})}" if given else url
    return server.http_url + path


class Page(IFrame):
    """An iframe whose plain-text form names the page (what nbval compares)."""

    def __repr__(self) -> str:
        return f"<browser page {self.src}>"


def show_page(server: RunningServer, path: str = "", height: int = 360) -> Page:
    """The server's page at ``path`` in an iframe, as a cell's result.

    ``show_page(server)`` shows the chat page, ``show_page(server, "echo.html")`` the echo page.
    """
    return Page(page_url(server, path), width="100%", height=height)
