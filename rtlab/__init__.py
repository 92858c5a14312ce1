"""rtlab: a hands-on course in WebSocket fundamentals that runs in JupyterLab.

The notebook-facing API in one place::

    import rtlab
    server = rtlab.start_server()      # the lab server, in the background
    server.echo_url                    # 'ws://127.0.0.1:PORT/echo'
    alice = rtlab.connect(server, "alice")  # an event client (await rtlab.aconnect in a cell)
    server.stop()
    rtlab.hint()                       # the recipe of the exercise you checked last
    rtlab.js_exercise(server, "browser_client", code)  # JavaScript, run in your browser tab
"""

from importlib.metadata import version

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

__version__ = version("rtlab")
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
