"""rtlab: a hands-on course in WebSocket fundamentals that runs in JupyterLab.

The notebook-facing API in one place::

    import rtlab
    server = rtlab.start_server()      # the lab server, in the background
    server.echo_url                    # 'ws://127.0.0.1:PORT/echo'
    alice = rtlab.connect(server, "alice")  # an event client (await rtlab.aconnect in a cell)
    server.stop()
    rtlab.hint()                       # the recipe of the exercise you checked last
    rtlab.js_exercise(server, "browser_client", code)  # JavaScript, run in your browser tab

Each name is imported on first use (PEP 562), so ``import rtlab.cli`` (what
``rtlab serve`` runs) loads no notebook machinery: no ipywidgets, no IPython.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtlab.aio.client import AckError, EventClient, OfflineQueueFull, Refused
    from rtlab.checks import hint
    from rtlab.checks.browser import js_exercise
    from rtlab.core.backoff import Reconnection
    from rtlab.notebook.background import start_proxy, start_server
    from rtlab.notebook.chatpane import ChatPane, chat_panes
    from rtlab.notebook.clients import aconnect, connect
    from rtlab.notebook.nested import run
    from rtlab.notebook.page import page_url, show_page
    from rtlab.notebook.shared import SharedServer, shared_server
    from rtlab.notebook.socketio_lab import start_socketio
    from rtlab.notebook.wait import until, wait_until
    from rtlab.notebook.wireview import WireView, wire_view

# Public name -> the module that defines it.
_HOMES = {
    "AckError": "rtlab.aio.client",
    "EventClient": "rtlab.aio.client",
    "OfflineQueueFull": "rtlab.aio.client",
    "Refused": "rtlab.aio.client",
    "hint": "rtlab.checks",
    "js_exercise": "rtlab.checks.browser",
    "Reconnection": "rtlab.core.backoff",
    "start_proxy": "rtlab.notebook.background",
    "start_server": "rtlab.notebook.background",
    "ChatPane": "rtlab.notebook.chatpane",
    "chat_panes": "rtlab.notebook.chatpane",
    "aconnect": "rtlab.notebook.clients",
    "connect": "rtlab.notebook.clients",
    "run": "rtlab.notebook.nested",
    "page_url": "rtlab.notebook.page",
    "show_page": "rtlab.notebook.page",
    "SharedServer": "rtlab.notebook.shared",
    "shared_server": "rtlab.notebook.shared",
    "until": "rtlab.notebook.wait",
    "wait_until": "rtlab.notebook.wait",
    "start_socketio": "rtlab.notebook.socketio_lab",
    "WireView": "rtlab.notebook.wireview",
    "wire_view": "rtlab.notebook.wireview",
}
__all__ = [
    "AckError",
    "ChatPane",
    "EventClient",
    "OfflineQueueFull",
    "Reconnection",
    "Refused",
    "SharedServer",
    "WireView",
    "__version__",
    "aconnect",
    "chat_panes",
    "connect",
    "hint",
    "js_exercise",
    "page_url",
    "run",
    "shared_server",
    "show_page",
    "start_proxy",
    "start_server",
    "start_socketio",
    "until",
    "wait_until",
    "wire_view",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, then keep it here."""
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("rtlab")
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'rtlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
