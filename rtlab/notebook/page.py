"""Show the lab server's browser page inside a notebook."""

from __future__ import annotations

import importlib.util
import os

from IPython.display import IFrame

from rtlab.notebook.background import RunningServer


def page_url(server: RunningServer) -> str:
    """Where the learner's browser finds the page.

    On a laptop the browser reaches 127.0.0.1 directly. On JupyterHub or Binder the
    browser is elsewhere, so the page goes through jupyter-server-proxy's
    ``/proxy/PORT/`` on the notebook server (the page's WebSocket URLs are relative,
    so they follow it).
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and importlib.util.find_spec("jupyter_server_proxy"):
        return f"{prefix.rstrip('/')}/proxy/{server.port}/"
    return server.http_url


class Page(IFrame):
    """An iframe whose plain-text form names the page (what nbval compares)."""

    def __repr__(self) -> str:
        return f"<browser page {self.src}>"


def show_page(server: RunningServer, height: int = 360) -> Page:
    """The server's browser page in an iframe, as a cell's result."""
    return Page(page_url(server), width="100%", height=height)
